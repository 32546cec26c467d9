package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ppredeem/ppredeem/rpc/httpbody"
)

// BodyBudgetCollectors export a listener's request-body budget (package
// rpc/httpbody) at scrape time: its size, the bytes held now, and the
// bodies refused for want of room (HTTP 503).
func BodyBudgetCollectors(b *httpbody.Budget) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ppredeem_request_body_budget_bytes",
			Help: "Most request-body bytes held in memory at once (max_inflight_body_bytes).",
		}, func() float64 { return float64(b.Limit()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ppredeem_request_body_bytes_in_use",
			Help: "Request-body bytes held in memory now.",
		}, func() float64 { return float64(b.InUse()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "ppredeem_request_body_busy_total",
			Help: "Request bodies refused because the budget had no room for them (HTTP 503).",
		}, func() float64 { return float64(b.Refused()) }),
	}
}
