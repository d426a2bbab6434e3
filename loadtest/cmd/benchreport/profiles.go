package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// profileReport adds the top of every CPU profile in dir/profiles (dayrun
// takes them under load), as `go tool pprof -top` prints it.
func profileReport(dir string, md *strings.Builder) (bool, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "profiles", "*.pprof"))
	if len(files) == 0 {
		return false, nil
	}
	sort.Strings(files)
	md.WriteString("## CPU profiles under load (day run)\n\nEach profile's top by own time; open one with `go tool pprof -http=: FILE`.\n\n")
	for _, f := range files {
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=12", f).CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("go tool pprof %s: %v\n%s", f, err, out)
		}
		fmt.Fprintf(md, "### %s\n\n```\n%s```\n\n", strings.TrimSuffix(filepath.Base(f), ".pprof"), trimHeader(string(out)))
	}
	return true, nil
}

// trimHeader drops pprof's lines about the binary and the build, which
// name paths on the machine that took the profile.
func trimHeader(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Type:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}
