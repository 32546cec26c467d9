package main

import (
	"io"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// TestAdminListener: metrics and pprof live on the admin listener, and the
// redemption counters move with each outcome; for each store.
func TestAdminListener(t *testing.T) {
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		srv := startServer(t, newConfig(t, append(storeArgs, "--keys", testKeyFile, "--admin-listen", "127.0.0.1:0")...))
		key := verifytest.Key()
		tok := verifytest.Mint(t, key, verify.Increment)
		post(t, srv.url, rpctest.Redeem(1, tok))
		post(t, srv.url, rpctest.Redeem(2, tok))
		bad := verifytest.Mint(t, key, verify.Increment)
		bad.Tag[5] ^= 2
		post(t, srv.url, rpctest.Redeem(3, bad))

		resp, err := rpctest.HTTPClient().Get(srv.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics := string(raw)
		want := []string{
			`ppredeem_redemptions_total{key_id="` + key.ID() + `",outcome="success"} 1`,
			`ppredeem_redemptions_total{key_id="` + key.ID() + `",outcome="already_spent"} 1`,
			`ppredeem_redemptions_total{key_id="",outcome="bad_tag"} 1`,
			`ppredeem_redemption_duration_seconds_bucket{outcome="success",le="0.0001"}`,
			`ppredeem_http_request_duration_seconds_bucket{code="403",le="1"}`,
			`ppredeem_spend_batch_size_count 2`, // two spends; the bad tag spends nothing
			`go_goroutines`,
		}
		if storeArgs[0] == "--database-url" {
			want = append(want, `ppredeem_db_pool_max_conns 16`)
		}
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				t.Errorf("/metrics lacks %s", w)
			}
		}
		if status := getStatus(t, srv.admin+"/debug/pprof/"); status != 200 {
			t.Errorf("pprof on the admin listener: HTTP %d", status)
		}
	})
}
