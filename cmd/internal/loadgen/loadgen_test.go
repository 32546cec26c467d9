package loadgen

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/ppredeem/ppredeem/verify"
)

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("report:\n%s", rep)
	return rep
}

// checkConsistent checks the invariants every report has.
func checkConsistent(t *testing.T, rep *Report) {
	t.Helper()
	sumCodes, sumExp := 0, 0
	for k, v := range rep.Codes {
		if k != "late" {
			sumCodes += v
		}
	}
	for _, v := range rep.Expected {
		sumExp += v
	}
	if sumCodes != sumExp {
		t.Errorf("sum(codes)-late = %d, sum(expected) = %d", sumCodes, sumExp)
	}
	if answered := sumCodes - rep.Codes["transport"]; answered != rep.Redemptions {
		t.Errorf("redemptions %d, answers in codes %d", rep.Redemptions, answered)
	}
	if rep.Redemptions > 0 {
		if !(rep.P50ms > 0 && rep.P50ms <= rep.P90ms && rep.P90ms <= rep.P99ms && rep.P99ms <= rep.MaxMs && rep.MeanMs <= rep.MaxMs) {
			t.Errorf("percentiles out of order: p50 %v p90 %v p99 %v max %v mean %v",
				rep.P50ms, rep.P90ms, rep.P99ms, rep.MaxMs, rep.MeanMs)
		}
		if rep.RedemptionsPerSecond <= 0 || rep.DurationSeconds <= 0 {
			t.Errorf("rate %v over %vs", rep.RedemptionsPerSecond, rep.DurationSeconds)
		}
	}
}

func TestCountMode(t *testing.T) {
	k := testKey(t)
	url, srv := start(t, k)
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 8, Count: 300})
	checkConsistent(t, rep)
	if rep.Redemptions != 300 || rep.Codes["success"] != 300 || rep.Unexpected != 0 {
		t.Errorf("redemptions %d, codes %v, unexpected %d; want 300 successes", rep.Redemptions, rep.Codes, rep.Unexpected)
	}
	if got := srv.spent(t); got != 300 {
		t.Errorf("server spent %d distinct tokens, want 300", got)
	}
	if rep.Expected["success"] != 300 || rep.Concurrency != 8 || rep.Rate != 0 {
		t.Errorf("expected %v concurrency %d rate %v", rep.Expected, rep.Concurrency, rep.Rate)
	}
	if len(rep.Notes) != 0 || rep.Err() != nil {
		t.Errorf("notes %q, Err %v", rep.Notes, rep.Err())
	}
}

func TestSeveralKeysAndSWU(t *testing.T) {
	k1, k2 := testKey(t), testKey(t)
	url, _ := start(t, k1, k2)
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k1, k2}, Method: verify.SWU, Concurrency: 4, Count: 40})
	checkConsistent(t, rep)
	if rep.Codes["success"] != 40 || rep.Unexpected != 0 {
		t.Errorf("codes %v unexpected %d", rep.Codes, rep.Unexpected)
	}
	// Only k2 known: half the tokens (minted under k1) fail.
	url, _ = start(t, k2)
	rep = run(t, Config{URL: url, Keys: []*verify.Key{k1, k2}, Concurrency: 4, Count: 40})
	if rep.Codes["success"] != 20 || rep.Codes["-32020"] != 20 || rep.Unexpected != 20 {
		t.Errorf("codes %v unexpected %d; want 20/20/20", rep.Codes, rep.Unexpected)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "20 unexpected answers") {
		t.Errorf("Err = %v, want 20 unexpected answers", err)
	}
}

func TestDurationMode(t *testing.T) {
	k := testKey(t)
	url, _ := start(t, k)
	const pool = 1500
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 4, Duration: 300 * time.Millisecond, PoolSize: pool})
	checkConsistent(t, rep)
	if rep.Redemptions == 0 || rep.Codes["success"] != rep.Redemptions || rep.Unexpected != 0 {
		t.Errorf("redemptions %d codes %v unexpected %d", rep.Redemptions, rep.Codes, rep.Unexpected)
	}
	// Either the duration ran out or (on a fast machine) the pool did.
	if rep.Redemptions < pool && rep.DurationSeconds < 0.3 {
		t.Errorf("ran %.3fs with tokens left, want at least 0.3s", rep.DurationSeconds)
	}
	if rep.Redemptions == pool && len(rep.Notes) == 0 {
		t.Errorf("pool used up without a note")
	}
}

