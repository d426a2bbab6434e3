package domain_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/gen"
	"github.com/orderflow/orderflow/shared/validation"
)

// schema is the part of an OpenAPI v2 schema or parameter the rules show in.
type schema struct {
	Pattern    string            `json:"pattern"`
	MinLength  int               `json:"minLength"`
	MaxLength  int               `json:"maxLength"`
	Minimum    *float64          `json:"minimum"`
	Maximum    *float64          `json:"maximum"`
	MinItems   int               `json:"minItems"`
	MaxItems   int               `json:"maxItems"`
	Required   []string          `json:"required"`
	Properties map[string]schema `json:"properties"`
}

type document struct {
	Definitions map[string]schema `json:"definitions"`
	Paths       map[string]map[string]struct {
		Parameters []struct {
			Name    string `json:"name"`
			In      string `json:"in"`
			Pattern string `json:"pattern"`
		} `json:"parameters"`
	} `json:"paths"`
}

func openAPI(t *testing.T, name string) document {
	t.Helper()
	raw, err := gen.OpenAPI.ReadFile("orderflow/order/v1/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var d document
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// goPattern turns the \uXXXX escapes of a published (ECMA-262) pattern into
// Go's \x{XXXX}.
func goPattern(t *testing.T, p string) *regexp.Regexp {
	t.Helper()
	return regexp.MustCompile(regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`).ReplaceAllString(p, `\x{$1}`))
}

// TestOpenAPIStatesTheRules: the published OpenAPI documents (generated from
// the protos' annotations) state the limits Validate enforces, so a client
// generated from them sends what the server takes.
func TestOpenAPIStatesTheRules(t *testing.T) {
	t.Parallel()
	cmd := openAPI(t, "command_service.swagger.json")
	query := openAPI(t, "query_service.swagger.json")
	place := cmd.Definitions["v1PlaceOrderRequest"]
	item := cmd.Definitions["v1OrderItem"]
	reason := cmd.Definitions["OrderCommandServiceCancelOrderBody"].Properties["reason"]

	ids := map[string]schema{
		"requestId": place.Properties["requestId"], "userId": place.Properties["userId"],
		"shopId": place.Properties["shopId"], "items[].menuId": item.Properties["menuId"],
	}
	for name, s := range ids {
		if s.Pattern != validation.IDPattern || s.MinLength != 1 || s.MaxLength != domain.MaxIDLength {
			t.Errorf("%s: pattern %q, length %d..%d; want %q, 1..%d", name, s.Pattern, s.MinLength, s.MaxLength, validation.IDPattern, domain.MaxIDLength)
		}
	}
	for path, want := range map[string]string{"/v1/users/{userId}/orders": "userId", "/v1/shops/{shopId}/orders": "shopId"} {
		found := false
		for _, p := range query.Paths[path]["get"].Parameters {
			if p.Name == want && p.In == "path" {
				found = true
				if p.Pattern != validation.IDPattern {
					t.Errorf("%s: %s pattern %q, want %q", path, want, p.Pattern, validation.IDPattern)
				}
			}
		}
		if !found {
			t.Errorf("%s: no path parameter %s", path, want)
		}
	}
	if got := place.Required; strings.Join(got, ",") != "requestId,userId,shopId,items,deliveryAddress" {
		t.Errorf("PlaceOrderRequest required = %v", got)
	}
	if s := place.Properties["items"]; s.MinItems != 1 || s.MaxItems != domain.MaxItems {
		t.Errorf("items: %d..%d, want 1..%d", s.MinItems, s.MaxItems, domain.MaxItems)
	}
	if s := item.Properties["quantity"]; s.Minimum == nil || s.Maximum == nil || *s.Minimum != domain.MinQuantity || *s.Maximum != domain.MaxQuantity {
		t.Errorf("quantity: minimum %v maximum %v, want %d..%d", s.Minimum, s.Maximum, domain.MinQuantity, domain.MaxQuantity)
	}
	price := regexp.MustCompile(item.Properties["unitPrice"].Pattern)
	for _, p := range []int64{-1, 0, 1, 9, 10, 999_999, 1_000_000, 1_000_001, 9_999_999, 10_000_000} {
		if got, want := price.MatchString(strconv.FormatInt(p, 10)), p >= domain.MinUnitPrice && p <= domain.MaxUnitPrice; got != want {
			t.Errorf("unitPrice pattern matches %d = %v, Validate accepts it = %v", p, got, want)
		}
	}

	texts := []struct {
		name string
		s    schema
		rule validation.Text
	}{
		{"items[].name", item.Properties["name"], validation.Text{MaxChars: domain.MaxNameLength}},
		{"deliveryAddress", place.Properties["deliveryAddress"], validation.Text{MaxChars: domain.MaxAddressLength, Multiline: true}},
		{"reason", reason, validation.Text{MaxChars: domain.MaxReasonLength, Multiline: true}},
	}
	samples := []string{"Bibimbap", "김치찌개 🌶️", " a ", "a\nb", "a\r\nb", "a\tb", "a\x00b", "\x1b[0m", "a\u0085", "a\x7f", "   ", "\n", ""}
	for _, tc := range texts {
		if tc.s.MinLength != 1 || tc.s.MaxLength != tc.rule.MaxChars {
			t.Errorf("%s: length %d..%d, want 1..%d", tc.name, tc.s.MinLength, tc.s.MaxLength, tc.rule.MaxChars)
		}
		re := goPattern(t, tc.s.Pattern)
		for _, sample := range samples {
			var v validation.Violations
			tc.rule.Check(&v, tc.name, sample)
			if got, want := re.MatchString(sample), len(v) == 0; got != want {
				t.Errorf("%s: pattern matches %q = %v, Validate accepts it = %v", tc.name, sample, got, want)
			}
		}
	}
}
