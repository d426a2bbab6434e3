package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// ParseTargets reads "name=host:port,name=host:port".
func ParseTargets(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, addr, ok := strings.Cut(part, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("%q: want name=host:port", part)
		}
		out[name] = addr
	}
	return out, nil
}

// CPUProfiles takes a CPU profile of the given length from every target's
// /debug/pprof/profile at once and writes dir/<name>.pprof. It returns the
// files written; a target that fails is reported in the error, the others
// are still written.
func CPUProfiles(ctx context.Context, targets map[string]string, seconds int, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var files, failures []string
	var wg sync.WaitGroup
	for name, addr := range targets {
		wg.Go(func() {
			path := filepath.Join(dir, name+".pprof")
			err := fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds), path, time.Duration(seconds+30)*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", name, err))
				return
			}
			files = append(files, path)
		})
	}
	wg.Wait()
	sort.Strings(files)
	if len(failures) > 0 {
		sort.Strings(failures)
		return files, fmt.Errorf("profiles not taken: %s", strings.Join(failures, "; "))
	}
	return files, nil
}

func fetchProfile(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %d: %s (is ORDERFLOW_PPROF=true set?)", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
