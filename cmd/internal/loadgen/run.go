package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"
)

// maxResponse bounds an answer's body; a longer one is a transport failure
// (the server's answers are about 100 bytes).
const maxResponse = 64 << 10

// Run mints the tokens, then sends the redemptions described by cfg and
// reports what happened. Errors are returned for a bad Config and for a
// failure (or cancellation) while minting; once the measurement has started,
// Run always returns a report, also when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := newHTTPClient(ctx, c)
	if err != nil {
		return nil, err
	}
	defer client.close()
	p := newPlan(c)
	tok, err := mint(ctx, c, p.valid, p.bad)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: c, pool: p, client: client}
	r.disp = newDispenser(c.Count, c.DoubleSpend, c.BadTag, tok)
	return r.run(ctx), nil
}

// runner is one measurement.
type runner struct {
	cfg    Config
	client *httpClient
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
					w.do(j, j.sched)
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
					w.do(j, time.Now())
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
	return startTicker(w, r.cfg.ProgressInterval, func(now time.Time) {
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

// worker sends requests one at a time and keeps its own statistics, merged
// when the run is over.
type worker struct {
	r      *runner
	ctx    context.Context
	sender *sender
	parser fastjson.Parser // decodes the answers

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
	return &worker{
		r:      r,
		ctx:    ctx,
		sender: r.client.newSender(ctx),
		lat:    make([]time.Duration, 0, capacity),
		codes:  make([]codeCount, 0, 8),
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

// do sends j and records its outcome; latency runs from t0.
func (w *worker) do(j job, t0 time.Time) {
	code, ok := w.send(j)
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
func (w *worker) send(j job) (code int, ok bool) {
	body, status, err := w.sender.send(j.body)
	if err != nil {
		if w.ctx.Err() != nil {
			return 0, false
		}
		if w.firstErr == nil {
			w.firstErr = err
		}
		return codeTransport, true
	}
	code, ok = parseOutcome(&w.parser, body)
	if !ok {
		if w.firstErr == nil {
			w.firstErr = fmt.Errorf("an answer is not JSON-RPC (HTTP %d): %q", status, truncate(body))
		}
		return codeTransport, true
	}
	return code, true
}

// truncate shortens b for an error message.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
