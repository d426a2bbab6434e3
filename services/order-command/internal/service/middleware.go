package service

import (
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderflow/orderflow/shared/server"
)

func runtimeMiddlewares(registry *prometheus.Registry) []runtime.ServeMuxOption {
	return []runtime.ServeMuxOption{runtime.WithMiddlewares(server.RouteMetrics(registry))}
}
