package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{in: "a=127.0.0.1:1, b=127.0.0.1:2", want: map[string]string{"a": "127.0.0.1:1", "b": "127.0.0.1:2"}},
		{in: "", want: map[string]string{}},
		{in: "a127.0.0.1:1", wantErr: true},
		{in: "=127.0.0.1:1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseTargets(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %v, want %v", tt.in, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%q: %s = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

// Every target's profile lands in its own file; one that answers an error
// is named in the error and the others are still written.
func TestCPUProfiles(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/pprof/profile" || r.URL.Query().Get("seconds") != "3" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("profile bytes"))
	}))
	defer ok.Close()
	off := httptest.NewServer(http.NotFoundHandler())
	defer off.Close()
	dir := t.TempDir()
	targets := map[string]string{"svc-a": strings.TrimPrefix(ok.URL, "http://"), "svc-b": strings.TrimPrefix(off.URL, "http://")}
	files, err := CPUProfiles(context.Background(), targets, 3, dir)
	if err == nil || !strings.Contains(err.Error(), "svc-b: HTTP 404") {
		t.Fatalf("err = %v, want svc-b's 404 named", err)
	}
	if len(files) != 1 || files[0] != filepath.Join(dir, "svc-a.pprof") {
		t.Fatalf("files = %v", files)
	}
	if got, _ := os.ReadFile(files[0]); string(got) != "profile bytes" {
		t.Fatalf("profile = %q", got)
	}
}
