package spend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// These tests drive the batcher with an in-memory writer to check how it splits, deduplicates
// and answers batches. The stores themselves are tested against real storage in
// conformance_test.go.

// memWriter records tokens in memory like a store would, failing keys listed in fail.
type memWriter struct {
	mu      sync.Mutex
	spent   map[string]bool
	fail    map[string]error
	batches [][]*keyGroup
	gate    chan struct{} // if not nil, each write waits for a value
	entered chan struct{} // if not nil, each write sends a value on entry, before the gate
}

func (w *memWriter) write(_ context.Context, groups []*keyGroup) {
	if w.entered != nil {
		w.entered <- struct{}{}
	}
	if w.gate != nil {
		<-w.gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batches = append(w.batches, groups)
	for _, g := range groups {
		if err := w.fail[g.keyID]; err != nil {
			g.err = err
			continue
		}
		if !slices.IsSortedFunc(g.tokens, func(a, b []byte) int { return slices.Compare(a, b) }) {
			g.err = errors.New("tokens not sorted")
			continue
		}
		g.fresh = make([]bool, len(g.tokens))
		seen := map[string]bool{}
		for i, t := range g.tokens {
			k := g.keyID + "/" + string(t)
			if seen[k] {
				g.err = fmt.Errorf("duplicate token in one group")
			}
			seen[k] = true
			g.fresh[i] = !w.spent[k] // what the real stores report
			w.spent[k] = true
		}
	}
}

// TestBatcherOneBatch queues requests while the worker is held, so they form one batch, and
// checks every caller's answer.
func TestBatcherOneBatch(t *testing.T) {
	errBroken := errors.New("broken key")
	w := &memWriter{spent: map[string]bool{}, fail: map[string]error{"bad": errBroken}, gate: make(chan struct{}), entered: make(chan struct{}, 2)}
	b := newBatcher(1, 100, 5*time.Second, w.write, nil, nil)
	defer b.close()

	// The first request occupies the worker, which waits at the gate; the rest queue up.
	first := make(chan error, 1)
	go func() { first <- b.spend("k1", []byte("first")) }()
	<-w.entered

	keys := []string{"k1", "k1", "k1", "k2", "k2", "bad", "bad", "k1"}
	toks := []string{"x", "x", "y", "x", "x", "x", "z", "x"}
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.spend(keys[i], []byte(toks[i]))
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); len(b.queue) < len(keys); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests queued after 10s", len(b.queue), len(keys))
		}
	}
	w.gate <- struct{}{} // first batch
	w.gate <- struct{}{} // the queued batch
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("first: %v", err)
	}
	if len(w.batches) != 2 {
		t.Fatalf("%d batches, want 2", len(w.batches))
	}
	groups := w.batches[1]
	if len(groups) != 3 {
		t.Fatalf("second batch has %d key groups, want 3", len(groups))
	}
	winners := map[string]int{}
	for i, err := range errs {
		k := keys[i] + "/" + toks[i]
		switch {
		case keys[i] == "bad":
			if !errors.Is(err, errBroken) {
				t.Fatalf("%s: %v, want the key's failure", k, err)
			}
		case err == nil:
			winners[k]++
		case !errors.Is(err, ErrAlreadySpent):
			t.Fatalf("%s: %v", k, err)
		}
	}
	want := map[string]int{"k1/x": 1, "k1/y": 1, "k2/x": 1}
	if fmt.Sprint(winners) != fmt.Sprint(want) {
		t.Fatalf("winners %v, want %v", winners, want)
	}
}

// TestBatcherSkipsExpired: requests whose caller gave up while queued are not written.
func TestBatcherSkipsExpired(t *testing.T) {
	w := &memWriter{spent: map[string]bool{}, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	b := newBatcher(1, 100, 100*time.Millisecond, w.write, nil, nil)
	defer b.close()
	first := make(chan error, 1)
	go func() { first <- b.spend("k", []byte("a")) }()
	<-w.entered // the worker holds the first request
	second := make(chan error, 1)
	go func() { second <- b.spend("k", []byte("b")) }()
	// Both callers time out while the worker is held.
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first: %v", err)
	}
	if err := <-second; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second: %v", err)
	}
	w.gate <- struct{}{}
	b.close()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.spent["k/a"] || w.spent["k/b"] {
		t.Fatalf("spent = %v: want the held write done and the expired request skipped", w.spent)
	}
}

// TestBatcherClose: queued requests are written on close; later ones are refused.
func TestBatcherClose(t *testing.T) {
	w := &memWriter{spent: map[string]bool{}}
	b := newBatcher(2, 4, 5*time.Second, w.write, nil, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.spend("k", fmt.Appendf(nil, "%d", i))
			if err != nil && !errors.Is(err, errClosed) {
				t.Errorf("spend: %v", err)
			}
			if err == nil {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	b.close()
	wg.Wait()
	w.mu.Lock()
	written := len(w.spent)
	w.mu.Unlock()
	if written != accepted {
		t.Fatalf("%d spends answered nil but %d written: close must write what it accepted", accepted, written)
	}
	b.close() // twice is fine
	if err := b.spend("k", []byte("late")); !errors.Is(err, errClosed) {
		t.Fatalf("spend after close = %v", err)
	}
	for _, batch := range w.batches {
		n := 0
		for _, g := range batch {
			n += len(g.tokens)
		}
		if n > 4 {
			t.Fatalf("batch of %d tokens, BatchMax is 4", n)
		}
	}
}

// TestBatcherReportsOutcomes: readiness hears of every batch (nil, or a failing key's
// error) and of every caller's timeout.
func TestBatcherReportsOutcomes(t *testing.T) {
	errBroken := errors.New("broken key")
	w := &memWriter{spent: map[string]bool{}, fail: map[string]error{"bad": errBroken}, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	var mu sync.Mutex
	var told []error
	b := newBatcher(1, 100, 200*time.Millisecond, w.write, nil, func(err error) {
		mu.Lock()
		told = append(told, err)
		mu.Unlock()
	})
	defer b.close()
	spend := func(key string) error {
		done := make(chan error, 1)
		go func() { done <- b.spend(key, []byte("t")) }()
		<-w.entered
		w.gate <- struct{}{}
		return <-done
	}
	if err := spend("ok"); err != nil {
		t.Fatal(err)
	}
	if err := spend("bad"); !errors.Is(err, errBroken) {
		t.Fatal(err)
	}
	// A caller that times out while the write hangs is told, and so is readiness.
	done := make(chan error, 1)
	go func() { done <- b.spend("slow", []byte("t")) }()
	<-w.entered
	if err := <-done; !errors.Is(err, errSpendTimeout) {
		t.Fatalf("spend during a hung write = %v", err)
	}
	w.gate <- struct{}{}
	b.close()
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 4 || told[0] != nil || !errors.Is(told[1], errBroken) || !errors.Is(told[2], errSpendTimeout) || told[3] != nil {
		t.Fatalf("told %v, want [nil, broken key, timeout, nil (the hung write finished)]", told)
	}
}

func TestValidKeyID(t *testing.T) {
	for id, want := range map[string]bool{
		"0123456789abcdef":  true,
		"ffffffffffffffff":  true,
		"0123456789ABCDEF":  false,
		"0123456789abcde":   false,
		"0123456789abcdef0": false,
		"0123456789abcdeg":  false,
		"":                  false,
		"x'; DROP TABLE x;": false,
	} {
		if got := ValidKeyID(id); got != want {
			t.Errorf("ValidKeyID(%q) = %v, want %v", id, got, want)
		}
	}
}
