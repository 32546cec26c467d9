package main

import (
	"io"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/verify"
)

// TestAdminListener: metrics and pprof live on the admin listener, and the
// redemption counters move with each outcome.
func TestAdminListener(t *testing.T) {
	srv := startServer(t, newConfig(t, "--database-url", storeArgs(t)["postgres"][1], "--keys", testKeyFile, "--admin-listen", "127.0.0.1:0"))
	key := testKey(t)
	tok := mint(t, key, verify.Increment)
	post(t, srv.url, tok.body(1))
	post(t, srv.url, tok.body(2))
	bad := mint(t, key, verify.Increment)
	bad.tag[5] ^= 2
	post(t, srv.url, bad.body(3))

	resp, err := httpClient.Get(srv.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(raw)
	for _, want := range []string{
		`ppredeem_redemptions_total{key_id="` + key.ID() + `",outcome="success"} 1`,
		`ppredeem_redemptions_total{key_id="` + key.ID() + `",outcome="already_spent"} 1`,
		`ppredeem_redemptions_total{key_id="",outcome="bad_tag"} 1`,
		`ppredeem_redemption_duration_seconds_bucket{outcome="success",le="0.0001"}`,
		`ppredeem_http_request_duration_seconds_bucket{code="403",le="1"}`,
		`ppredeem_spend_batch_size_count 2`, // two spends; the bad tag spends nothing
		`ppredeem_db_pool_max_conns 16`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if status := getStatus(t, srv.admin+"/debug/pprof/"); status != 200 {
		t.Errorf("pprof on the admin listener: HTTP %d", status)
	}
}
