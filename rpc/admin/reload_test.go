package admin

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestReloadGauges: a success sets both gauges, a failure only drops
// successful to 0 and keeps the time of the last success.
func TestReloadGauges(t *testing.T) {
	m := NewMetrics()
	g := NewReloadGauges(m)
	at := time.Unix(1700000000, 500_000_000)
	g.Observe(nil, at)
	g.Observe(errors.New("broken file"), at.Add(time.Hour))
	_, body := get(t, m.Handler(), "/metrics")
	for _, want := range []string{
		"ppredeem_config_last_reload_successful 0\n",
		"ppredeem_config_last_reload_success_timestamp_seconds 1.7000000005e+09\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	g.Observe(nil, at.Add(2*time.Hour))
	if _, body := get(t, m.Handler(), "/metrics"); !strings.Contains(body, "ppredeem_config_last_reload_successful 1\n") ||
		!strings.Contains(body, "ppredeem_config_last_reload_success_timestamp_seconds 1.7000072005e+09\n") {
		t.Errorf("after a new success:\n%s", body)
	}
}