func TestDurationPoolUsedUp(t *testing.T) {
	k := testKey(t)
	url, _ := start(t, k)
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 4, Duration: time.Hour, PoolSize: 50})
	checkConsistent(t, rep)
	if rep.Redemptions != 50 || rep.Codes["success"] != 50 {
		t.Errorf("redemptions %d codes %v in %vs", rep.Redemptions, rep.Codes, rep.DurationSeconds)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "used up after 50 requests") {
		t.Errorf("notes %q, want a used-up note", rep.Notes)
	}
}

func TestRateMode(t *testing.T) {
	k := testKey(t)
	url, _ := start(t, k)
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 16, Rate: 200, Duration: 500 * time.Millisecond})
	checkConsistent(t, rep)
	// Arrivals at 0, 5ms, ..., 495ms: exactly 100 slots, sent or late.
	if got := rep.Redemptions + rep.Codes["transport"] + rep.Codes["late"]; got != 100 {
		t.Errorf("%d requests scheduled, want 100 (codes %v)", got, rep.Codes)
	}
	if rep.Unexpected != 0 || rep.Rate != 200 {
		t.Errorf("unexpected %d rate %v", rep.Unexpected, rep.Rate)
	}
	// The schedule, not the server, sets the pace: the last arrival is due
	// at 495ms, so the run cannot be shorter nor the rate above 100/0.495s.
	if rep.DurationSeconds < 0.495 || rep.RedemptionsPerSecond > 100/0.495 {
		t.Errorf("%.1f/s over %.3fs, want at most 202/s over at least 0.495s", rep.RedemptionsPerSecond, rep.DurationSeconds)
	}
}

func TestRateWithCount(t *testing.T) {
	k := testKey(t)
	url, _ := start(t, k)
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 8, Rate: 400, Count: 60})
	checkConsistent(t, rep)
	if got := rep.Redemptions + rep.Codes["late"]; got != 60 {
		t.Errorf("%d scheduled, want 60", got)
	}
	// 60 arrivals at 2.5ms spacing: the last is due at 147.5ms.
	if rep.DurationSeconds < 0.1475 {
		t.Errorf("ran %.3fs, want ≥ 0.1475s", rep.DurationSeconds)
	}
}

// A server that holds its requests while the bound on in-flight requests is
// reached: every later arrival is late, and latency is measured from the
// schedule, so it includes the wait.
func TestRateLate(t *testing.T) {
	k := testKey(t)
	release := make(chan struct{})
	srv := newServer(t, []*verify.Key{k}, holdUntil(release), false)
	// Slots due at 0, 1ms, ..., 199ms: the first two are sent and held, the
	// other 198 find both in flight. The server lets the two go once the
	// generator reports all 198 late.
	progress := newLineWatch(func(line string) bool { return strings.HasSuffix(line, "late 198") })
	go func() {
		<-progress.seen
		close(release)
	}()
	rep := run(t, Config{URL: srv.url, Keys: []*verify.Key{k}, Concurrency: 2, Rate: 1000, Count: 200,
		Progress: progress, ProgressInterval: 5 * time.Millisecond})
	checkConsistent(t, rep)
	if rep.Redemptions != 2 || rep.Codes["late"] != 198 || rep.Unexpected != 0 {
		t.Errorf("codes %v unexpected %d: want 2 answered and 198 late", rep.Codes, rep.Unexpected)
	}
	// Both were held until slot 199 came due at 199ms.
	if rep.P50ms < 198 {
		t.Errorf("p50 %.1fms, want ≥ 198ms", rep.P50ms)
	}
	if rep.Err() != nil {
		t.Errorf("late requests are not failures: %v", rep.Err())
	}
}

