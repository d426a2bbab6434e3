package shard_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/testinfra"
)

// Without a tracer provider (no span leaves the process) the pools use the
// MySQL driver itself, so statements cost nothing extra; with one, every
// statement under a recorded span is a client span of it on its shard,
// and a statement outside any span makes none.
func TestPoolsTraceStatementsOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	topo := testinfra.Shards(t, 1)

	plain, err := shard.Open(topo, testinfra.TestPool())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Close() })
	db, _ := plain.DB("shard-0")
	if _, ok := db.Driver().(*mysql.MySQLDriver); !ok {
		t.Errorf("untraced pool's driver is %T, want the MySQL driver unwrapped", db.Driver())
	}

	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	traced, err := shard.Open(topo, testinfra.TestPool(), shard.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = traced.Close() })
	db, _ = traced.DB("shard-0")
	if _, err := db.ExecContext(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if n := len(recorder.Ended()); n != 0 {
		t.Errorf("a statement outside any span made %d spans", n)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "shard tx")
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var got []string
	for _, s := range recorder.Ended() {
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if s.Name() == "sql.conn.query" && s.Parent().SpanID() == parent.SpanContext().SpanID() &&
			attrs["orderflow.shard"] == "shard-0" && attrs["db.query.text"] == "SELECT 1" {
			return
		}
		got = append(got, fmt.Sprintf("%s %v", s.Name(), attrs))
	}
	t.Errorf("no sql.conn.query span under the caller's span on shard-0: %v", got)
}
