package spend_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/spend"
)

// The conformance suite runs against both stores (postgres_test.go, bolt_test.go).

const (
	keyA       = "0123456789abcdef"
	keyB       = "fedcba9876543210"
	keyC       = "c0c0c0c0c0c0c0c0"
	keyMissing = "00000000deadbeef" // never prepared
)

// storage creates fresh, empty storage for one test and returns what the tests need of it;
// every store opened is closed when the test ends.
type storage func(t *testing.T) kit

// kit reaches one storage.
type kit struct {
	// open opens a store on the storage. Opening twice gives two stores on the same data
	// (for reopen tests; for PostgreSQL, two servers).
	open func(t *testing.T) spend.Store
	// loseKey deletes keyID's partition (bucket) behind the stores' backs, as an operator's
	// mistake or an old backup would. No store of a bbolt storage may be open.
	loseKey func(t *testing.T, keyID string)
}

func runConformance(t *testing.T, newStorage storage) {
	tests := []struct {
		name string
		f    func(t *testing.T, k kit)
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
		{"KeyRegistry", testKeyRegistry},
		{"StorageLost", testStorageLost},
		{"Holds", testHolds},
		{"HoldExpires", testHoldExpires},
		{"Holding", testHolding},
		{"RetireRacesHold", testRetireRacesHold},
		{"Identity", testIdentity},
		{"Ready", testReady},
		{"Check", testCheck},
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

func testFreshThenSpent(t *testing.T, k kit) {
	s := k.open(t)
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

func testSameTokenConcurrently(t *testing.T, k kit) {
	s := k.open(t)
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

func testDistinctTokensConcurrently(t *testing.T, k kit) {
	s := k.open(t)
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
func testDuplicatesInsideBatches(t *testing.T, k kit) {
	s := k.open(t)
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

func testUnknownKey(t *testing.T, k kit) {
	s := k.open(t)
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
func testCallerCancellation(t *testing.T, k kit) {
	s := k.open(t)
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
	// Half of the spenders start, then one cancels the context while the others are in
	// flight or about to call.
	ctx, cancel := context.WithCancel(context.Background())
	var started sync.WaitGroup
	started.Add(n / 2)
	errs := spendAll(n, func(i int) error {
		switch {
		case i == n-1:
			started.Wait()
			cancel()
		case i < n/2:
			started.Done()
		}
		return s.Spend(ctx, keyA, toks[i])
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Spend cancelled mid-flight = %v, want nil", err)
		}
		wantSpend(t, s, keyA, toks[i], spend.ErrAlreadySpent)
	}
}

func testReopen(t *testing.T, k kit) {
	s := k.open(t)
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
	s = k.open(t)
	wantSpend(t, s, keyA, tok, spend.ErrAlreadySpent)
	wantCount(t, s, keyA, 1)
	if ids, err := s.KeyIDs(ctxT(t)); err != nil || !slices.Equal(ids, []string{keyA}) {
		t.Fatalf("KeyIDs after reopen = %v, %v", ids, err)
	}
}

// testCloseWhileSpending: every spend racing with Close either reports an error or is
// durably recorded (visible after reopening).
func testCloseWhileSpending(t *testing.T, k kit) {
	s := k.open(t)
	prepare(t, s, keyA)
	const n = 64
	toks := make([][]byte, n)
	for i := range toks {
		toks[i] = randToken(t)
	}
	ctx := ctxT(t)
	// Close once the first spends have been answered, while the others are queued or
	// about to be.
	var closeErr error
	var answered sync.WaitGroup
	answered.Add(4)
	errs := spendAll(n+1, func(i int) error {
		if i == n {
			answered.Wait()
			closeErr = s.Close()
			return nil
		}
		err := s.Spend(ctx, keyA, toks[i])
		if i < 4 {
			answered.Done()
		}
		return err
	})
	if closeErr != nil {
		t.Fatalf("Close: %v", closeErr)
	}
	s = k.open(t)
	for i, err := range errs[:n] {
		if err == nil {
			wantSpend(t, s, keyA, toks[i], spend.ErrAlreadySpent)
		} else if errors.Is(err, spend.ErrAlreadySpent) {
			t.Fatalf("fresh token reported already spent: %v", err)
		}
	}
}

func testRetire(t *testing.T, k kit) {
	s := k.open(t)
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
	if err := s.Retire(ctx, keyA); !errors.Is(err, spend.ErrKeyRetired) || !strings.Contains(err.Error(), "already retired") {
		t.Fatalf("second Retire = %v, want ErrKeyRetired", err)
	}
	if err := s.Retire(ctx, "not-a-key"); !errors.Is(err, spend.ErrUnknownKey) {
		t.Fatalf("Retire(malformed) = %v, want ErrUnknownKey", err)
	}
	if err := s.Retire(ctx, keyMissing); !errors.Is(err, spend.ErrUnknownKey) || !strings.Contains(err.Error(), "never prepared") {
		t.Fatalf("Retire(never prepared) = %v, want ErrUnknownKey", err)
	}
	// The other key is untouched.
	wantSpend(t, s, keyB, tok, spend.ErrAlreadySpent)

	// The key can never come back: preparing it again (a server with a stale key list) is
	// refused, with what to do, and creates nothing, not even for the other keys asked for.
	err := s.PrepareKeys(ctx, []string{keyC, keyA})
	if !errors.Is(err, spend.ErrKeyRetired) || !strings.Contains(err.Error(), keyA) || !strings.Contains(err.Error(), "ppredeem keys generate") {
		t.Fatalf("PrepareKeys(retired key) = %v, want ErrKeyRetired naming the key and the fix", err)
	}
	if ids, err := s.KeyIDs(ctx); err != nil || !slices.Equal(ids, []string{keyB}) {
		t.Fatalf("KeyIDs after a refused PrepareKeys = %v, %v; want [%s]", ids, err, keyB)
	}
	if err := s.Hold(ctx, "server-1", []string{keyA}, time.Minute); !errors.Is(err, spend.ErrKeyRetired) {
		t.Fatalf("Hold(retired key) = %v, want ErrKeyRetired", err)
	}
	wantSpend(t, s, keyA, tok, spend.ErrUnknownKey)
	s.Close()
	s = k.open(t)
	if err := s.PrepareKeys(ctx, []string{keyA}); !errors.Is(err, spend.ErrKeyRetired) {
		t.Fatalf("PrepareKeys(retired key) after reopening = %v, want ErrKeyRetired", err)
	}
	infos, err := s.Keys(ctx)
	if err != nil || len(infos) != 2 || infos[0].ID != keyA || infos[0].RetiredAt.IsZero() || infos[0].HasStorage ||
		infos[1].ID != keyB || !infos[1].RetiredAt.IsZero() || !infos[1].HasStorage {
		t.Fatalf("Keys after retiring %s = %+v, %v", keyA, infos, err)
	}
}

func testPrepareKeys(t *testing.T, k kit) {
	s := k.open(t)
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

// testKeyRegistry: the store remembers each key it prepared, and when.
func testKeyRegistry(t *testing.T, k kit) {
	s := k.open(t)
	ctx := ctxT(t)
	if infos, err := s.Keys(ctx); err != nil || len(infos) != 0 {
		t.Fatalf("Keys on empty storage = %+v, %v", infos, err)
	}
	before := time.Now().Add(-time.Minute) // the database's clock may differ a little
	prepare(t, s, keyB, keyA)
	prepare(t, s, keyA) // again: keeps the first preparation time
	infos, err := s.Keys(ctx)
	if err != nil || len(infos) != 2 || infos[0].ID != keyA || infos[1].ID != keyB {
		t.Fatalf("Keys = %+v, %v; want %s and %s", infos, err, keyA, keyB)
	}
	for _, info := range infos {
		if info.PreparedAt.Before(before) || !info.RetiredAt.IsZero() || !info.HasStorage || len(info.Holds) != 0 {
			t.Fatalf("Keys: %+v, want prepared now, live, with storage, no holds", info)
		}
	}
	s.Close()
	s = k.open(t)
	again, err := s.Keys(ctx)
	if err != nil || len(again) != 2 || !again[0].PreparedAt.Equal(infos[0].PreparedAt) {
		t.Fatalf("Keys after reopening = %+v, %v; want %+v", again, err, infos)
	}
}

// testStorageLost: a key whose partition (bucket) vanished behind the store's back is never
// recreated empty: PrepareKeys and Hold refuse with what to do, Check reports it, spends
// under it fail, and retiring it is allowed.
func testStorageLost(t *testing.T, k kit) {
	s := k.open(t)
	ctx := ctxT(t)
	prepare(t, s, keyA, keyB)
	tok := randToken(t)
	wantSpend(t, s, keyA, tok, nil)
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check before the loss: %v", err)
	}
	s.Close()
	k.loseKey(t, keyA)
	s = k.open(t)

	err := s.PrepareKeys(ctx, []string{keyB, keyA})
	if !errors.Is(err, spend.ErrKeyStorageLost) || !strings.Contains(err.Error(), "spent records of key "+keyA+" are missing") ||
		!strings.Contains(err.Error(), "backup") || !strings.Contains(err.Error(), "ppredeem keys retire "+keyA) {
		t.Fatalf("PrepareKeys(lost key) = %v, want ErrKeyStorageLost naming the key, the backup and retire", err)
	}
	if ids, err := s.KeyIDs(ctx); err != nil || !slices.Equal(ids, []string{keyB}) {
		t.Fatalf("KeyIDs after a refused PrepareKeys = %v, %v: the lost key was recreated", ids, err)
	}
	if err := s.Hold(ctx, "server-1", []string{keyA}, time.Minute); !errors.Is(err, spend.ErrKeyStorageLost) {
		t.Fatalf("Hold(lost key) = %v, want ErrKeyStorageLost", err)
	}
	wantSpend(t, s, keyA, tok, spend.ErrUnknownKey)
	if err := s.Check(ctx); !errors.Is(err, spend.ErrKeyStorageLost) || !strings.Contains(err.Error(), keyA) {
		t.Fatalf("Check with a lost key = %v, want ErrKeyStorageLost naming it", err)
	}
	if err := s.Retire(ctx, keyA); err != nil {
		t.Fatalf("Retire(lost key): %v", err)
	}
	if err := s.PrepareKeys(ctx, []string{keyA}); !errors.Is(err, spend.ErrKeyRetired) {
		t.Fatalf("PrepareKeys after retiring the lost key = %v, want ErrKeyRetired", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check after retiring the lost key: %v", err)
	}
}

// testHolds: Retire refuses a key a live hold holds, naming the holder and how long the
// hold lasts; a new key set releases the keys left out, Release the rest.
func testHolds(t *testing.T, k kit) {
	s := k.open(t)
	ctx := ctxT(t)
	if err := s.Hold(ctx, "server-1", []string{keyA}, time.Minute); !errors.Is(err, spend.ErrUnknownKey) {
		t.Fatalf("Hold(unprepared key) = %v, want ErrUnknownKey", err)
	}
	for _, bad := range []struct {
		holder string
		ttl    time.Duration
	}{{"", time.Minute}, {"tab\there", time.Minute}, {strings.Repeat("x", 201), time.Minute}, {"server-1", 0}} {
		if err := s.Hold(ctx, bad.holder, nil, bad.ttl); err == nil {
			t.Fatalf("Hold(%q, ttl %s) succeeded", bad.holder, bad.ttl)
		}
	}
	prepare(t, s, keyA, keyB, keyC)
	if err := s.Hold(ctx, "server-1", []string{keyA, keyB}, time.Minute); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if err := s.Hold(ctx, "server-2", []string{keyB}, time.Minute); err != nil {
		t.Fatalf("Hold by a second holder: %v", err)
	}
	err := s.Retire(ctx, keyA)
	if !errors.Is(err, spend.ErrKeyHeld) || !strings.Contains(err.Error(), "server-1") || !strings.Contains(err.Error(), "SIGHUP") {
		t.Fatalf("Retire(held key) = %v, want ErrKeyHeld naming the holder and the fix", err)
	}
	if !regexp.MustCompile(`expires in (59s|1m0s) unless renewed`).MatchString(err.Error()) {
		t.Fatalf("Retire(held key) = %v, want the time left on the hold", err)
	}
	wantSpend(t, s, keyA, randToken(t), nil) // refused retire changed nothing
	infos, err := s.Keys(ctx)
	if err != nil || len(infos) != 3 || infos[2].ID != keyB || len(infos[2].Holds) != 2 ||
		infos[2].Holds[0].Holder != "server-1" || infos[2].Holds[1].Holder != "server-2" {
		t.Fatalf("Keys = %+v, %v; want %s held by server-1 and server-2", infos, err, keyB)
	}

	// A reload without keyA releases it at once.
	if err := s.Hold(ctx, "server-1", []string{keyB}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Retire(ctx, keyA); err != nil {
		t.Fatalf("Retire after the holder let go: %v", err)
	}
	if err := s.Release(ctx, "server-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Retire(ctx, keyB); !errors.Is(err, spend.ErrKeyHeld) || strings.Contains(err.Error(), "server-1") {
		t.Fatalf("Retire(key held by server-2 only) = %v", err)
	}
	if err := s.Release(ctx, "server-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Retire(ctx, keyB); err != nil {
		t.Fatalf("Retire after Release: %v", err)
	}
	if err := s.Hold(ctx, "server-1", []string{keyC, keyB}, time.Minute); !errors.Is(err, spend.ErrKeyRetired) {
		t.Fatalf("Hold with a retired key = %v, want ErrKeyRetired", err)
	}
	if err := s.Retire(ctx, keyC); err != nil {
		t.Fatalf("Retire(%s) after a refused Hold: %v (the refused Hold must hold nothing)", keyC, err)
	}
}

// testHoldExpires: a holder that stops renewing (a crashed server) no longer blocks Retire
// once its hold's TTL has passed.
func testHoldExpires(t *testing.T, k kit) {
	s := k.open(t)
	ctx := ctxT(t)
	prepare(t, s, keyA)
	if err := s.Hold(ctx, "crashed-server", []string{keyA}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Retire(ctx, keyA); !errors.Is(err, spend.ErrKeyHeld) {
		t.Fatalf("Retire within the TTL = %v, want ErrKeyHeld", err)
	}
	waitFor(t, 10*time.Second, "the hold to lapse", func() bool {
		infos, err := s.Keys(ctx)
		return err == nil && len(infos[0].Holds) == 0
	})
	if err := s.Retire(ctx, keyA); err != nil {
		t.Fatalf("Retire after the hold lapsed: %v", err)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// testHolding: the helper a server uses prepares and holds its keys, renews the hold,
// changes it on reload and releases it on stop; it refuses to start with a retired key.
func testHolding(t *testing.T, k kit) {
	s := k.open(t)
	ctx := ctxT(t)
	renewed := make(chan error, 100)
	h, err := spend.StartHolding(ctx, s, []string{keyA, keyB}, spend.HoldConfig{
		Holder: "server-1", TTL: 2 * time.Second, Renew: 50 * time.Millisecond,
		OnRenew: func(err error) { renewed <- err },
	})
	if err != nil {
		t.Fatalf("StartHolding: %v", err)
	}
	first, err := s.Keys(ctx)
	if err != nil || len(first[0].Holds) != 1 {
		t.Fatalf("Keys after StartHolding = %+v, %v", first, err)
	}
	for range 3 {
		if err := <-renewed; err != nil {
			t.Fatalf("renewal: %v", err)
		}
	}
	later, err := s.Keys(ctx)
	if err != nil || len(later[0].Holds) != 1 || !later[0].Holds[0].Expires.After(first[0].Holds[0].Expires) {
		t.Fatalf("Keys after renewals = %+v, %v: want a later expiry than %v", later, err, first[0].Holds)
	}
	if err := s.Retire(ctx, keyA); !errors.Is(err, spend.ErrKeyHeld) {
		t.Fatalf("Retire(held key) = %v, want ErrKeyHeld", err)
	}
	if err := h.Update(ctx, []string{keyB, keyC}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if !slices.Equal(h.Keys(), []string{keyB, keyC}) || h.Holder() != "server-1" {
		t.Fatalf("Keys() = %v, Holder() = %q", h.Keys(), h.Holder())
	}
	wantSpend(t, s, keyC, randToken(t), nil) // Update prepared it
	if err := s.Retire(ctx, keyA); err != nil {
		t.Fatalf("Retire of a key the reload dropped: %v", err)
	}
	if err := h.Update(ctx, []string{keyA, keyB}); !errors.Is(err, spend.ErrKeyRetired) || !slices.Equal(h.Keys(), []string{keyB, keyC}) {
		t.Fatalf("Update with a retired key = %v (keys %v), want ErrKeyRetired and the old keys kept", err, h.Keys())
	}
	if err := s.Retire(ctx, keyC); !errors.Is(err, spend.ErrKeyHeld) {
		t.Fatalf("Retire(%s) after a refused Update = %v, want ErrKeyHeld", keyC, err)
	}
	if err := h.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := h.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Retire(ctx, keyC); err != nil {
		t.Fatalf("Retire after Stop: %v", err)
	}
	if _, err := spend.StartHolding(ctx, s, []string{keyB, keyA}, spend.HoldConfig{}); !errors.Is(err, spend.ErrKeyRetired) {
		t.Fatalf("StartHolding with a retired key = %v, want ErrKeyRetired", err)
	}
	if _, err := spend.StartHolding(ctx, s, []string{keyB}, spend.HoldConfig{TTL: time.Second, Renew: time.Second}); err == nil {
		t.Fatal("StartHolding with Renew >= TTL succeeded")
	}
}

// testRetireRacesHold: a retire and a server taking the key at the same moment never both
// succeed: either the hold comes first and the retire is refused, or the retire comes
// first and the hold is refused. Two stores on one storage stand for two processes where
// the store allows it (PostgreSQL); bbolt's file lock admits one process, so there both
// race through one store.
func testRetireRacesHold(t *testing.T, k kit) {
	a := k.open(t)
	b := a
	if _, ok := a.(*spend.Postgres); ok {
		b = k.open(t)
	}
	ctx := ctxT(t)
	retired, held := 0, 0
	for round := range 20 {
		key := fmt.Sprintf("%016x", round+1)
		prepare(t, a, key)
		errs := spendAll(2, func(i int) error {
			if i == 0 {
				return a.Retire(ctx, key)
			}
			return b.Hold(ctx, "server-1", []string{key}, time.Minute)
		})
		switch {
		case errs[0] == nil && errors.Is(errs[1], spend.ErrKeyRetired):
			retired++
		case errors.Is(errs[0], spend.ErrKeyHeld) && errs[1] == nil:
			held++
			wantSpend(t, a, key, randToken(t), nil)
		default:
			t.Fatalf("round %d: Retire = %v, Hold = %v: want exactly one to win", round, errs[0], errs[1])
		}
	}
	t.Logf("retire won %d rounds, hold %d", retired, held)
}

// testIdentity: a store has an identity from its creation, the same on every open.
func testIdentity(t *testing.T, k kit) {
	s := k.open(t)
	ctx := ctxT(t)
	id, err := s.Identity(ctx)
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id.ID) ||
		time.Since(id.CreatedAt) > time.Hour || id.CreatedAt.Location() != time.UTC {
		t.Fatalf("Identity = %+v, %v; want a UUID made just now, UTC", id, err)
	}
	s.Close()
	if again, err := k.open(t).Identity(ctx); err != nil || again != id {
		t.Fatalf("Identity after reopening = %+v, %v; want %+v", again, err, id)
	}
}

// testReady: a healthy store is ready; however many callers ask, at most one write probe
// runs per second; spends answered stand in for probes; a closed store is not ready.
func testReady(t *testing.T, k kit) {
	s := k.open(t)
	ctx := ctxT(t)
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready on a fresh store: %v", err)
	}
	start := time.Now()
	errs := spendAll(200, func(int) error { return s.Ready(ctx) })
	elapsed := time.Since(start)
	if _, _, other := tally(errs); len(other) != 0 {
		t.Fatalf("Ready: %v", other[0])
	}
	if n, most := spend.ReadyProbes(s), 2+int(elapsed/spend.ReadyCacheFor); n > most {
		t.Fatalf("%d write probes for 201 Ready calls in %v, want at most %d", n, elapsed, most)
	}
	prepare(t, s, keyA)
	wantSpend(t, s, keyA, randToken(t), nil)
	before := spend.ReadyProbes(s)
	if err := s.Ready(ctx); err != nil || spend.ReadyProbes(s) != before {
		t.Fatalf("Ready right after a spend = %v, probes %d → %d: want the spend's outcome, no probe", err, before, spend.ReadyProbes(s))
	}
	s.Close()
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready after Close succeeded")
	}
}

// testCheck: a healthy store with keys in every state passes Check.
func testCheck(t *testing.T, k kit) {
	s := k.open(t)
	ctx := ctxT(t)
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check on a fresh store: %v", err)
	}
	prepare(t, s, keyA, keyB)
	for range 100 {
		wantSpend(t, s, keyA, randToken(t), nil)
	}
	if err := s.Hold(ctx, "server-1", []string{keyA}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Retire(ctx, keyB); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
}
