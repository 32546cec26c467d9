package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestHandler(t *testing.T) {
	m := NewMetrics()
	m.ObserveRedemption(rpc.OutcomeSuccess, "0123456789abcdef", 300*time.Microsecond)
	m.ObserveBatch(3)
	h := m.Handler()
	status, body := get(t, h, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics: HTTP %d", status)
	}
	for _, want := range []string{
		`ppredeem_redemptions_total{key_id="0123456789abcdef",outcome="success"} 1`,
		`ppredeem_redemption_duration_seconds_bucket{outcome="success",le="0.0005"} 1`,
		`ppredeem_spend_batch_size_sum 3`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Every redemption outcome is there from the start, at zero.
	for _, o := range rpc.Outcomes() {
		if !strings.Contains(body, `ppredeem_redemption_duration_seconds_count{outcome="`+string(o)+`"}`) {
			t.Errorf("outcome %s is not pre-registered", o)
		}
	}
	if status, _ := get(t, h, "/debug/pprof/"); status != 200 {
		t.Errorf("/debug/pprof/: HTTP %d", status)
	}
	// argv may hold a database password.
	if status, _ := get(t, h, "/debug/pprof/cmdline"); status == 200 {
		t.Error("/debug/pprof/cmdline is served")
	}
}

func TestInstrument(t *testing.T) {
	m := NewMetrics()
	h := m.Instrument(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/api/redeem", nil))
	if _, body := get(t, m.Handler(), "/metrics"); !strings.Contains(body, `ppredeem_http_request_duration_seconds_count{code="403"} 1`) {
		t.Error("the request was not counted by status")
	}
}
