package admin

import "github.com/prometheus/client_golang/prometheus"

// NewBuildInfo returns the gauge ppredeem_build_info{version,revision,goversion},
// always 1: its labels name the running binary (the version, the VCS
// revision, "" when unknown, and the Go toolchain that built it), as
// Prometheus's own prometheus_build_info does, so that a query can join on
// it or count the versions a fleet runs during a rollout.
func NewBuildInfo(version, revision, goVersion string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "ppredeem_build_info",
		Help:        "Always 1; the labels name the running binary's version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	}, func() float64 { return 1 })
}
