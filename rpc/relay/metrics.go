package relay

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requestTime   *prometheus.HistogramVec
	claims        *prometheus.CounterVec
	passesIssued  *prometheus.CounterVec
	relaysCreated *prometheus.CounterVec
	reports       *prometheus.CounterVec
}

// claimOutcomes are the outcomes of generate-claim, pre-registered so that dashboards see
// zeros.
var claimOutcomes = []string{"redeemed", "refunded", "replayed", "mismatched", "expired", "double_spent",
	"relay_redeemed", "not_ready", "invalid", "not_found", "bad_request", "unavailable", "internal"}

func newMetrics() *metrics {
	m := &metrics{
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ppredeem_relay_request_duration_seconds",
			Help:    "Time to answer a request of the relay provider API, by endpoint and status.",
			Buckets: []float64{0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2},
		}, []string{"endpoint", "code"}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_relay_claims_total",
			Help: "generate-claim requests by outcome: redeemed (pass spent), refunded (failed claim, pass not spent), replayed, mismatched (claim type), expired (pass), double_spent, relay_redeemed (by another pass), not_ready, invalid (pass), not_found (relay), bad_request, unavailable, internal.",
		}, []string{"outcome"}),
		passesIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_relay_passes_issued_total",
			Help: "Blind signatures issued (and billed), by claim type; replays of an Idempotency-Key are not counted.",
		}, []string{"claim_type"}),
		relaysCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_relay_relays_created_total",
			Help: "Relay sessions created, by claim type.",
		}, []string{"claim_type"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ppredeem_relay_claim_reports_total",
			Help: "Claim results recorded from verifiers, by result.",
		}, []string{"result"}),
	}
	for _, o := range claimOutcomes {
		m.claims.WithLabelValues(o)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requestTime, m.claims, m.passesIssued, m.relaysCreated, m.reports}
}
