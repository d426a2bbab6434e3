package authgrpc_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/auth/authgrpc"
)

// FromSettings refuses settings without keys, warns when authentication is
// turned off (and then checks nothing), and builds the interceptor over a
// JWK Set.
func TestFromSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 1); err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(dir, auth.PublicKeysFile)
	tests := []struct {
		name            string
		settings        auth.Settings
		wantErr         error
		wantInterceptor bool
		wantWarning     bool
	}{
		{name: "no JWK Set and not disabled", settings: auth.Settings{Issuer: testIssuer, Audience: testAudience}, wantErr: auth.ErrNoKeys},
		{name: "disabled", settings: auth.Settings{Disabled: true}, wantWarning: true},
		{name: "disabled with a JWK Set", settings: auth.Settings{Disabled: true, JWKSFile: jwks}, wantWarning: true},
		{name: "JWK Set file", settings: auth.Settings{JWKSFile: jwks, Issuer: testIssuer, Audience: testAudience}, wantInterceptor: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			ic, access, err := authgrpc.FromSettings(t.Context(), tc.settings, logger, prometheus.NewRegistry(), fixedClock)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("FromSettings error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if (ic != nil) != tc.wantInterceptor {
				t.Errorf("interceptor = %v, want one: %v", ic, tc.wantInterceptor)
			}
			warned := strings.Contains(logs.String(), `"level":"WARN","msg":"authentication is off`)
			if warned != tc.wantWarning {
				t.Errorf("warning logged = %v, want %v; logs:\n%s", warned, tc.wantWarning, logs.String())
			}
			if tc.wantWarning {
				if _, ok := access.(auth.Unprotected); !ok {
					t.Errorf("access = %T, want auth.Unprotected with authentication off", access)
				}
				if err := access.CheckOrder(context.Background(), auth.Owner{User: "u-9"}); err != nil {
					t.Errorf("CheckOrder with authentication off = %v", err)
				}
			}
		})
	}
}

// A JWK Set file that does not exist fails the start rather than leaving
// the service open.
func TestFromSettingsMissingFile(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "absent.json")
	_, _, err := authgrpc.FromSettings(t.Context(), auth.Settings{JWKSFile: missing, Issuer: testIssuer, Audience: testAudience},
		quietLogger(), prometheus.NewRegistry(), fixedClock)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FromSettings with a missing file = %v, want a not-exist error", err)
	}
}

// The token cache settings reach the verifier: a TTL it refuses fails the
// start, naming the cache.
func TestFromSettingsPassesTheTokenCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := auth.GenerateKeys(dir, 1); err != nil {
		t.Fatal(err)
	}
	s := auth.Settings{JWKSFile: filepath.Join(dir, auth.PublicKeysFile), Issuer: testIssuer, Audience: testAudience,
		TokenCacheSize: -1, TokenCacheTTL: auth.MaxCacheTTL + time.Second}
	if _, _, err := authgrpc.FromSettings(t.Context(), s, quietLogger(), prometheus.NewRegistry(), fixedClock); err == nil ||
		!strings.Contains(err.Error(), "token cache TTL") {
		t.Errorf("FromSettings with a TTL over MaxCacheTTL = %v, want a refusal naming the token cache TTL", err)
	}
}
