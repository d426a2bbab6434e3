package shard_test

import (
	"context"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// Time parameters reach the server with microseconds at most, so that a
// range on an indexed DATETIME(6) column can use the index: with a
// nanosecond literal MariaDB cannot, and the relay's cleanup
// (status = 'PUBLISHED' AND published_at < ?) read every published row.
func TestTimeParametersUseTheIndex(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)
	db, err := shard.OpenDB(topo.Shards[0].DSN, testinfra.TestPool())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	at := time.Date(2026, 11, 16, 9, 27, 15, 337789447, time.UTC)

	var literal string
	if err := db.QueryRowContext(ctx, "SELECT CAST(? AS CHAR)", at).Scan(&literal); err != nil {
		t.Fatal(err)
	}
	if literal != "2026-11-16 09:27:15.337789" {
		t.Errorf("the time reached the server as %q, want microseconds", literal)
	}

}
