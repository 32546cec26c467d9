package loadgen

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/verify"
)

// fakeServer is a minimal redeem endpoint: it checks the tag with Key.Tag
// (-32020), then the token against the tokens it has seen (-32021). It does
// none of the real server's validation.
type fakeServer struct {
	keys  []*verify.Key
	delay time.Duration
	after int64  // call hook when the after-th request arrives
	hook  func() // (set before the server starts)

	mu       sync.Mutex
	seen     map[string]bool
	requests atomic.Int64
	success  atomic.Int64
}

func newFake(t *testing.T, keys ...*verify.Key) *fakeServer {
	t.Helper()
	return &fakeServer{keys: keys, seen: map[string]bool{}}
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := f.requests.Add(1); n == f.after && f.hook != nil {
		f.hook()
	}
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Data       []string `json:"data"`
			Bindings   []string `json:"bindings"`
			Compressed bool     `json:"compressed"`
		} `json:"params"`
	}
	fail := func(status, code int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":"x"}}`, req.ID, code)
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		fail(405, -32041)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if f.delay > 0 {
		// The body is read, so the server notices a client that gives up.
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		req.ID = json.RawMessage("null")
		fail(400, -32700)
		return
	}
	if req.Method != "redeem" || len(req.Params.Data) != 3 {
		fail(400, -32602)
		return
	}
	tok, err1 := base64.StdEncoding.DecodeString(req.Params.Data[0])
	tag, err2 := base64.StdEncoding.DecodeString(req.Params.Data[1])
	cfgJSON, err3 := base64.StdEncoding.DecodeString(req.Params.Data[2])
	var cfg struct{ Curve, Hash, Method string }
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(cfgJSON, &cfg) != nil {
		fail(400, -32602)
		return
	}
	m := verify.Increment
	if cfg.Method == "swu" {
		m = verify.SWU
	}
	ok := false
	for _, k := range f.keys {
		want, err := k.Tag(tok, m, req.Params.Compressed, req.Params.Bindings)
		if err == nil && hmac.Equal(want, tag) {
			ok = true
			break
		}
	}
	if !ok {
		fail(403, -32020)
		return
	}
	f.mu.Lock()
	spent := f.seen[string(tok)]
	f.seen[string(tok)] = true
	f.mu.Unlock()
	if spent {
		fail(403, -32021)
		return
	}
	f.success.Add(1)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":"success"}`, req.ID)
}

func testKey(t *testing.T) *verify.Key {
	t.Helper()
	k, err := verify.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// start runs f on an httptest server and returns the redeem URL.
func start(t *testing.T, f http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL + "/api/redeem"
}

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
	f := newFake(t, k)
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 8, Count: 300})
	checkConsistent(t, rep)
	if rep.Redemptions != 300 || rep.Codes["success"] != 300 || rep.Unexpected != 0 {
		t.Errorf("redemptions %d, codes %v, unexpected %d; want 300 successes", rep.Redemptions, rep.Codes, rep.Unexpected)
	}
	if got := f.success.Load(); got != 300 {
		t.Errorf("server redeemed %d distinct tokens, want 300", got)
	}
	if rep.Expected["success"] != 300 || rep.Concurrency != 8 || rep.Rate != 0 {
		t.Errorf("expected %v concurrency %d rate %v", rep.Expected, rep.Concurrency, rep.Rate)
	}
	if len(rep.Notes) != 0 {
		t.Errorf("notes %q", rep.Notes)
	}
}

func TestSeveralKeysAndSWU(t *testing.T) {
	k1, k2 := testKey(t), testKey(t)
	f := newFake(t, k1, k2)
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k1, k2}, Method: verify.SWU, Concurrency: 4, Count: 40})
	checkConsistent(t, rep)
	if rep.Codes["success"] != 40 || rep.Unexpected != 0 {
		t.Errorf("codes %v unexpected %d", rep.Codes, rep.Unexpected)
	}
	// Only k2 known: half the tokens (minted under k1) fail.
	f2 := newFake(t, k2)
	rep = run(t, Config{URL: start(t, f2), Keys: []*verify.Key{k1, k2}, Concurrency: 4, Count: 40})
	if rep.Codes["success"] != 20 || rep.Codes["-32020"] != 20 || rep.Unexpected != 20 {
		t.Errorf("codes %v unexpected %d; want 20/20/20", rep.Codes, rep.Unexpected)
	}
}