func TestMix(t *testing.T) {
	for _, rate := range []float64{0, 1000} {
		t.Run(fmt.Sprintf("rate=%v", rate), func(t *testing.T) {
			k := testKey(t)
			url, srv := start(t, k)
			const n = 500
			rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 8, Count: n, Rate: rate,
				DoubleSpend: 0.2, BadTag: 0.1})
			checkConsistent(t, rep)
			if rep.Unexpected != 0 || rep.Codes["transport"] != 0 || rep.Err() != nil {
				t.Fatalf("unexpected %d codes %v Err %v", rep.Unexpected, rep.Codes, rep.Err())
			}
			sent := rep.Redemptions // late ones have no kind
			for code, want := range map[string]float64{"success": 0.7, "-32021": 0.2, "-32020": 0.1} {
				if got := rep.Codes[code]; got != rep.Expected[code] {
					t.Errorf("%s: got %d, expected %d", code, got, rep.Expected[code])
				}
				if got, w := float64(rep.Expected[code]), want*float64(sent); math.Abs(got-w) > 2+0.02*float64(n) {
					t.Errorf("%s: %v of %d, want about %v", code, got, sent, w)
				}
			}
			if rate == 0 && (rep.Expected["-32021"] < 99 || rep.Expected["-32020"] != 50) {
				t.Errorf("expected %v, want 100 double spends and 50 bad tags", rep.Expected)
			}
			if got := srv.spent(t); got != int64(rep.Codes["success"]) {
				t.Errorf("server spent %d tokens, report %d successes", got, rep.Codes["success"])
			}
		})
	}
}

// With every request a double spend, the first ones must still be fresh
// tokens (there is nothing to re-send yet) and nothing is unexpected.
func TestAllDoubleSpend(t *testing.T) {
	k := testKey(t)
	url, _ := start(t, k)
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 4, Count: 100, DoubleSpend: 1})
	checkConsistent(t, rep)
	if rep.Unexpected != 0 || rep.Redemptions != 100 || rep.Codes["success"] < 1 || rep.Codes["success"] > 4+16 {
		t.Errorf("codes %v unexpected %d", rep.Codes, rep.Unexpected)
	}
}

// A server that accepts nothing (it holds another key): double spends have
// nothing to re-send, the spare tokens run out, the run stops with a note.
func TestDoubleSpendNothingAccepted(t *testing.T) {
	k := testKey(t)
	url, _ := start(t, testKey(t))
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 2, Count: 200, DoubleSpend: 0.5})
	checkConsistent(t, rep)
	if rep.Codes["-32020"] != rep.Redemptions || rep.Unexpected != rep.Redemptions {
		t.Errorf("codes %v unexpected %d", rep.Codes, rep.Unexpected)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "nothing to re-send") {
		t.Errorf("notes %q", rep.Notes)
	}
}

func TestJSONContract(t *testing.T) {
	k := testKey(t)
	url, _ := start(t, k)
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 2, Count: 20, BadTag: 0.5})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Errorf("want one line: %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"redemptions", "duration_seconds", "redemptions_per_second",
		"p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "codes", "concurrency", "expected", "unexpected"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, buf.String())
		}
	}
	if _, ok := m["rate"]; ok {
		t.Errorf("closed loop JSON has a rate: %s", buf.String())
	}
	codes, _ := m["codes"].(map[string]any)
	if codes["success"] != 10.0 || codes["-32020"] != 10.0 {
		t.Errorf("codes %v", codes)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.P99ms != rep.P99ms || back.Codes["success"] != 10 {
		t.Errorf("round trip: %v %+v", err, back)
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"p50", "p99", "success", "-32020", "unexpected"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

func TestTransportErrors(t *testing.T) {
	k := testKey(t)
	url, srv := start(t, k)
	srv.Close()
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 4, Count: 20, Timeout: 2 * time.Second})
	checkConsistent(t, rep)
	if rep.Codes["transport"] != 20 || rep.Redemptions != 0 || rep.Unexpected != 0 {
		t.Errorf("codes %v redemptions %d unexpected %d", rep.Codes, rep.Redemptions, rep.Unexpected)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "20 transport failures") {
		t.Errorf("Err = %v, want 20 transport failures", err)
	}

	// Answers that are not JSON-RPC are transport failures too.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	t.Cleanup(bad.Close)
	rep = run(t, Config{URL: bad.URL + "/api/redeem", Keys: []*verify.Key{k}, Concurrency: 4, Count: 10})
	if rep.Codes["transport"] != 10 || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "not JSON-RPC (HTTP 502)") {
		t.Errorf("codes %v notes %q", rep.Codes, rep.Notes)
	}
}

// A server that never answers: every request times out.
func TestTimeout(t *testing.T) {
	k := testKey(t)
	never := make(chan struct{})
	srv := newServer(t, []*verify.Key{k}, holdUntil(never), false)
	rep := run(t, Config{URL: srv.url, Keys: []*verify.Key{k}, Concurrency: 2, Count: 4, Timeout: 50 * time.Millisecond})
	checkConsistent(t, rep)
	if rep.Codes["transport"] != 4 || rep.Redemptions != 0 {
		t.Errorf("codes %v", rep.Codes)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "timeout") {
		t.Errorf("notes %q", rep.Notes)
	}
}

