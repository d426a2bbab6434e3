package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/config"
)

// Authentication is on by default: settings without a JWK Set are refused
// unless they turn authentication off, and the refusal names both ways
// out.
func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		settings    auth.Settings
		wantErr     bool
		wantEnabled bool
	}{
		{name: "nothing set", settings: auth.Settings{}, wantErr: true},
		{name: "issuer and audience only", settings: auth.Settings{Issuer: "i", Audience: "a"}, wantErr: true},
		{name: "JWK Set file", settings: auth.Settings{JWKSFile: "/etc/jwks.json"}, wantEnabled: true},
		{name: "JWK Set URL", settings: auth.Settings{JWKSURL: "https://idp.example/jwks"}, wantEnabled: true},
		{name: "file and URL", settings: auth.Settings{JWKSFile: "/etc/jwks.json", JWKSURL: "https://idp.example/jwks"}, wantErr: true},
		{name: "disabled", settings: auth.Settings{Disabled: true}},
		{name: "disabled wins over a JWK Set", settings: auth.Settings{Disabled: true, JWKSFile: "/etc/jwks.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.settings.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate = %v, want an error: %v", err, tc.wantErr)
			}
			if got := tc.settings.Enabled(); !tc.wantErr && got != tc.wantEnabled {
				t.Errorf("Enabled = %v, want %v", got, tc.wantEnabled)
			}
		})
	}
}

// The refusal of settings without keys names every variable that fixes it.
func TestSettingsWithoutKeysNameTheVariables(t *testing.T) {
	t.Parallel()
	err := auth.Settings{}.Validate()
	if !errors.Is(err, auth.ErrNoKeys) {
		t.Fatalf("Validate = %v, want ErrNoKeys", err)
	}
	for _, v := range []string{"ORDERFLOW_AUTH_JWKS_FILE", "ORDERFLOW_AUTH_JWKS_URL", "ORDERFLOW_AUTH_DISABLED=true"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("the error %q does not name %s", err, v)
		}
	}
}

// The token cache is read from ORDERFLOW_AUTH_TOKEN_CACHE_SIZE and _TTL, as
// a service nests the settings (envPrefix "AUTH_"), with its defaults when
// they are not set.
func TestSettingsTokenCacheFromEnvironment(t *testing.T) {
	t.Parallel()
	type serviceConfig struct {
		Auth auth.Settings `envPrefix:"AUTH_"`
	}
	tests := []struct {
		name     string
		environ  map[string]string
		wantSize int
		wantTTL  time.Duration
	}{
		{name: "defaults", environ: map[string]string{}, wantSize: 10_000, wantTTL: time.Minute},
		{name: "set", environ: map[string]string{"ORDERFLOW_AUTH_TOKEN_CACHE_SIZE": "500", "ORDERFLOW_AUTH_TOKEN_CACHE_TTL": "20s"},
			wantSize: 500, wantTTL: 20 * time.Second},
		{name: "off", environ: map[string]string{"ORDERFLOW_AUTH_TOKEN_CACHE_SIZE": "-1"}, wantSize: -1, wantTTL: time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.LoadFrom[serviceConfig](tc.environ)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Auth.TokenCacheSize != tc.wantSize || cfg.Auth.TokenCacheTTL != tc.wantTTL {
				t.Errorf("token cache %d, %s; want %d, %s", cfg.Auth.TokenCacheSize, cfg.Auth.TokenCacheTTL, tc.wantSize, tc.wantTTL)
			}
		})
	}
}
