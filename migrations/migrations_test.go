package migrations_test

import (
	"testing"

	"github.com/orderflow/orderflow/migrations"
)

func TestLatest(t *testing.T) {
	t.Parallel()
	v, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if v < 2 {
		t.Errorf("Latest() = %d, want at least 2 (orders and outbox)", v)
	}
}