// Cancelling the context while requests are in flight aborts them at once
// (the server holds them until their client hangs up), does not count them,
// and Run reports what completed.
func TestCancel(t *testing.T) {
	k := testKey(t)
	for _, rate := range []float64{0, 500} {
		t.Run(fmt.Sprintf("rate=%v", rate), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var n atomic.Int64
			srv := newServer(t, []*verify.Key{k}, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					switch i := n.Add(1); {
					case i < 10:
						h.ServeHTTP(w, r)
					case i == 10:
						cancel() // the measurement is under way
						fallthrough
					default:
						readBody(r)
						<-r.Context().Done() // until the generator hangs up
					}
				})
			}, false)
			rep, err := Run(ctx, Config{URL: srv.url, Keys: []*verify.Key{k}, Concurrency: 4, Rate: rate,
				Duration: time.Hour, PoolSize: 500})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%s", rep)
			checkConsistent(t, rep)
			// Request 10 was sent with at most 3 others in flight, so at
			// least 6 of the first 9 had been answered and counted.
			if rep.Redemptions < 6 || rep.Redemptions > 9 || rep.Codes["transport"] != 0 || rep.Unexpected != 0 {
				t.Errorf("codes %v, want 6 to 9 successes", rep.Codes)
			}
			if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "interrupted") || !strings.Contains(rep.Notes[0], "aborted") {
				t.Errorf("notes %q", rep.Notes)
			}
		})
	}
}

func TestCancelWhileMinting(t *testing.T) {
	k := testKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Config{URL: "http://127.0.0.1:1/api/redeem", Keys: []*verify.Key{k}, Count: 100})
	if err == nil {
		t.Fatal("no error")
	}
}

// Progress lines are written every ProgressInterval while requests are in
// flight: the server holds every request until one has been written.
func TestProgress(t *testing.T) {
	k := testKey(t)
	release := make(chan struct{})
	srv := newServer(t, []*verify.Key{k}, holdUntil(release), false)
	progress := newLineWatch(func(line string) bool { return strings.Contains(line, "done 0/50") })
	go func() {
		<-progress.seen
		close(release)
	}()
	rep := run(t, Config{URL: srv.url, Keys: []*verify.Key{k}, Concurrency: 2, Count: 50,
		Progress: progress, ProgressInterval: time.Millisecond})
	out := progress.String()
	t.Logf("progress:\n%s", out)
	if !strings.Contains(out, "minted 50 tokens") {
		t.Errorf("no minting summary")
	}
	if !strings.Contains(out, "errors 0") || !strings.Contains(out, " rate ") {
		t.Errorf("no progress line")
	}
	if rep.Codes["success"] != 50 {
		t.Errorf("codes %v", rep.Codes)
	}
}