func TestDurationMode(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	const pool = 1500
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 4, Duration: 300 * time.Millisecond, PoolSize: pool})
	checkConsistent(t, rep)
	if rep.Redemptions == 0 || rep.Codes["success"] != rep.Redemptions || rep.Unexpected != 0 {
		t.Errorf("redemptions %d codes %v unexpected %d", rep.Redemptions, rep.Codes, rep.Unexpected)
	}
	// Either the duration ran out or (on a very fast machine) the pool did.
	if rep.Redemptions < pool && (rep.DurationSeconds < 0.3 || rep.DurationSeconds > 5) {
		t.Errorf("ran %.3fs, want about 0.3s", rep.DurationSeconds)
	}
	if rep.Redemptions == pool && len(rep.Notes) == 0 {
		t.Errorf("pool used up without a note")
	}
}

func TestDurationPoolUsedUp(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 4, Duration: time.Minute, PoolSize: 50})
	checkConsistent(t, rep)
	if rep.Redemptions != 50 || rep.Codes["success"] != 50 || rep.DurationSeconds > 30 {
		t.Errorf("redemptions %d codes %v in %vs", rep.Redemptions, rep.Codes, rep.DurationSeconds)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "used up after 50 requests") {
		t.Errorf("notes %q, want a used-up note", rep.Notes)
	}
}

func TestRateMode(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 16, Rate: 200, Duration: 500 * time.Millisecond})
	checkConsistent(t, rep)
	// Arrivals at 0, 5ms, ..., 495ms: exactly 100 slots, sent or late.
	if got := rep.Redemptions + rep.Codes["transport"] + rep.Codes["late"]; got != 100 {
		t.Errorf("%d requests scheduled, want 100 (codes %v)", got, rep.Codes)
	}
	if rep.Unexpected != 0 || rep.Rate != 200 {
		t.Errorf("unexpected %d rate %v", rep.Unexpected, rep.Rate)
	}
	// Loose: the schedule, not the server, sets the pace.
	if rep.RedemptionsPerSecond < 100 || rep.RedemptionsPerSecond > 260 {
		t.Errorf("rate %.1f/s, want about 200/s", rep.RedemptionsPerSecond)
	}
	if rep.DurationSeconds < 0.49 {
		t.Errorf("ran %.3fs, want ≥ 0.495s", rep.DurationSeconds)
	}
}

func TestRateWithCount(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 8, Rate: 400, Count: 60})
	checkConsistent(t, rep)
	if got := rep.Redemptions + rep.Codes["late"]; got != 60 {
		t.Errorf("%d scheduled, want 60", got)
	}
	// 60 arrivals at 2.5ms spacing: the last is due at 147.5ms.
	if rep.DurationSeconds < 0.147 {
		t.Errorf("ran %.3fs, want ≥ 0.1475s", rep.DurationSeconds)
	}
}

// A slow server with a bound on in-flight requests: most arrivals are late,
// and latency is measured from the schedule, so it includes the wait.
func TestRateLate(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	f.delay = 100 * time.Millisecond
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 2, Rate: 1000, Duration: 200 * time.Millisecond})
	checkConsistent(t, rep)
	if got := rep.Redemptions + rep.Codes["late"]; got != 200 {
		t.Errorf("%d scheduled, want 200 (codes %v)", got, rep.Codes)
	}
	if rep.Codes["late"] < 150 || rep.Redemptions < 2 || rep.Redemptions > 10 {
		t.Errorf("codes %v: want most late, a few sent", rep.Codes)
	}
	if rep.P50ms < 100 {
		t.Errorf("p50 %.1fms, want ≥ the server's 100ms", rep.P50ms)
	}
	if rep.Unexpected != 0 {
		t.Errorf("unexpected %d", rep.Unexpected)
	}
}

func TestMix(t *testing.T) {
	for _, rate := range []float64{0, 1000} {
		t.Run(fmt.Sprintf("rate=%v", rate), func(t *testing.T) {
			k := testKey(t)
			f := newFake(t, k)
			const n = 500
			rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 8, Count: n, Rate: rate,
				DoubleSpend: 0.2, BadTag: 0.1})
			checkConsistent(t, rep)
			if rep.Unexpected != 0 || rep.Codes["transport"] != 0 {
				t.Fatalf("unexpected %d codes %v", rep.Unexpected, rep.Codes)
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
			if got := f.success.Load(); got != int64(rep.Codes["success"]) {
				t.Errorf("server saw %d successes, report %d", got, rep.Codes["success"])
			}
		})
	}
}

// With every request a double spend, the first ones must still be fresh
// tokens (there is nothing to re-send yet) and nothing is unexpected.
func TestAllDoubleSpend(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 4, Count: 100, DoubleSpend: 1})
	checkConsistent(t, rep)
	if rep.Unexpected != 0 || rep.Redemptions != 100 || rep.Codes["success"] < 1 || rep.Codes["success"] > 4+16 {
		t.Errorf("codes %v unexpected %d", rep.Codes, rep.Unexpected)
	}
}

