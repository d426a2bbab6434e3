package validation_test

import (
	"errors"
	"slices"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/validation"
)

func TestViolations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		add        [][2]string
		wantFields []string
		wantText   string
	}{
		{name: "nothing added is no error"},
		{name: "one field", add: [][2]string{{"orderNo", "must be positive"}}, wantFields: []string{"orderNo"},
			wantText: "invalid request: orderNo: must be positive"},
		{name: "every field, in order", add: [][2]string{{"userId", "must not be empty"}, {"items[0].quantity", "too many"}},
			wantFields: []string{"userId", "items[0].quantity"}, wantText: "invalid request: userId: must not be empty; items[0].quantity: too many"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v validation.Violations
			for _, a := range tc.add {
				v.Add(a[0], a[1])
			}
			err := v.Err()
			if tc.wantFields == nil {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			var ve *validation.Error
			if !errors.As(err, &ve) {
				t.Fatalf("Err() = %v (%T), want a *validation.Error", err, err)
			}
			var fields []string
			for _, fv := range ve.Violations {
				fields = append(fields, fv.Field)
			}
			if !slices.Equal(fields, tc.wantFields) {
				t.Errorf("fields = %v, want %v", fields, tc.wantFields)
			}
			if err.Error() != tc.wantText {
				t.Errorf("Error() = %q, want %q", err.Error(), tc.wantText)
			}
		})
	}
}

// A validation error becomes INVALID_ARGUMENT with one BadRequest field
// violation per bad field, as the ports send it.
func TestValidationErrorAsInvalidArgument(t *testing.T) {
	t.Parallel()
	var ve *validation.Error
	if !errors.As(validation.Invalid("reason", "must not be empty"), &ve) {
		t.Fatal("Invalid did not return a *validation.Error")
	}
	st := status.Convert(server.InvalidArgument(ve.Error(), ve.Violations))
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code = %s, want InvalidArgument", st.Code())
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			if got := br.GetFieldViolations(); len(got) != 1 || got[0].GetField() != "reason" || got[0].GetDescription() != "must not be empty" {
				t.Fatalf("field violations = %v, want reason: must not be empty", got)
			}
			return
		}
	}
	t.Fatal("no google.rpc.BadRequest detail")
}
