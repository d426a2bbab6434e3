package observability

// LatencyBuckets are the histogram buckets of every API latency (gRPC and
// REST alike, so their quantiles compare). 0.3 is the PlaceOrder latency
// SLO's threshold (deploy/prometheus/rules/slo.yml counts calls within
// 300 ms from the le="0.3" bucket).
func LatencyBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .3, .5, 1, 2.5, 5}
}

// PipelineBuckets are the buckets of the asynchronous path's delays (commit
// to Kafka acknowledgement, commit to read document), which reach minutes
// during an outage. 1 is the freshness SLO's threshold.
func PipelineBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
}

// BatchBuckets are the buckets of the time one batch of work takes (a
// projector batch, a relay claim).
func BatchBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
}
