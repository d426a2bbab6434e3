package tests

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/shared/auth"
)

// scripts/services takes service names for up and down (the benchmarks stop
// the downstream services while order-command is measured); a name it does
// not know is refused before anything is touched.
func TestServicesScriptSelectsByName(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		want    string
	}{
		{name: "unknown name refused", args: []string{"down", "order-comand"}, wantErr: true,
			want: "unknown service order-comand (known: order-command outbox-relay order-projector order-query"},
		{name: "known names accepted", args: []string{"down", "outbox-relay", "order-query"}},
		{name: "up without infrastructure refused", args: []string{"up", "order-query"}, wantErr: true, want: "the infrastructure is not up"},
		{name: "bad verb shows usage", args: []string{"restart"}, wantErr: true, want: "usage: scripts/services up|down [service...] | status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A private, empty state directory: nothing runs there.
			cmd := exec.Command(filepath.Join(root, "scripts", "services"), tt.args...)
			cmd.Env = append(os.Environ(), "ORDERFLOW_STATE_DIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v:\n%s", err, tt.wantErr, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

// scripts/services keys (which up runs first) generates the signing key
// once into the state directory and reuses it afterwards: a restart keeps
// every token valid. The set it prints verifies a token orderctl signs
// with the key, and the key itself is readable by its owner only.
func TestServicesScriptKeepsOneSigningKey(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	keys := func() (string, []byte) {
		t.Helper()
		cmd := exec.Command(filepath.Join(root, "scripts", "services"), "keys")
		cmd.Env = append(os.Environ(), "ORDERFLOW_STATE_DIR="+state)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("scripts/services keys: %v\n%s%s", err, out, &stderr)
		}
		path := strings.TrimSpace(string(out))
		set, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return path, set
	}
	path, first := keys()
	if want := filepath.Join(state, "auth", auth.PublicKeysFile); path != want {
		t.Fatalf("keys printed %q, want %q", path, want)
	}
	if _, again := keys(); string(again) != string(first) {
		t.Errorf("a second run replaced the key set:\n%s\nthen\n%s", first, again)
	}
	keyFile := filepath.Join(state, "auth", auth.SigningKeyFile)
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("signing key %s: %v, mode %v, want 0600", keyFile, err, info.Mode().Perm())
	}
	out, err := exec.Command(filepath.Join(state, "bin", "orderctl"), "token", "--user", "u-1", "--key", keyFile).Output()
	if err != nil {
		t.Fatalf("orderctl token: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	v, err := auth.NewVerifier(t.Context(), auth.VerifierConfig{JWKSFile: path, Issuer: auth.LocalIssuer, Audience: auth.DefaultAudience,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if caller, err := v.Verify(t.Context(), lines[len(lines)-1]); err != nil || caller.User != "u-1" {
		t.Errorf("orderctl's token against the printed set: %+v, %v", caller, err)
	}
}
