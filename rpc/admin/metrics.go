// Package admin is ppredeem's admin listener: the Prometheus metrics the
// server collects and the handler that serves them with pprof
// (/metrics, /debug/pprof/). It belongs on a private address
// (admin_listen), never on the public one: profiles and runtime figures
// are for operators.
//
// Redemptions are counted by outcome (a row of rpc's error table) and by
// key ID; the key ID is a short hash of the public key, so the label set
// is bounded by the configured keys. Latency histograms have buckets from
// 100 µs to 1 s. The configuration reload gauges are in reload.go.
package admin

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ppredeem/ppredeem/rpc"
)

// latencyBuckets resolve 100 µs to 1 s: a redemption's curve work alone is
// 62–94 µs on the reference machine and a committed spend 0.5–1 ms
// (BENCHMARKS.md), so the interesting range starts at 100 µs.
func latencyBuckets() []float64 {
	return []float64{0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}
}

// Metrics is the set of collectors of one server.
type Metrics struct {
	reg         *prometheus.Registry
	redemptions *prometheus.CounterVec
	redeemTime  *prometheus.HistogramVec
	httpTime    *prometheus.HistogramVec
	batchSize   prometheus.Histogram
}

// NewMetrics registers ppredeem's collectors and the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		redemptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_redemptions_total",
			Help: "Redemptions by outcome and by the ID of the key that verified the tag (empty when none did).",
		}, []string{"outcome", "key_id"}),
		redeemTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ppredeem_redemption_duration_seconds",
			Help:    "Time from parsing the params to the answer (verify and spend), by outcome.",
			Buckets: latencyBuckets(),
		}, []string{"outcome"}),
		httpTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ppredeem_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request on the main listener, by status code.",
			Buckets: latencyBuckets(),
		}, []string{"code"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ppredeem_spend_batch_size",
			Help:    "Spends written in one database round trip (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
	}
	m.reg.MustRegister(m.redemptions, m.redeemTime, m.httpTime, m.batchSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range rpc.Outcomes() {
		m.redeemTime.WithLabelValues(string(o))
	}
	return m
}

// MustRegister adds collectors (for example the database pool's).
func (m *Metrics) MustRegister(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// ObserveRedemption implements rpc.Observer.
func (m *Metrics) ObserveRedemption(outcome rpc.Outcome, keyID string, elapsed time.Duration) {
	m.redemptions.WithLabelValues(string(outcome), keyID).Inc()
	m.redeemTime.WithLabelValues(string(outcome)).Observe(elapsed.Seconds())
}

// ObserveBatch records the size of one spend batch.
func (m *Metrics) ObserveBatch(size int) { m.batchSize.Observe(float64(size)) }

// Instrument wraps the main listener's handler with the HTTP latency
// histogram.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.httpTime.WithLabelValues(strconv.Itoa(sw.status)).Observe(time.Since(start).Seconds())
	})
}

// Handler serves the admin listener: /metrics and /debug/pprof/ (without
// cmdline).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	// No /debug/pprof/cmdline: argv may hold a --database-url password.
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
