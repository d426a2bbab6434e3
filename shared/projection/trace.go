package projection

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerScope names the spans of the projection's steps.
const tracerScope = "github.com/orderflow/orderflow/shared/projection"

// eventSpansKey is the context key of a batch's event spans.
type eventSpansKey struct{}

// outerSpanKey is the context key of the span that was current before a
// step made its first order's span current.
type outerSpanKey struct{}

// WithEventSpans returns ctx carrying the span of each event of a batch, by
// the event's order number (an order may have several events in one
// batch). Project then records each of its steps (the shard re-read, the
// documents' read, the external events' publish, the documents' write) as
// a child span of every event span of the orders the step touched: a batch
// does one re-read and one write for all its events, and every order's
// trace shows them under its own event's span. A context without event
// spans (orderctl's rebuilds and repairs) records no steps.
func WithEventSpans(ctx context.Context, spans map[int64][]trace.Span) context.Context {
	return context.WithValue(ctx, eventSpansKey{}, spans)
}

func eventSpans(ctx context.Context) map[int64][]trace.Span {
	spans, _ := ctx.Value(eventSpansKey{}).(map[int64][]trace.Span)
	return spans
}

// OrderContext returns ctx with the span of the order's (first) event in
// the step under way as its span, for a publisher to put on the order's
// message; when ctx carries none for the order, ctx with the span current
// before the step.
func OrderContext(ctx context.Context, orderNo int64) context.Context {
	if spans := eventSpans(ctx)[orderNo]; len(spans) > 0 {
		return trace.ContextWithSpan(ctx, spans[0])
	}
	if outer, ok := ctx.Value(outerSpanKey{}).(trace.Span); ok {
		return trace.ContextWithSpan(ctx, outer) // not another order's span
	}
	return ctx
}

// startStep starts the child span name under every recording event span of
// orderNos in ctx and returns ctx carrying those children (so a publisher
// in the step finds them with OrderContext) and the function that ends
// them with the step's outcome. Events that are not sampled get no child:
// their trace is not recorded anyway.
func startStep(ctx context.Context, name string, kind trace.SpanKind, orderNos []int64, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	parents := eventSpans(ctx)
	if len(parents) == 0 {
		return ctx, func(error) {}
	}
	attrs = append(attrs, attribute.Int("orderflow.batch.orders", len(orderNos)))
	children := make(map[int64][]trace.Span, len(orderNos))
	var started []trace.Span
	for _, no := range orderNos {
		for _, parent := range parents[no] {
			if !parent.IsRecording() {
				children[no] = append(children[no], parent)
				continue
			}
			_, child := parent.TracerProvider().Tracer(tracerScope).Start(trace.ContextWithSpan(ctx, parent), name,
				trace.WithSpanKind(kind),
				trace.WithAttributes(append(attrs, attribute.Int64("orderflow.order_no", no))...))
			children[no] = append(children[no], child)
			started = append(started, child)
		}
	}
	ctx = WithEventSpans(ctx, children)
	if len(started) > 0 {
		// The step's own calls (the re-read's SQL statements, traced by
		// otelsql) serve every order of the batch, but a span has one
		// parent: they go under the first sampled order's step span.
		ctx = trace.ContextWithSpan(context.WithValue(ctx, outerSpanKey{}, trace.SpanFromContext(ctx)), started[0])
	}
	return ctx, func(err error) {
		for _, span := range started {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, name+" failed")
			}
			span.End()
		}
	}
}