func TestConfigErrors(t *testing.T) {
	k := testKey(t)
	keys := []*verify.Key{k}
	for name, c := range map[string]Config{
		"no url":        {Keys: keys, Count: 1},
		"bad url":       {URL: "127.0.0.1:8080", Keys: keys, Count: 1},
		"no keys":       {URL: "http://x/", Count: 1},
		"nil key":       {URL: "http://x/", Keys: []*verify.Key{nil}, Count: 1},
		"no bound":      {URL: "http://x/", Keys: keys},
		"negative":      {URL: "http://x/", Keys: keys, Count: -1},
		"rate":          {URL: "http://x/", Keys: keys, Count: 1, Rate: math.Inf(1)},
		"double":        {URL: "http://x/", Keys: keys, Count: 1, DoubleSpend: 1.5},
		"bad":           {URL: "http://x/", Keys: keys, Count: 1, BadTag: math.NaN()},
		"sum":           {URL: "http://x/", Keys: keys, Count: 1, BadTag: 0.6, DoubleSpend: 0.6},
		"concurrency":   {URL: "http://x/", Keys: keys, Count: 1, Concurrency: -1},
		"pool negative": {URL: "http://x/", Keys: keys, Duration: 1, PoolSize: -1},
		"idle negative": {URL: "http://x/", Keys: keys, Count: 1, IdleConnTimeout: -1},
		"progress":      {URL: "http://x/", Keys: keys, Count: 1, ProgressInterval: -1},
		"timeout":       {URL: "http://x/", Keys: keys, Count: 1, Timeout: -1},
		"scheme":        {URL: "ftp://x/", Keys: keys, Count: 1},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c, err := Config{URL: "http://x/", Keys: keys, Count: 1}.withDefaults()
	if err != nil || c.Concurrency != DefaultConcurrency || c.Timeout != DefaultTimeout || c.Method != verify.Increment ||
		c.IdleConnTimeout != DefaultIdleConnTimeout || c.ProgressInterval != DefaultProgressInterval {
		t.Errorf("defaults: %+v %v", c, err)
	}
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		pool int
	}{
		{Config{Count: 1000, Concurrency: 8}, 1000},
		{Config{Count: 1000, Rate: 100, Duration: time.Second, Concurrency: 8}, 101},
		{Config{Rate: 100, Duration: 2 * time.Second, Concurrency: 8}, 201},
		{Config{Rate: 1e6, Duration: time.Hour, Concurrency: 8}, DefaultPoolCap},
		{Config{Rate: 1e6, Duration: time.Hour, Concurrency: 8, PoolSize: 10}, 10},
		{Config{Duration: time.Millisecond, Concurrency: 8}, minPool},
		{Config{Duration: 2 * time.Second, Concurrency: 8}, 2 * assumedMaxRate},
		{Config{Duration: time.Hour, Concurrency: 8}, DefaultPoolCap},
		{Config{Duration: time.Hour, Concurrency: 8, PoolSize: 5}, 5},
	} {
		if p := newPlan(tc.c); p.pool != tc.pool || p.valid != tc.pool || p.bad != 0 {
			t.Errorf("%+v: plan %+v, want pool %d", tc.c, p, tc.pool)
		}
	}
	p := newPlan(Config{Count: 1000, Concurrency: 8, DoubleSpend: 0.2, BadTag: 0.1})
	if p.bad != 101 || p.valid < 701+32 || p.valid > 702+32 {
		t.Errorf("mix plan %+v", p)
	}
}

// The dispenser alone: exact shares, kinds interleaved, re-sends only of
// redeemed tokens, and debt repaid.
func TestDispenser(t *testing.T) {
	const n = 1000
	tok := &tokens{}
	for i := range n {
		tok.valid = append(tok.valid, []byte(fmt.Sprint("v", i)))
		tok.bad = append(tok.bad, []byte(fmt.Sprint("b", i)))
	}
	d := newDispenser(n, 0.25, 0.05, tok)
	var count [numKinds]int
	redeemed := map[string]bool{}
	maxRun := 0
	for i, run := 0, 0; ; i++ {
		j, ok := d.take()
		if !ok {
			break
		}
		count[j.kind]++
		if j.kind == kindDouble {
			if !redeemed[string(j.body)] {
				t.Fatalf("slot %d re-sends %q, never redeemed", i, j.body)
			}
			run++
			maxRun = max(maxRun, run)
		} else {
			run = 0
		}
		// Answers arrive after 3 more requests have been sent.
		if j.valid >= 0 && i >= 3 {
			d.redeemed(j.valid)
			redeemed[string(j.body)] = true
		}
	}
	if count != [numKinds]int{kindFresh: 700, kindBad: 50, kindDouble: 250} {
		t.Errorf("counts %v", count)
	}
	if maxRun > 2 {
		t.Errorf("%d double spends in a row: not interleaved", maxRun)
	}
	if d.exhaustedReason() != "" || d.debt != 0 {
		t.Errorf("exhausted %q debt %d", d.exhaustedReason(), d.debt)
	}
}

