package cli_test

import (
	"bytes"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/services/orderctl/internal/cli"
	"github.com/orderflow/orderflow/shared/auth"
)

// runOrderctl runs orderctl with args and returns its standard output and error.
func runOrderctl(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	s, err := cli.LoadSettings(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	root := cli.NewWithSettings(&out, &errOut, s)
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// keys generate then token: the token (the last line of its output)
// verifies with the generated JWK Set, with the default issuer and audience
// the services verify, and names its caller; a second keys generate keeps
// the first key's tokens verifying.
func TestTokenVerifiesWithGeneratedKeys(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "auth")
	if out, _, err := runOrderctl(t, "keys", "generate", "--dir", dir); err != nil || !strings.Contains(out, "signing key") {
		t.Fatalf("keys generate: %v, %q", err, out)
	}
	verifier, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{JWKSFile: filepath.Join(dir, auth.PublicKeysFile),
		Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, auth.SigningKeyFile)
	tests := []struct {
		name string
		args []string
		want auth.Caller
	}{
		{name: "user", args: []string{"--user", "u-1"}, want: auth.Caller{Issuer: auth.LocalIssuer, Subject: "u-1", Role: auth.RoleUser, User: "u-1"}},
		{name: "shop with a ttl", args: []string{"--shop", "s-1", "--ttl", "8h"}, want: auth.Caller{Issuer: auth.LocalIssuer, Subject: "s-1", Role: auth.RoleShop, Shop: "s-1"}},
		{name: "operator with a subject", args: []string{"--operator", "--subject", "alice", "--ttl", "15m"},
			want: auth.Caller{Issuer: auth.LocalIssuer, Subject: "alice", Role: auth.RoleOperator}},
	}
	var tokens []string
	for _, tc := range tests {
		out, errOut, err := runOrderctl(t, append([]string{"token", "--key", key}, tc.args...)...)
		if err != nil {
			t.Fatalf("%s: token: %v (%s)", tc.name, err, errOut)
		}
		if strings.Count(out, "\n") != 1 || !strings.Contains(errOut, string(tc.want.Role)) {
			t.Errorf("%s: stdout %q, stderr %q: want the token alone on stdout, what it is for on stderr", tc.name, out, errOut)
		}
		token := lastLine(out)
		got, err := verifier.Verify(t.Context(), token)
		if err != nil || got != tc.want {
			t.Errorf("%s: Verify = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
		tokens = append(tokens, token)
	}

	if _, _, err := runOrderctl(t, "keys", "generate", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	for _, token := range tokens {
		if _, err := verifier.Verify(t.Context(), token); err != nil {
			t.Errorf("a token of the previous key stopped verifying after a rotation: %v", err)
		}
	}
	out, _, err := runOrderctl(t, "token", "--key", key, "--user", "u-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(t.Context(), lastLine(out)); err != nil {
		t.Errorf("a token of the new key does not verify: %v", err)
	}
}

// token refuses what would not be one caller's valid token.
func TestTokenRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, _, err := runOrderctl(t, "keys", "generate", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, auth.SigningKeyFile)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no caller", args: []string{"token", "--key", key}, want: "at least one of the flags"},
		{name: "two callers", args: []string{"token", "--key", key, "--user", "u-1", "--shop", "s-1"}, want: "none of the others can be"},
		{name: "lifetime past the bound", args: []string{"token", "--key", key, "--user", "u-1", "--ttl", "2000h"}, want: "at most"},
		{name: "no signing key", args: []string{"token", "--key", key + ".missing", "--user", "u-1"}, want: "reading the signing key"},
		{name: "keep nothing", args: []string{"keys", "generate", "--dir", dir, "--keep", "0"}, want: "keep at least"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _, err := runOrderctl(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("a refused command printed %q", out)
			}
		})
	}
}

// The token flags default to what the services verify by default, and to
// the settings when set.
func TestTokenFlagDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		command []string
		flag    string
		want    string
	}{
		{name: "issuer", env: map[string]string{}, command: []string{"token"}, flag: "issuer", want: auth.LocalIssuer},
		{name: "audience", env: map[string]string{}, command: []string{"token"}, flag: "audience", want: auth.DefaultAudience},
		{name: "key", env: map[string]string{}, command: []string{"token"}, flag: "key", want: filepath.Join(".state/auth", auth.SigningKeyFile)},
		{name: "keys dir", env: map[string]string{}, command: []string{"keys", "generate"}, flag: "dir", want: ".state/auth"},
		{name: "key from the settings", env: map[string]string{"ORDERFLOW_AUTH_DIR": "/etc/of"}, command: []string{"token"}, flag: "key",
			want: filepath.Join("/etc/of", auth.SigningKeyFile)},
		{name: "audience from the settings", env: map[string]string{"ORDERFLOW_AUTH_AUDIENCE": "orders-eu"}, command: []string{"token"}, flag: "audience", want: "orders-eu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := cli.LoadSettings(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			cmd, _, err := cli.NewWithSettings(io.Discard, io.Discard, s).Find(tc.command)
			if err != nil {
				t.Fatal(err)
			}
			if f := cmd.Flags().Lookup(tc.flag); f == nil || f.DefValue != tc.want {
				t.Errorf("--%s default %v, want %q", tc.flag, f, tc.want)
			}
		})
	}
}
