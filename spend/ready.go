package spend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ReadyCacheFor is how long one readiness answer stands: Ready runs at most one write probe
// per ReadyCacheFor, and a spend's outcome stands as the answer for as long.
const ReadyCacheFor = time.Second

// readiness tells whether a store accepts spends, from two kinds of evidence: the outcome of
// real spends (recorded by the batcher), and, when no spend has been answered within
// cacheFor, a write probe of the store's own. The most recent evidence is the answer: a
// failing spend makes the store unready at once, a succeeding one ready at once. So a server
// under traffic never probes, and a server with none probes at most once per cacheFor
// however many callers ask: one probe runs at a time and the others wait for its answer.
type readiness struct {
	probe    func(ctx context.Context) error
	timeout  time.Duration // of one probe, independent of the callers
	cacheFor time.Duration

	mu       sync.Mutex
	writeAt  time.Time // last spend answered by the store (zero: none yet)
	writeErr error
	probeAt  time.Time
	probeErr error
	running  chan struct{} // closed when the running probe ends; nil when none runs
	probes   int           // probes started, for tests
	closed   bool
}

func newReadiness(probe func(context.Context) error, timeout time.Duration) *readiness {
	return &readiness{probe: probe, timeout: timeout, cacheFor: ReadyCacheFor}
}

// wrote records the outcome of spends just answered: nil for a success (including "already
// spent"), or the store's error.
func (r *readiness) wrote(err error) {
	now := time.Now()
	r.mu.Lock()
	r.writeAt, r.writeErr = now, err
	r.mu.Unlock()
}

// answer returns the most recent evidence and whether it is fresh. r.mu is held.
func (r *readiness) answer(now time.Time) (err error, fresh bool) {
	if r.closed {
		return errClosed, true
	}
	at := r.probeAt
	err = r.probeErr
	if err != nil {
		err = fmt.Errorf("spend: the store refuses writes (write probe at %s): %w", r.probeAt.UTC().Format(time.RFC3339), err)
	}
	if !r.writeAt.IsZero() && !r.writeAt.Before(at) {
		at, err = r.writeAt, r.writeErr
		if err != nil {
			err = fmt.Errorf("spend: spends are failing (the last at %s, none succeeded since): %w",
				r.writeAt.UTC().Format(time.RFC3339), err)
		}
	}
	return err, !at.IsZero() && now.Sub(at) < r.cacheFor
}

// ready answers from fresh evidence, or waits for a probe (starting one if none runs).
func (r *readiness) ready(ctx context.Context) error {
	r.mu.Lock()
	if err, fresh := r.answer(time.Now()); fresh {
		r.mu.Unlock()
		return err
	}
	if r.running == nil {
		r.running = make(chan struct{})
		r.probes++
		go r.runProbe(r.running)
	}
	running := r.running
	r.mu.Unlock()

	select {
	case <-running:
	case <-ctx.Done():
		return fmt.Errorf("spend: readiness probe still running: %w", ctx.Err())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err, _ := r.answer(time.Now())
	return err
}

func (r *readiness) runProbe(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	err := r.probe(ctx)
	if err == nil && ctx.Err() != nil {
		err = errors.New("spend: write probe overran its deadline")
	}
	cancel()
	r.mu.Lock()
	r.probeAt, r.probeErr = time.Now(), err
	r.running = nil
	r.mu.Unlock()
	close(done)
}

// close makes every later answer errClosed.
func (r *readiness) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// probeCount returns how many probes have started (tests).
func (r *readiness) probeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.probes
}
