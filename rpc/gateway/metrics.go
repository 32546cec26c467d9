package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets resolve 1 ms to 10 s: a gateway request is one to three
// upstream round trips plus, for issuance, a few RSA operations (about a
// millisecond for a 2048-bit key), and retries can stretch it to seconds.
func latencyBuckets() []float64 {
	return []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10}
}

// metrics are the gateway's collectors. Label values come from fixed sets
// (endpoint and call names, HTTP status codes), never from request data.
type metrics struct {
	requests         *prometheus.CounterVec   // endpoint, code
	requestTime      *prometheus.HistogramVec // endpoint
	upstreamRequests *prometheus.CounterVec   // call, result
	upstreamTime     *prometheus.HistogramVec // call
	upstreamRetries  *prometheus.CounterVec   // call, reason
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_gateway_requests_total",
			Help: "Gateway requests by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ppredeem_gateway_request_duration_seconds",
			Help:    "Time to answer a gateway request, upstream calls and retries included, by endpoint.",
			Buckets: latencyBuckets(),
		}, []string{"endpoint"}),
		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_gateway_upstream_requests_total",
			Help: "Upstream attempts by call and result (HTTP status code, network_error, timeout or canceled).",
		}, []string{"call", "result"}),
		upstreamTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ppredeem_gateway_upstream_request_duration_seconds",
			Help:    "Time of one upstream attempt, by call.",
			Buckets: latencyBuckets(),
		}, []string{"call"}),
		upstreamRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_gateway_upstream_retries_total",
			Help: "Upstream retries by call and by what the previous attempt got (HTTP status code or network_error).",
		}, []string{"call", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.requestTime, m.upstreamRequests, m.upstreamTime, m.upstreamRetries} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
