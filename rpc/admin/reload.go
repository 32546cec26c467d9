package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReloadGauges are the outcome of the latest configuration load, named
// and defined as Prometheus itself exposes them for its own configuration
// (prometheus_config_last_reload_successful and
// prometheus_config_last_reload_success_timestamp_seconds, in
// prometheus/prometheus, cmd/prometheus/main.go): successful is 1 when
// the latest load (the one at start, or the latest SIGHUP) took effect
// and 0 when it failed and the previous configuration stayed; the
// timestamp is when a load last took effect, in Unix seconds, and does
// not move on a failure. Alert on successful == 0.
type ReloadGauges struct {
	successful prometheus.Gauge
	timestamp  prometheus.Gauge
}

// NewReloadGauges registers the two gauges with m.
func NewReloadGauges(m *Metrics) *ReloadGauges {
	g := &ReloadGauges{
		successful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ppredeem_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful.",
		}),
		timestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ppredeem_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
	m.MustRegister(g.successful, g.timestamp)
	return g
}

// Observe records the outcome of a configuration load that ended at.
func (g *ReloadGauges) Observe(err error, at time.Time) {
	if err != nil {
		g.successful.Set(0)
		return
	}
	g.successful.Set(1)
	g.timestamp.Set(float64(at.UnixNano()) / 1e9)
}
