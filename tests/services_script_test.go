package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
