package shard

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Option changes how Open opens the pools.
type Option func(*openOptions)

type openOptions struct {
	tracerProvider trace.TracerProvider
}

// WithTracerProvider traces every statement on the shards with the
// OpenTelemetry database/sql instrumentation (github.com/XSAM/otelsql), as
// client spans named sql.conn.query, sql.conn.exec, sql.conn.begin_tx,
// sql.tx.commit, ... carrying db.system.name, db.query.text and
// orderflow.shard. They are children of the caller's span (a shard
// transaction's, the projector's re-read), and only made when that span
// is recorded: a statement outside any recorded span (the relay's polling,
// a health check) makes none, so no root span is started per statement
// and an unsampled request pays one check per statement. Pass nil, or no
// option, when no span leaves the process: the pools then use the driver
// unwrapped, at no cost.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *openOptions) { o.tracerProvider = tp }
}

// openConnector opens connector as a pool, traced when o asks for it.
func (o openOptions) openConnector(connector driver.Connector, shardName string) *sql.DB {
	if o.tracerProvider == nil {
		return sql.OpenDB(connector)
	}
	return otelsql.OpenDB(connector,
		otelsql.WithTracerProvider(o.tracerProvider),
		// The pools have their own Prometheus series; no OTel metrics.
		otelsql.WithMeterProvider(noop.NewMeterProvider()),
		otelsql.WithAttributes(attribute.String("db.system.name", "mysql"), attribute.String("orderflow.shard", shardName)),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			DisableErrSkip:       true,
			OmitConnResetSession: true,
			OmitConnPrepare:      true,
			OmitRows:             true,
			OmitConnectorConnect: true,
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
				return trace.SpanFromContext(ctx).IsRecording()
			},
		}),
	)
}
