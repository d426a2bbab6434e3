package testinfra

import (
	"context"
	"sync"
	"testing"
)

// Runner is a service with a blocking Run, as every orderflow service has.
type Runner interface {
	Run(ctx context.Context) error
}

// RunService builds a service with build and runs it in the background until
// stop is called or the test ends, whichever comes first; an error from
// build or Run fails the test.
func RunService[S Runner](t testing.TB, build func(ctx context.Context) (S, error)) (svc S, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := build(ctx)
	if err != nil {
		cancel()
		t.Fatalf("starting the service: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("service Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return svc, stop
}
