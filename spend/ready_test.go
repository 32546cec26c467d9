package spend

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestReadinessOneProbeAtATime: callers arriving while a probe runs wait for its answer
// instead of starting their own; a caller whose context ends stops waiting; the answer,
// good or bad, stands for cacheFor.
func TestReadinessOneProbeAtATime(t *testing.T) {
	release := make(chan error)
	started := make(chan struct{}, 10)
	r := newReadiness(func(context.Context) error {
		started <- struct{}{}
		return <-release
	}, time.Minute)
	r.cacheFor = time.Hour // no answer expires in this test unless said so

	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = r.ready(context.Background()) })
	}
	<-started
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.ready(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("ready with a cancelled context during a probe = %v", err)
	}
	errDown := errors.New("down")
	release <- errDown
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, errDown) {
			t.Fatalf("a caller waiting on the probe got %v, want its failure", err)
		}
	}
	if n := r.probeCount(); n != 1 {
		t.Fatalf("%d probes for 21 callers, want 1", n)
	}
	// The failure is cached...
	if err := r.ready(context.Background()); !errors.Is(err, errDown) || r.probeCount() != 1 {
		t.Fatalf("cached failure: %v, %d probes", err, r.probeCount())
	}
	// ...until a spend succeeds, which answers at once.
	r.wrote(nil)
	if err := r.ready(context.Background()); err != nil || r.probeCount() != 1 {
		t.Fatalf("after a good spend: %v, %d probes", err, r.probeCount())
	}
	r.wrote(errDown)
	if err := r.ready(context.Background()); !errors.Is(err, errDown) {
		t.Fatalf("after a failed spend: %v", err)
	}
	// An expired answer starts a new probe.
	r.mu.Lock()
	r.cacheFor = 0
	r.mu.Unlock()
	go func() { <-started; release <- nil }()
	if err := r.ready(context.Background()); err != nil || r.probeCount() != 2 {
		t.Fatalf("after expiry: %v, %d probes", err, r.probeCount())
	}
	r.close()
	if err := r.ready(context.Background()); !errors.Is(err, errClosed) {
		t.Fatalf("after close: %v", err)
	}
}
