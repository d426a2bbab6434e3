package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/config"
)

type sample struct {
	Port    int           `env:"PORT" envDefault:"8080"`
	Timeout time.Duration `env:"TIMEOUT" envDefault:"2s"`
	Pool    struct {
		Size int `env:"SIZE" envDefault:"10"`
	} `envPrefix:"POOL_"`
}

// Validate refuses port 0; LoadFrom must not call it (the constructor that
// takes the configuration does).
func (s *sample) Validate() error {
	if s.Port < 1 || s.Port > 65535 {
		return errors.New("ORDERFLOW_PORT must be between 1 and 65535")
	}
	return nil
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ map[string]string
		want    sample
		wantErr []string
	}{
		{name: "defaults", environ: map[string]string{}, want: func() sample {
			s := sample{Port: 8080, Timeout: 2 * time.Second}
			s.Pool.Size = 10
			return s
		}()},
		{name: "overrides", environ: map[string]string{"ORDERFLOW_PORT": "9000", "ORDERFLOW_POOL_SIZE": "3"}, want: func() sample {
			s := sample{Port: 9000, Timeout: 2 * time.Second}
			s.Pool.Size = 3
			return s
		}()},
		{name: "bad number names the variable", environ: map[string]string{"ORDERFLOW_POOL_SIZE": "many"},
			wantErr: []string{"ORDERFLOW_POOL_SIZE", "many"}},
		{name: "bad duration names the variable", environ: map[string]string{"ORDERFLOW_TIMEOUT": "soon"},
			wantErr: []string{"ORDERFLOW_TIMEOUT"}},
		{name: "a value that parses is not range-checked here (the constructor does)", environ: map[string]string{"ORDERFLOW_PORT": "0"},
			want: func() sample {
				s := sample{Port: 0, Timeout: 2 * time.Second}
				s.Pool.Size = 10
				return s
			}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.LoadFrom[sample](tc.environ)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("LoadFrom() = %+v, want an error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFrom(): %v", err)
			}
			if got != tc.want {
				t.Errorf("LoadFrom() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

type withRequired struct {
	Token string `env:"TOKEN,required"`
	Level string `env:"LEVEL" envDefault:"info"`
	Pool  struct {
		Size int `env:"SIZE" envDefault:"10"`
	} `envPrefix:"POOL_"`
}

func TestVars(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := config.WriteVars[withRequired](&out); err != nil {
		t.Fatalf("WriteVars(): %v", err)
	}
	want := "ORDERFLOW_TOKEN required\nORDERFLOW_LEVEL\nORDERFLOW_POOL_SIZE\n"
	if out.String() != want {
		t.Errorf("WriteVars() wrote %q, want %q", out.String(), want)
	}
	// Every listed variable is one Load reads: a bad value in each is
	// refused under its name, so a listed name that Load ignored would pass
	// here and fail.
	vars, err := config.Vars[sample]()
	if err != nil {
		t.Fatalf("Vars(): %v", err)
	}
	if len(vars) != 3 {
		t.Fatalf("Vars() = %v, want the 3 variables of sample", vars)
	}
	for _, v := range vars {
		if _, err := config.LoadFrom[sample](map[string]string{v.Name: "not-a-value"}); err == nil || !strings.Contains(err.Error(), v.Name) {
			t.Errorf("LoadFrom(%s=not-a-value) = %v, want an error naming it", v.Name, err)
		}
	}
}
