package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ppredeem/ppredeem/rpc"
)

// IssueMetrics are the collectors of POST /api/issue; it implements
// rpc.IssueObserver. Tokens are counted by attester (a configured
// attester name, or "open"), so the label set is bounded by the
// configuration; requests by outcome (a row of rpc's error table).
type IssueMetrics struct {
	tokens   *prometheus.CounterVec
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Issuance registers the issuance collectors with m, every outcome and
// the given attesters' labels at zero.
func (m *Metrics) Issuance(attesters []string) *IssueMetrics {
	im := &IssueMetrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_issued_tokens_total",
			Help: "Tokens issued (signed, counted in the store and answered) by attester: an attester key's name, or open.",
		}, []string{"attester"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_issue_requests_total",
			Help: "Requests to POST /api/issue by outcome.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ppredeem_issue_duration_seconds",
			Help:    "Time to serve POST /api/issue (attestation, parsing, signing, counting), by outcome.",
			Buckets: latencyBuckets(),
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(im.tokens, im.requests, im.duration)
	for _, o := range rpc.IssueOutcomes() {
		im.requests.WithLabelValues(string(o))
		im.duration.WithLabelValues(string(o))
	}
	im.AddAttesters(attesters)
	return im
}

// AddAttesters puts the labels of the given attesters at zero, for the
// attesters a reload adds.
func (im *IssueMetrics) AddAttesters(attesters []string) {
	for _, a := range attesters {
		im.tokens.WithLabelValues(a)
	}
}

// ObserveIssue implements rpc.IssueObserver.
func (im *IssueMetrics) ObserveIssue(outcome rpc.Outcome, attester string, tokens int, elapsed time.Duration) {
	im.requests.WithLabelValues(string(outcome)).Inc()
	im.duration.WithLabelValues(string(outcome)).Observe(elapsed.Seconds())
	if tokens > 0 {
		im.tokens.WithLabelValues(attester).Add(float64(tokens))
	}
}