func TestParseOutcome(t *testing.T) {
	var p fastjson.Parser
	for body, want := range map[string]int{
		`{"jsonrpc":"2.0","id":1,"result":"success"}`:                                                                   codeSuccess,
		`{"jsonrpc": "2.0", "id": 1, "result" : "success"}` + "\n":                                                      codeSuccess,
		`{"result":"succ\u0065ss","jsonrpc":"2.0"}`:                                                                     codeSuccess,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32021,"message":"Redemption for token that has already been spent"}}`: -32021,
		`{"jsonrpc":"2.0","id":null,"error":{"message":"x","code": -32700}}`:                                            -32700,
		"{\"jsonrpc\":\"2.0\",\"error\":{\n  \"code\":\n -32020\n}}":                                                    -32020,
	} {
		if got, ok := parseOutcome(&p, []byte(body)); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", body, got, ok, want)
		}
	}
	for _, body := range []string{``, `bad gateway`, `[]`, `"success"`, `{"result":"success"}`,
		`{"jsonrpc":"1.0","result":"success"}`, `{"jsonrpc":"2.0","result":"failure"}`, `{"jsonrpc":"2.0","result":true}`,
		`{"jsonrpc":"2.0","result":"success"`, `{"jsonrpc":"2.0","result":"success"} x`,
		`{"jsonrpc":"2.0","result":"success","error":{"code":-32020}}`, `{"jsonrpc":"2.0"}`,
		`{"jsonrpc":"2.0","error":{"code":"x"}}`, `{"jsonrpc":"2.0","error":{"code":-32020.5}}`,
		`{"jsonrpc":"2.0","error":{"message":"no code"}}`, `{"jsonrpc":"2.0","error":-32020}`,
		`{"jsonrpc":"2.0","code":-1}`, `{"jsonrpc":"2.0","error":{"code":1}}`, `{"jsonrpc":"2.0","error":{"code":2}}`} {
		if got, ok := parseOutcome(&p, []byte(body)); ok {
			t.Errorf("%s: %d, want not ok", body, got)
		}
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{0.5: 500, 0.9: 900, 0.99: 990, 1: 1000, 0: 1} {
		if got := percentile(lat, p); got != want*time.Millisecond {
			t.Errorf("p%v = %v, want %vms", p, got, want)
		}
	}
	if got := percentile(lat[:1], 0.99); got != time.Millisecond {
		t.Errorf("one sample: %v", got)
	}
}

// The minted bodies are valid requests: good tags verify, bad ones do not,
// and every token is distinct.
func TestMint(t *testing.T) {
	k := testKey(t)
	tok, err := mint(context.Background(), Config{Keys: []*verify.Key{k}, Method: verify.Increment}, 50, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.valid) != 50 || len(tok.bad) != 20 {
		t.Fatalf("%d valid %d bad", len(tok.valid), len(tok.bad))
	}
	seen := map[string]bool{}
	for i, b := range append(append([][]byte{}, tok.valid...), tok.bad...) {
		var req struct {
			JSONRPC string `json:"jsonrpc"`
			Method  string `json:"method"`
			Params  struct {
				Data       []string `json:"data"`
				Bindings   []string `json:"bindings"`
				Compressed *bool    `json:"compressed"`
			} `json:"params"`
		}
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatalf("body %d: %v: %s", i, err, b)
		}
		if req.JSONRPC != "2.0" || req.Method != "redeem" || len(req.Params.Data) != 3 ||
			req.Params.Compressed == nil || *req.Params.Compressed || len(req.Params.Bindings) != 2 {
			t.Fatalf("body %d: %s", i, b)
		}
		cfg, _ := base64.StdEncoding.DecodeString(req.Params.Data[2])
		if string(cfg) != `{"curve":"p256","hash":"sha256","method":"increment"}` {
			t.Errorf("params %s", cfg)
		}
		tokBytes, _ := base64.StdEncoding.DecodeString(req.Params.Data[0])
		tag, _ := base64.StdEncoding.DecodeString(req.Params.Data[1])
		if len(tokBytes) != 32 || len(tag) != 32 || seen[string(tokBytes)] {
			t.Fatalf("body %d: token %x tag %x", i, tokBytes, tag)
		}
		seen[string(tokBytes)] = true
		want, _ := k.Tag(tokBytes, verify.Increment, false, Bindings)
		if good := hmac.Equal(want, tag); good != (i < 50) {
			t.Errorf("body %d: tag verifies = %v", i, good)
		}
	}
}

// FuzzParseOutcome: no input panics, and whatever parseOutcome accepts is
// valid JSON.
func FuzzParseOutcome(f *testing.F) {
	for _, s := range []string{okBody, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`,
		`{"jsonrpc":"2.0","result":"success","error":{"code":1}}`, `{"jsonrpc":"2.0","error":{"code":-3.2e4}}`, `[1,`} {
		f.Add([]byte(s))
	}
	var p fastjson.Parser
	f.Fuzz(func(t *testing.T, b []byte) {
		code, ok := parseOutcome(&p, b)
		if ok && (!json.Valid(b) || code == codeTransport) {
			t.Fatalf("%q accepted as %d", b, code)
		}
	})
}
