package testinfra

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// SumMetrics scrapes http://addr/metrics and adds up the samples whose line
// starts with prefix (a series name, optionally with the start of its
// labels).
func SumMetrics(addr, prefix string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			sum += v
		}
	}
	return sum, nil
}

// MetricSum is SumMetrics for a test, which fails when /metrics does not answer.
func MetricSum(t testing.TB, addr, prefix string) float64 {
	t.Helper()
	v, err := SumMetrics(addr, prefix)
	if err != nil {
		t.Fatalf("testinfra: %v", err)
	}
	return v
}
