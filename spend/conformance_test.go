package spend_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/spend"
)

// The conformance suite runs against both stores (postgres_test.go, bolt_test.go).

const (
	keyA       = "0123456789abcdef"
	keyB       = "fedcba9876543210"
	keyMissing = "00000000deadbeef" // never prepared
)

// storage creates fresh, empty storage for one test and returns a function opening a store
// on it; every store opened is closed when the test ends. Opening twice gives two stores on
// the same data (for reopen tests).
type storage func(t *testing.T) (open func(t *testing.T) spend.Store)

func runConformance(t *testing.T, newStorage storage) {
	tests := []struct {
		name string
		f    func(t *testing.T, open func(t *testing.T) spend.Store)
	}{
		{"FreshThenSpent", testFreshThenSpent},
		{"SameTokenConcurrently", testSameTokenConcurrently},
		{"DistinctTokensConcurrently", testDistinctTokensConcurrently},
		{"DuplicatesInsideBatches", testDuplicatesInsideBatches},
		{"UnknownKey", testUnknownKey},
		{"CallerCancellation", testCallerCancellation},
		{"Reopen", testReopen},
		{"CloseWhileSpending", testCloseWhileSpending},
		{"Retire", testRetire},
		{"PrepareKeys", testPrepareKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, newStorage(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// randToken is safe to call from any goroutine: crypto/rand.Read never
// fails (Go 1.24+), so there is nothing to report through t.
func randToken(testing.TB) []byte {
	tok := make([]byte, 32)
	rand.Read(tok)
	return tok
}

func prepare(t *testing.T, s spend.Store, ids ...string) {
	t.Helper()
	if err := s.PrepareKeys(ctxT(t), ids); err != nil {
		t.Fatalf("PrepareKeys(%v): %v", ids, err)
	}
}

func wantSpend(t *testing.T, s spend.Store, key string, tok []byte, want error) {
	t.Helper()
	err := s.Spend(ctxT(t), key, tok)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("Spend(%s, %d bytes) = %v, want %v", key, len(tok), err, want)
	}
}

func wantCount(t *testing.T, s spend.Store, key string, want int64) {
	t.Helper()
	n, err := s.Count(ctxT(t), key)
	if err != nil || n != want {
		t.Fatalf("Count(%s) = %d, %v; want %d", key, n, err, want)
	}
}

func testFreshThenSpent(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	prepare(t, s, keyA, keyB)
	tok := randToken(t)
	wantSpend(t, s, keyA, tok, nil)
	wantSpend(t, s, keyA, tok, spend.ErrAlreadySpent)
	wantSpend(t, s, keyA, bytes.Clone(tok), spend.ErrAlreadySpent)
	// Identity is key + token: the same bytes under another key are another token.
	wantSpend(t, s, keyB, tok, nil)
	wantSpend(t, s, keyB, tok, spend.ErrAlreadySpent)

	// Empty and nil are the same (empty) token.
	wantSpend(t, s, keyA, []byte{}, nil)
	wantSpend(t, s, keyA, nil, spend.ErrAlreadySpent)

	long := bytes.Repeat([]byte{0xff}, spend.MaxTokenLen)
	wantSpend(t, s, keyA, long, nil)
	wantSpend(t, s, keyA, long, spend.ErrAlreadySpent)
	// A token one byte shorter or with a prefix in common is different.
	wantSpend(t, s, keyA, long[:len(long)-1], nil)

	tooLong := make([]byte, spend.MaxTokenLen+1)
	if err := s.Spend(ctxT(t), keyA, tooLong); err == nil || errors.Is(err, spend.ErrAlreadySpent) {
		t.Fatalf("Spend(too long) = %v, want a non-sentinel error", err)
	}
	wantCount(t, s, keyA, 4)
	wantCount(t, s, keyB, 1)
}

// spendAll runs f(i) for i in [0, n) from n goroutines released together.
func spendAll(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = f(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// tally counts nil, ErrAlreadySpent and other errors.
func tally(errs []error) (ok, spent int, other []error) {
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, spend.ErrAlreadySpent):
			spent++
		default:
			other = append(other, err)
		}
	}
	return
}

func testSameTokenConcurrently(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	prepare(t, s, keyA)
	ctx := ctxT(t)
	for round := range 20 {
		tok := randToken(t)
		errs := spendAll(64, func(int) error { return s.Spend(ctx, keyA, tok) })
		ok, spent, other := tally(errs)
		if ok != 1 || spent != 63 || len(other) != 0 {
			t.Fatalf("round %d: 64 concurrent spends of one token: %d nil, %d already spent, others %v; want 1, 63, none",
				round, ok, spent, other)
		}
	}
	wantCount(t, s, keyA, 20)
}

func testDistinctTokensConcurrently(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	prepare(t, s, keyA)
	ctx := ctxT(t)
	const goroutines, each = 64, 50
	errs := spendAll(goroutines, func(int) error {
		for range each {
			if err := s.Spend(ctx, keyA, randToken(t)); err != nil {
				return err
			}
		}
		return nil
	})
	if ok, _, other := tally(errs); ok != goroutines {
		t.Fatalf("distinct tokens: errors %v", other)
	}
	wantCount(t, s, keyA, goroutines*each)
}

// testDuplicatesInsideBatches spends a few shared tokens many times mixed with distinct
// tokens, from many goroutines at once, so that batches hold several copies of a token.
func testDuplicatesInsideBatches(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	prepare(t, s, keyA, keyB)
	ctx := ctxT(t)
	const goroutines, shared = 64, 8
	sharedToks := make([][]byte, shared)
	for i := range sharedToks {
		sharedToks[i] = randToken(t)
	}
	type result struct {
		key    string
		shared int // index into sharedToks, or -1
		err    error
	}
	results := make([][]result, goroutines)
	spendAll(goroutines, func(g int) error {
		// Each goroutine spends every shared token under both keys, interleaved with
		// distinct tokens, in an order depending on g.
		for j := range shared {
			i := (j + g) % shared
			for _, key := range []string{keyA, keyB} {
				results[g] = append(results[g], result{key, i, s.Spend(ctx, key, sharedToks[i])})
				results[g] = append(results[g], result{key, -1, s.Spend(ctx, key, randToken(t))})
			}
		}
		return nil
	})
	wins := map[string]int{}
	for _, rs := range results {
		for _, r := range rs {
			switch {
			case r.shared < 0 && r.err != nil:
				t.Fatalf("distinct token under %s: %v", r.key, r.err)
			case r.shared >= 0 && r.err == nil:
				wins[r.key+string(sharedToks[r.shared])]++
			case r.shared >= 0 && !errors.Is(r.err, spend.ErrAlreadySpent):
				t.Fatalf("shared token under %s: %v", r.key, r.err)
			}
		}
	}
	if len(wins) != 2*shared {
		t.Fatalf("%d shared (key, token) pairs were accepted, want %d", len(wins), 2*shared)
	}
	for k, n := range wins {
		if n != 1 {
			t.Fatalf("a shared token was accepted %d times under key %s", n, k[:16])
		}
	}
	wantCount(t, s, keyA, shared+goroutines*shared)
}

func testUnknownKey(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	prepare(t, s, keyA)
	ctx := ctxT(t)
	wantSpend(t, s, keyMissing, randToken(t), spend.ErrUnknownKey)
	for _, bad := range []string{"", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "0123456789abcdeg"} {
		wantSpend(t, s, bad, randToken(t), spend.ErrUnknownKey)
	}
	// Spends under a missing key, mixed into the same batches as valid ones, fail alone.
	const goroutines, each = 32, 20
	errs := spendAll(goroutines, func(g int) error {
		for range each {
			if g%2 == 0 {
				if err := s.Spend(ctx, keyMissing, randToken(t)); !errors.Is(err, spend.ErrUnknownKey) {
					return err
				}
			} else if err := s.Spend(ctx, keyA, randToken(t)); err != nil {
				return err
			}
		}
		return nil
	})
	if ok, _, other := tally(errs); ok != goroutines {
		t.Fatalf("mixed known and unknown keys: %v", other)
	}
	wantCount(t, s, keyA, goroutines/2*each)
	if _, err := s.Count(ctx, keyMissing); !errors.Is(err, spend.ErrUnknownKey) {
		t.Fatalf("Count(missing) = %v, want ErrUnknownKey", err)
	}
}

// testCallerCancellation: Spend ignores the caller's cancellation (documented in doc.go): a
// spend with a cancelled context completes and is recorded, never silently lost.
func testCallerCancellation(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	prepare(t, s, keyA)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tok := randToken(t)
	if err := s.Spend(cancelled, keyA, tok); err != nil {
		t.Fatalf("Spend with a cancelled context = %v, want nil (the spend runs detached)", err)
	}
	wantSpend(t, s, keyA, tok, spend.ErrAlreadySpent)

	// Cancel while spends are in flight.
	const n = 64
	toks := make([][]byte, n)
	for i := range toks {
		toks[i] = randToken(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(200 * time.Microsecond)
		cancel()
	}()
	errs := spendAll(n, func(i int) error { return s.Spend(ctx, keyA, toks[i]) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Spend cancelled mid-flight = %v, want nil", err)
		}
		wantSpend(t, s, keyA, toks[i], spend.ErrAlreadySpent)
	}
}

func testReopen(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	prepare(t, s, keyA)
	tok := randToken(t)
	wantSpend(t, s, keyA, tok, nil)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Spend(ctxT(t), keyA, randToken(t)); err == nil || errors.Is(err, spend.ErrAlreadySpent) {
		t.Fatalf("Spend after Close = %v, want an error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s = open(t)
	wantSpend(t, s, keyA, tok, spend.ErrAlreadySpent)
	wantCount(t, s, keyA, 1)
	if ids, err := s.KeyIDs(ctxT(t)); err != nil || !slices.Equal(ids, []string{keyA}) {
		t.Fatalf("KeyIDs after reopen = %v, %v", ids, err)
	}
}

// testCloseWhileSpending: every spend racing with Close either reports an error or is
// durably recorded (visible after reopening).
func testCloseWhileSpending(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	prepare(t, s, keyA)
	const n = 64
	toks := make([][]byte, n)
	for i := range toks {
		toks[i] = randToken(t)
	}
	ctx := ctxT(t)
	var closeErr error
	errs := spendAll(n+1, func(i int) error {
		if i == n {
			time.Sleep(time.Millisecond)
			closeErr = s.Close()
			return nil
		}
		return s.Spend(ctx, keyA, toks[i])
	})
	if closeErr != nil {
		t.Fatalf("Close: %v", closeErr)
	}
	s = open(t)
	for i, err := range errs[:n] {
		if err == nil {
			wantSpend(t, s, keyA, toks[i], spend.ErrAlreadySpent)
		} else if errors.Is(err, spend.ErrAlreadySpent) {
			t.Fatalf("fresh token reported already spent: %v", err)
		}
	}
}

func testRetire(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	ctx := ctxT(t)
	prepare(t, s, keyA, keyB)
	tok := randToken(t)
	for _, tk := range [][]byte{tok, randToken(t), randToken(t)} {
		wantSpend(t, s, keyA, tk, nil)
	}
	wantSpend(t, s, keyB, tok, nil)
	wantCount(t, s, keyA, 3)

	if err := s.Retire(ctx, keyA); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	wantSpend(t, s, keyA, tok, spend.ErrUnknownKey)
	wantSpend(t, s, keyA, randToken(t), spend.ErrUnknownKey)
	if _, err := s.Count(ctx, keyA); !errors.Is(err, spend.ErrUnknownKey) {
		t.Fatalf("Count after Retire = %v, want ErrUnknownKey", err)
	}
	if ids, err := s.KeyIDs(ctx); err != nil || !slices.Equal(ids, []string{keyB}) {
		t.Fatalf("KeyIDs after Retire = %v, %v; want [%s]", ids, err, keyB)
	}
	if err := s.Retire(ctx, keyA); !errors.Is(err, spend.ErrUnknownKey) {
		t.Fatalf("second Retire = %v, want ErrUnknownKey", err)
	}
	if err := s.Retire(ctx, "not-a-key"); !errors.Is(err, spend.ErrUnknownKey) {
		t.Fatalf("Retire(malformed) = %v, want ErrUnknownKey", err)
	}
	// The other key is untouched.
	wantSpend(t, s, keyB, tok, spend.ErrAlreadySpent)

	// Preparing the key again starts from nothing.
	prepare(t, s, keyA)
	wantCount(t, s, keyA, 0)
	wantSpend(t, s, keyA, tok, nil)
	wantCount(t, s, keyA, 1)
}

func testPrepareKeys(t *testing.T, open func(t *testing.T) spend.Store) {
	s := open(t)
	ctx := ctxT(t)
	if ids, err := s.KeyIDs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("KeyIDs on empty storage = %v, %v", ids, err)
	}
	if err := s.PrepareKeys(ctx, nil); err != nil {
		t.Fatalf("PrepareKeys(nil): %v", err)
	}
	if err := s.PrepareKeys(ctx, []string{keyA, "BAD"}); err == nil {
		t.Fatal("PrepareKeys with a malformed key ID succeeded")
	}
	prepare(t, s, keyB, keyA, keyB) // duplicates are fine
	tok := randToken(t)
	wantSpend(t, s, keyA, tok, nil)
	prepare(t, s, keyA, keyB) // idempotent, keeps the records
	wantSpend(t, s, keyA, tok, spend.ErrAlreadySpent)

	// Concurrently, overlapping sets.
	more := []string{"1111111111111111", "2222222222222222", "3333333333333333", keyA}
	errs := spendAll(8, func(i int) error {
		ids := slices.Clone(more)
		if i%2 == 1 {
			slices.Reverse(ids)
		}
		return s.PrepareKeys(ctx, ids)
	})
	if _, _, other := tally(errs); len(other) != 0 {
		t.Fatalf("concurrent PrepareKeys: %v", other)
	}
	want := []string{keyA, "1111111111111111", "2222222222222222", "3333333333333333", keyB}
	if ids, err := s.KeyIDs(ctx); err != nil || !slices.Equal(ids, want) {
		t.Fatalf("KeyIDs = %v, %v; want %v", ids, err, want)
	}
	wantSpend(t, s, keyA, tok, spend.ErrAlreadySpent)
}