// A server that accepts nothing: double spends have nothing to re-send, the
// spare tokens run out, the run stops with a note.
func TestDoubleSpendNothingAccepted(t *testing.T) {
	k := testKey(t)
	f := newFake(t) // knows no key
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 2, Count: 200, DoubleSpend: 0.5})
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
	f := newFake(t, k)
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 2, Count: 20, BadTag: 0.5})
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
	srv := httptest.NewServer(newFake(t, k))
	url := srv.URL + "/api/redeem"
	srv.Close()
	rep := run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 4, Count: 20, Timeout: 2 * time.Second})
	checkConsistent(t, rep)
	if rep.Codes["transport"] != 20 || rep.Redemptions != 0 || rep.Unexpected != 0 {
		t.Errorf("codes %v redemptions %d unexpected %d", rep.Codes, rep.Redemptions, rep.Unexpected)
	}

	// Answers that are not JSON-RPC are transport failures too.
	url = start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	rep = run(t, Config{URL: url, Keys: []*verify.Key{k}, Concurrency: 4, Count: 10})
	if rep.Codes["transport"] != 10 {
		t.Errorf("codes %v", rep.Codes)
	}
}

func TestTimeout(t *testing.T) {
	k := testKey(t)
	f := newFake(t, k)
	f.delay = 2 * time.Second
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 2, Count: 2, Timeout: 50 * time.Millisecond})
	if rep.Codes["transport"] != 2 || rep.DurationSeconds > 1.5 {
		t.Errorf("codes %v in %vs", rep.Codes, rep.DurationSeconds)
	}
}

func TestCancel(t *testing.T) {
	k := testKey(t)
	for _, rate := range []float64{0, 500} {
		f := newFake(t, k)
		f.delay = 20 * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		f.after, f.hook = 10, cancel // cancel once the measurement is under way
		t0 := time.Now()
		rep, err := Run(ctx, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 4, Rate: rate,
			Duration: time.Minute, PoolSize: 500})
		cancel()
		if err != nil {
			t.Fatalf("rate %v: %v", rate, err)
		}
		t.Logf("rate %v:\n%s", rate, rep)
		checkConsistent(t, rep)
		if el := time.Since(t0); el > 20*time.Second {
			t.Errorf("rate %v: cancel took %v", rate, el)
		}
		if rep.Redemptions == 0 || rep.Codes["transport"] != 0 || rep.Unexpected != 0 {
			t.Errorf("rate %v: codes %v", rate, rep.Codes)
		}
		if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "interrupted") {
			t.Errorf("rate %v: notes %q", rate, rep.Notes)
		}
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

func TestProgress(t *testing.T) {
	old := progressInterval
	progressInterval = 20 * time.Millisecond
	defer func() { progressInterval = old }()
	k := testKey(t)
	f := newFake(t, k)
	f.delay = time.Millisecond
	var buf bytes.Buffer
	rep := run(t, Config{URL: start(t, f), Keys: []*verify.Key{k}, Concurrency: 2, Count: 600,
		Duration: 150 * time.Millisecond, Progress: &buf})
	out := buf.String()
	t.Logf("progress:\n%s", out)
	if !strings.Contains(out, "minted 600 tokens") {
		t.Errorf("no minting summary")
	}
	if !strings.Contains(out, "done ") || !strings.Contains(out, "/600") || !strings.Contains(out, "errors 0") {
		t.Errorf("no progress line")
	}
	if rep.Redemptions >= 600 {
		t.Errorf("duration did not stop the run")
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
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c, err := Config{URL: "http://x/", Keys: keys, Count: 1}.withDefaults()
	if err != nil || c.Concurrency != DefaultConcurrency || c.Timeout != DefaultTimeout || c.Method != verify.Increment {
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
	for body, want := range map[string]int{
		`{"jsonrpc":"2.0","id":1,"result":"success"}`:                                                                   codeSuccess,
		`{"jsonrpc": "2.0", "id": 1, "result" : "success"}`:                                                             codeSuccess,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32021,"message":"Redemption for token that has already been spent"}}`: -32021,
		`{"jsonrpc":"2.0","id":null,"error":{"message":"x","code": -32700}}`:                                            -32700,
		"{\"error\":{\n  \"code\":\n -32020\n}}":                                                                        -32020,
	} {
		if got, ok := parseOutcomeScan([]byte(body)); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", body, got, ok, want)
		}
	}
	for _, body := range []string{``, `bad gateway`, `{"result":"failure"}`, `{"error":{"code":"x"}}`,
		`{"error":{"message":"no code"}}`, `{"code":-1}`, `{"error":{"code":1}}`} {
		if got, ok := parseOutcomeScan([]byte(body)); ok {
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
	tok, err := mint(context.Background(), []*verify.Key{k}, verify.Increment, 50, 20, nil)
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
