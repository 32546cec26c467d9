package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// progressInterval is how often progress lines are written.
var progressInterval = time.Second

// maxResponse bounds how much of an answer is kept for parsing; the rest is
// discarded.
const maxResponse = 64 << 10

// Run mints the tokens, then sends the redemptions described by cfg and
// reports what happened. Errors are returned for a bad Config and for a
// failure (or cancellation) while minting; once the measurement has started,
// Run always returns a report, also when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	return runWith(ctx, cfg, options{})
}

// options are knobs for tests and benchmarks; Run uses the zero value.
type options struct {
	netHTTP   bool        // use net/http for http:// URLs too
	tlsConfig *tls.Config // net/http path: TLS client configuration
}

func runWith(ctx context.Context, cfg Config, o options) (*Report, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.URL) // validated by withDefaults
	p := newPlan(c)
	r := &runner{cfg: c, pool: p}
	head := ""
	if u.Scheme == "http" && !o.netHTTP {
		t := newH1Target(u)
		r.target, head = &t, t.head
	} else {
		tr := newTransport(c.Concurrency, o.tlsConfig)
		defer tr.CloseIdleConnections()
		r.url = u
		r.client = &http.Client{Transport: tr, Timeout: c.Timeout}
	}
	tok, err := mintRequests(ctx, c.Keys, c.Method, p.valid, p.bad, head, c.Progress)
	if err != nil {
		return nil, err
	}
	r.disp = newDispenser(c.Count, c.DoubleSpend, c.BadTag, tok)
	return r.run(ctx), nil
}

