package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildOutput says why a tracked file is a compiled binary or a build output
// ("" when it is neither): such files belong in the git-ignored state
// directory, never in the repository.
func buildOutput(path string, head []byte) string {
	magics := []struct {
		prefix []byte
		what   string
	}{
		{[]byte("\x7fELF"), "an ELF binary"},
		{[]byte("MZ"), "a Windows executable"},
		{[]byte("\xca\xfe\xba\xbe"), "a Java class file"},
		{[]byte("\xcf\xfa\xed\xfe"), "a Mach-O binary"},
	}
	for _, m := range magics {
		if bytes.HasPrefix(head, m.prefix) {
			return m.what
		}
	}
	for _, dir := range []string{"target", "node_modules", ".state"} {
		if strings.HasPrefix(path, dir+"/") || strings.Contains(path, "/"+dir+"/") {
			return "inside a " + dir + "/ build directory"
		}
	}
	switch filepath.Ext(path) {
	case ".jar", ".class", ".o", ".a", ".so", ".exe", ".test":
		return "a build artefact (" + filepath.Ext(path) + ")"
	}
	return ""
}

func TestBuildOutputRecognisesBinaries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, path string
		head       string
		binary     bool
	}{
		{"go binary at the root", "placebench", "\x7fELF\x02\x01", true},
		{"maven target", "deploy/local/mongo/target/mongo-wire-server-1.jar", "PK\x03\x04", true},
		{"class file", "Foo.class", "\xca\xfe\xba\xbe", true},
		{"go test binary", "services/x/x.test", "", true},
		{"go source", "shared/shard/pools.go", "package shard", false},
		{"pom", "deploy/local/mongo/pom.xml", "<?xml", false},
		{"a chart image", "bench/results/x/chart.png", "\x89PNG", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := buildOutput(c.path, []byte(c.head)) != ""; got != c.binary {
				t.Errorf("buildOutput(%q) flagged %v, want %v", c.path, got, c.binary)
			}
		})
	}
}

// No tracked file is a compiled binary or a build output.
func TestRepositoryTracksNoBuildOutput(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, path := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		f, err := os.Open(filepath.Join(root, path))
		if err != nil {
			continue // deleted in the work tree, not yet committed
		}
		head := make([]byte, 8)
		n, _ := f.Read(head)
		_ = f.Close()
		if why := buildOutput(path, head[:n]); why != "" {
			t.Errorf("%s is tracked but is %s: remove it and ignore it", path, why)
		}
	}
}
