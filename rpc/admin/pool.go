package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ppredeem/ppredeem/spend"
)

// PoolCollector exports a Postgres pool's statistics at scrape time.
type PoolCollector struct {
	stats func() spend.PoolStats
	descs map[string]*prometheus.Desc
}

// NewPoolCollector reads stats on every scrape.
func NewPoolCollector(stats func() spend.PoolStats) *PoolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("ppredeem_db_pool_"+name, help, nil, nil)
	}
	return &PoolCollector{stats: stats, descs: map[string]*prometheus.Desc{
		"acquired":       d("acquired_conns", "Connections in use."),
		"idle":           d("idle_conns", "Idle connections."),
		"total":          d("total_conns", "Open connections."),
		"max":            d("max_conns", "Most connections the pool opens."),
		"acquires":       d("acquires_total", "Connections acquired."),
		"empty_acquires": d("empty_acquires_total", "Acquires that had to wait for a connection."),
		"acquire_time":   d("acquire_seconds_total", "Time spent acquiring connections."),
	}}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	g := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.GaugeValue, v) }
	n := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.CounterValue, v) }
	g("acquired", float64(s.AcquiredConns))
	g("idle", float64(s.IdleConns))
	g("total", float64(s.TotalConns))
	g("max", float64(s.MaxConns))
	n("acquires", float64(s.AcquireCount))
	n("empty_acquires", float64(s.EmptyAcquireCount))
	n("acquire_time", s.AcquireDuration.Seconds())
}
