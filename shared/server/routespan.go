package server

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// routeKey carries a request's *routeName from the handler that starts its
// server span down to the gateway, which is the first to know the route.
type routeKey struct{}

// routeName is the matched route template of one request ("" until the
// gateway matched one).
type routeName struct{ template string }

// withRouteName gives each request a place for its route template: otelhttp
// names the server span when it starts, before any route is matched, and
// again when the request ends, from the same request, so the gateway's
// match reaches the span name through this holder.
func withRouteName(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeKey{}, &routeName{})))
	})
}

// restSpanName is otelhttp's span name formatter: "METHOD /route/{template}"
// (POST /v1/orders, GET /v1/orders/{order_no}) once the gateway matched the
// route, else the method alone, as the HTTP semantic conventions name a
// server span without a route (never the raw path, whose order numbers
// would make every span name unique).
func restSpanName(_ string, r *http.Request) string {
	if rn, ok := r.Context().Value(routeKey{}).(*routeName); ok && rn.template != "" {
		return r.Method + " " + rn.template
	}
	return r.Method
}

// recordRoute keeps the request's matched route for its span name and sets
// http.route on the span. pattern is the gateway's pattern as it prints
// itself ("/v1/orders/{order_no=*}:advance"); the span carries the route
// template as written in the API ("/v1/orders/{order_no}:advance").
func recordRoute(r *http.Request, pattern string) {
	rn, ok := r.Context().Value(routeKey{}).(*routeName)
	if !ok {
		return // no REST span (see NewHTTPHandler): nothing to name
	}
	rn.template = strings.ReplaceAll(pattern, "=*}", "}")
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", rn.template))
}
