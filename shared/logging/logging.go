// Package logging builds the structured JSON logger every orderflow process
// uses. Messages are constant; variable parts go in attributes; every line
// logged with a context that carries a span gets its trace id.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// New returns a JSON logger writing to w at the given level, with the
// service name on every line.
func New(w io.Writer, level slog.Level, service string) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(traceHandler{Handler: h}).With(slog.String("service", service))
}

// ParseLevel reads debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// traceHandler adds trace_id and span_id from the record's context, at the
// top level of the line also under WithGroup (where the record's own
// attributes would land in the group).
type traceHandler struct {
	slog.Handler
	// root is the handler before the first WithGroup, and ops what was
	// applied since, replayed over root plus the ids for a line with a
	// span; nil until a group is opened, which no line pays for otherwise.
	root slog.Handler
	ops  []func(slog.Handler) slog.Handler
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return h.Handler.Handle(ctx, r)
	}
	ids := []slog.Attr{slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String())}
	if h.root == nil {
		r.AddAttrs(ids...)
		return h.Handler.Handle(ctx, r)
	}
	out := h.root.WithAttrs(ids)
	for _, op := range h.ops {
		out = op(out)
	}
	return out.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	next := traceHandler{Handler: h.Handler.WithAttrs(attrs), root: h.root}
	if h.root != nil {
		next.ops = append(append([]func(slog.Handler) slog.Handler{}, h.ops...), func(x slog.Handler) slog.Handler { return x.WithAttrs(attrs) })
	}
	return next
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	next := traceHandler{Handler: h.Handler.WithGroup(name), root: h.root, ops: h.ops}
	if next.root == nil {
		next.root = h.Handler
	}
	next.ops = append(append([]func(slog.Handler) slog.Handler{}, next.ops...), func(x slog.Handler) slog.Handler { return x.WithGroup(name) })
	return next
}