// newTransport is the net/http transport of the https:// path.
func newTransport(concurrency int, tlsConfig *tls.Config) *http.Transport {
	return &http.Transport{
		Proxy: nil, // measure the server, not a proxy
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:     tlsConfig,
		MaxIdleConns:        2 * concurrency,
		MaxIdleConnsPerHost: concurrency,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// runner is one measurement.
type runner struct {
	cfg    Config
	target *h1Target    // fast path (http://); nil on the net/http path (https://)
	url    *url.URL     // net/http path
	client *http.Client // net/http path
	disp   *dispenser
	pool   plan

	stop      atomic.Bool  // no new requests
	inflight  atomic.Int64 // open loop: requests handed to workers and not finished
	done      atomic.Int64 // requests finished (answered or transport failure)
	errs      atomic.Int64 // transport failures and unexpected answers
	late      atomic.Int64 // open loop: requests dropped
	cancelled atomic.Int64 // requests aborted by ctx
}

func (r *runner) run(ctx context.Context) *Report {
	c := r.cfg
	workers := make([]*worker, c.Concurrency)
	perWorker := r.pool.pool/c.Concurrency + 16
	for i := range workers {
		workers[i] = r.newWorker(ctx, perWorker)
	}
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()

	start := time.Now()
	var deadline time.Time
	if c.Duration > 0 {
		deadline = start.Add(c.Duration)
		t := time.AfterFunc(c.Duration, func() { r.stop.Store(true) })
		defer t.Stop()
	}
	stopOnCancel := context.AfterFunc(ctx, func() { r.stop.Store(true) })
	defer stopOnCancel()

	stopProgress := r.startProgress(start)

	var wg sync.WaitGroup
	if c.Rate > 0 {
		jobs := make(chan job, c.Concurrency)
		for _, w := range workers {
			wg.Go(func() {
				for j := range jobs {
					w.do(j, j.sched, time.Now())
					r.inflight.Add(-1)
				}
			})
		}
		r.schedule(ctx, start, deadline, jobs)
		close(jobs)
	} else {
		for _, w := range workers {
			wg.Go(func() {
				for !r.stop.Load() {
					j, ok := r.disp.take()
					if !ok {
						return
					}
					now := time.Now()
					w.do(j, now, now)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	var notes []string
	if ctx.Err() != nil {
		n := fmt.Sprintf("interrupted after %.2fs", elapsed.Seconds())
		if k := r.cancelled.Load(); k > 0 {
			n += fmt.Sprintf("; %d in-flight requests were aborted and are not counted", k)
		}
		notes = append(notes, n)
	}
	if why := r.disp.exhaustedReason(); why != "" {
		notes = append(notes, "stopped early: "+why)
	}
	transport := 0
	var firstErr error
	for _, w := range workers {
		transport += w.count(codeTransport)
		if firstErr == nil {
			firstErr = w.firstErr
		}
	}
	if transport > 0 && firstErr != nil {
		notes = append(notes, fmt.Sprintf("%d transport failures, e.g. %v", transport, firstErr))
	}
	return newReport(c, workers, elapsed, r.late.Load(), notes)
}

// schedule is the open-loop arrival process: request i is due at
// start + i/Rate. Every request that is due is handed to a worker at once; if
// Concurrency requests are in flight it is dropped as late.
func (r *runner) schedule(ctx context.Context, start, deadline time.Time, jobs chan<- job) {
	interval := float64(time.Second) / r.cfg.Rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	limit := int64(r.cfg.Concurrency)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(float64(i) * interval))
		if !deadline.IsZero() && !due.Before(deadline) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		if r.inflight.Load() >= limit {
			if !r.disp.skip() {
				return
			}
			r.late.Add(1)
			continue
		}
		j, ok := r.disp.take()
		if !ok {
			return
		}
		j.sched = due
		r.inflight.Add(1)
		jobs <- j // never blocks: at most Concurrency jobs are queued or in flight
	}
}

func (r *runner) startProgress(start time.Time) (stop func()) {
	w := r.cfg.Progress
	total := ""
	if r.cfg.Count > 0 {
		total = fmt.Sprintf("/%d", r.cfg.Count)
	}
	prevDone, prevTime := int64(0), start
	return startTicker(w, func(now time.Time) {
		d := r.done.Load()
		cur := float64(d-prevDone) / now.Sub(prevTime).Seconds()
		avg := float64(d) / now.Sub(start).Seconds()
		prevDone, prevTime = d, now
		line := fmt.Sprintf("bench: %6.1fs  done %d%s  rate %.0f/s (avg %.0f/s)  errors %d",
			now.Sub(start).Seconds(), d, total, cur, avg, r.errs.Load())
		if r.cfg.Rate > 0 {
			line += fmt.Sprintf("  late %d", r.late.Load())
		}
		fmt.Fprintln(w, line)
	})
}

var expectedCode = [numKinds]int{kindFresh: codeSuccess, kindBad: -32020, kindDouble: -32021}

// worker sends requests one at a time, over its own connection on the fast
// path, and keeps its own statistics, merged when the run is over.
type worker struct {
	r   *runner
	ctx context.Context
	h1  *h1Client      // fast path
	std *netHTTPSender // net/http path

	lat        []time.Duration
	codes      []codeCount // a handful of distinct codes: a slice beats a map
	expected   [numKinds]int
	unexpected int
	answered   int
	firstErr   error // the first transport failure, for the report's notes
}

// codeCount is how often an outcome code came back.
type codeCount struct{ code, n int }

func (r *runner) newWorker(ctx context.Context, capacity int) *worker {
	w := &worker{
		r:     r,
		ctx:   ctx,
		lat:   make([]time.Duration, 0, capacity),
		codes: make([]codeCount, 0, 8),
	}
	if r.target != nil {
		w.h1 = newH1Client(ctx, r.target.addr, r.cfg.Timeout)
	} else {
		w.std = newNetHTTPSender(ctx, r.client, r.url)
	}
	return w
}

// close releases the worker's connection.
func (w *worker) close() {
	if w.h1 != nil {
		w.h1.close()
	}
}

// add counts one outcome.
func (w *worker) add(code int) {
	for i := range w.codes {
		if w.codes[i].code == code {
			w.codes[i].n++
			return
		}
	}
	w.codes = append(w.codes, codeCount{code, 1})
}

// count is how often code came back.
func (w *worker) count(code int) int {
	for _, c := range w.codes {
		if c.code == code {
			return c.n
		}
	}
	return 0
}

// do sends j and records its outcome; latency runs from t0, now is the time
// the request is sent.
func (w *worker) do(j job, t0, now time.Time) {
	code, ok := w.send(j, now)
	lat := time.Since(t0)
	if !ok { // aborted by ctx: not counted
		w.r.cancelled.Add(1)
		return
	}
	w.r.done.Add(1)
	w.expected[j.kind]++
	w.add(code)
	if code == codeTransport {
		w.r.errs.Add(1)
		return
	}
	w.answered++
	w.lat = append(w.lat, lat)
	if code != expectedCode[j.kind] {
		w.unexpected++
		w.r.errs.Add(1)
	}
	if code == codeSuccess && j.valid >= 0 {
		w.r.disp.redeemed(j.valid)
	}
}

// send sends j and returns the outcome code; ok is false if the request was
// aborted because the run's context was cancelled.
func (w *worker) send(j job, now time.Time) (code int, ok bool) {
	var (
		body   []byte
		status int
		err    error
	)
	if w.h1 != nil {
		body, err = w.h1.roundTrip(j.req, now)
		status = w.h1.status
	} else {
		body, status, err = w.std.send(j.body)
	}
	if err != nil {
		if w.ctx.Err() != nil {
			return 0, false
		}
		if w.firstErr == nil {
			w.firstErr = err
		}
		return codeTransport, true
	}
	code, ok = parseOutcomeScan(body)
	if !ok {
		if w.firstErr == nil {
			w.firstErr = fmt.Errorf("an answer is not JSON-RPC (HTTP %d): %q", status, truncate(body))
		}
		return codeTransport, true
	}
	return code, true
}

// netHTTPSender is a worker's net/http client, for https:// URLs.
type netHTTPSender struct {
	ctx    context.Context
	client *http.Client
	url    url.URL
	header http.Header
	buf    []byte
}

func newNetHTTPSender(ctx context.Context, client *http.Client, u *url.URL) *netHTTPSender {
	return &netHTTPSender{
		ctx:    ctx,
		client: client,
		url:    *u,
		header: http.Header{"Content-Type": {"application/json"}},
		buf:    make([]byte, 0, 1024),
	}
}

// send POSTs body and returns the answer's body (valid until the next call)
// and status.
func (s *netHTTPSender) send(body []byte) ([]byte, int, error) {
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           &s.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        s.header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          s.url.Host,
		GetBody: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		},
	}
	resp, err := s.client.Do(req.WithContext(s.ctx))
	if err != nil {
		return nil, 0, err
	}
	s.buf, err = readBody(s.buf, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, resp.StatusCode, err
	}
	return s.buf, resp.StatusCode, nil
}

// readBody reads r into buf[:0], keeping at most maxResponse bytes and
// discarding the rest.
func readBody(buf []byte, r io.Reader) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= maxResponse {
				_, err := io.Copy(io.Discard, r)
				return buf, err
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

var (
	keyResult = []byte(`"result"`)
	keyError  = []byte(`"error"`)
	keyCode   = []byte(`"code"`)
)

// parseOutcomeScan finds the outcome of a JSON-RPC answer without decoding it:
// codeSuccess for "result":"success", the error's "code" otherwise. ok is
// false if the body is neither.
func parseOutcomeScan(b []byte) (code int, ok bool) {
	if v, found := valueOf(b, keyResult); found {
		if bytes.HasPrefix(v, []byte(`"success"`)) {
			return codeSuccess, true
		}
		return 0, false
	}
	i := bytes.Index(b, keyError)
	if i < 0 {
		return 0, false
	}
	v, found := valueOf(b[i+len(keyError):], keyCode)
	if !found {
		return 0, false
	}
	neg := false
	if len(v) > 0 && v[0] == '-' {
		neg, v = true, v[1:]
	}
	n, digits := 0, 0
	for _, c := range v {
		if c < '0' || c > '9' || digits > 9 {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	if n == codeSuccess || n == codeTransport { // cannot collide with our markers
		return 0, false
	}
	return n, true
}

// valueOf returns what follows `key` and a colon (with optional whitespace).
func valueOf(b, key []byte) ([]byte, bool) {
	i := bytes.Index(b, key)
	if i < 0 {
		return nil, false
	}
	v := skipSpace(b[i+len(key):])
	if len(v) == 0 || v[0] != ':' {
		return nil, false
	}
	return skipSpace(v[1:]), true
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
