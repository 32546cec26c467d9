package spend

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The batcher implements group commit by "natural batching", shared by both stores.
//
// Callers enqueue a request and wait for its own result. A fixed number of flush workers each
// block until one request arrives, then take whatever else is already queued (up to max)
// without waiting, and write the lot in one go: one INSERT per key for PostgreSQL, one
// transaction (one fsync) for bbolt. There is no timer: at low load a batch of one goes out at
// once, and under load requests pile up while the workers are busy, so batches grow with
// load and the cost of a commit is shared. This is group commit
// (https://en.wikipedia.org/wiki/Group_commit), as in PostgreSQL's WAL flush, where one
// backend's fsync covers the commits queued behind it; etcd also puts many writes into one
// bbolt commit, but on a timer (etcd server/storage/backend/batch_tx.go), which would delay
// every spend at low load.
//
// Correctness does not rest on the batcher: the unique index (PostgreSQL) or the single
// writer transaction (bbolt) still decides between spends in different batches. The batcher
// only has to (1) give every caller the answer for its own token, (2) resolve copies of one
// token inside a batch to a single winner, and (3) never let one key's failure fail another
// key's callers.

// errSpendTimeout: the caller's SpendTimeout passed before its result arrived. The token may
// or may not be recorded.
var errSpendTimeout = fmt.Errorf("spend: outcome unknown, no result within the spend timeout: %w", context.DeadlineExceeded)

// errNotQueued: the queue stayed full for the whole SpendTimeout; the token was not recorded.
var errNotQueued = fmt.Errorf("spend: not attempted, the write queue stayed full: %w", context.DeadlineExceeded)

// spendRequest is one caller's spend.
type spendRequest struct {
	keyID    string
	token    []byte     // a private copy
	deadline time.Time  // the caller stops waiting at this time
	result   chan error // capacity 1; receives exactly one value
}

// keyGroup is the write for one key in one batch.
type keyGroup struct {
	keyID string
	// tokens are distinct and sorted (bytes.Compare). The order matters for PostgreSQL: two
	// concurrent INSERTs that meet on the same index entries wait for each other, and a
	// common order means they cannot wait in a cycle (no deadlock).
	tokens [][]byte
	// Set by the writer: fresh[i] reports that tokens[i] was absent and is now durably
	// recorded, or err reports that the write for this key failed (no token counts as
	// spent by this batch; the outcome may be unknown).
	fresh []bool
	err   error
}

// writeFunc records the tokens of groups, filling in fresh or err for each group. ctx ends at
// the latest deadline of the batch's callers.
type writeFunc func(ctx context.Context, groups []*keyGroup)

type batcher struct {
	write   writeFunc
	onBatch func(size int)
	wrote   func(err error) // told each batch's outcome and each caller's timeout (readiness)
	max     int
	timeout time.Duration
	queue   chan *spendRequest

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	wg     sync.WaitGroup
}

// newBatcher starts workers flush workers writing batches of at most max tokens. Each caller
// waits at most timeout for its result.
// onBatch, if not nil, is told the size of every batch written (for metrics); wrote, if not
// nil, is told the outcome of every batch (nil, or the first key group's error) and every
// timeout a caller meets (for readiness).
func newBatcher(workers, max int, timeout time.Duration, write writeFunc, onBatch func(size int), wrote func(error)) *batcher {
	b := &batcher{
		write:   write,
		onBatch: onBatch,
		wrote:   wrote,
		max:     max,
		timeout: timeout,
		queue:   make(chan *spendRequest, workers*max),
	}
	b.wg.Add(workers)
	for range workers {
		go b.run()
	}
	return b
}

// spend enqueues one spend and waits for its result or the timeout, whichever comes first.
// It does not take a context: the caller's cancellation must not decide the outcome.
func (b *batcher) spend(keyID string, token []byte) error {
	timer := time.NewTimer(b.timeout)
	defer timer.Stop()
	r := &spendRequest{
		keyID:    keyID,
		token:    bytes.Clone(token),
		deadline: time.Now().Add(b.timeout),
		result:   make(chan error, 1),
	}
	if r.token == nil {
		r.token = []byte{}
	}

	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.queue <- r:
	case <-timer.C:
		b.mu.RUnlock()
		b.told(errNotQueued)
		return errNotQueued
	}
	b.mu.RUnlock()

	select {
	case err := <-r.result:
		return err
	case <-timer.C:
		b.told(errSpendTimeout)
		return errSpendTimeout
	}
}

func (b *batcher) told(err error) {
	if b.wrote != nil {
		b.wrote(err)
	}
}

// close stops accepting spends, lets the workers write everything already queued, and waits
// for them. Safe to call more than once.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// run is one flush worker.
func (b *batcher) run() {
	defer b.wg.Done()
	batch := make([]*spendRequest, 0, b.max)
	for {
		r, ok := <-b.queue
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	drain:
		for len(batch) < b.max {
			select {
			case r, ok := <-b.queue:
				if !ok {
					break drain // closed: flush this batch, then the receive above ends the loop
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if b.onBatch != nil {
			b.onBatch(len(batch))
		}
		b.flush(batch)
		clear(batch) // drop references to finished requests
	}
}

// flush writes one batch and answers every request in it exactly once.
func (b *batcher) flush(batch []*spendRequest) {
	// Requests whose caller has already given up are skipped: not writing them keeps
	// "timed out" close to "not spent" and sheds load when the store is slow.
	now := time.Now()
	live := make([]*spendRequest, 0, len(batch))
	var latest time.Time
	for _, r := range batch {
		if !now.Before(r.deadline) {
			r.result <- errSpendTimeout
			continue
		}
		live = append(live, r)
		if r.deadline.After(latest) {
			latest = r.deadline
		}
	}
	if len(live) == 0 {
		return
	}

	// Group by key, deduplicating tokens within each key.
	var groups []*keyGroup
	byKey := make(map[string]*keyGroup)
	for _, r := range live {
		g := byKey[r.keyID]
		if g == nil {
			g = &keyGroup{keyID: r.keyID}
			byKey[r.keyID] = g
			groups = append(groups, g)
		}
		g.tokens = append(g.tokens, r.token)
	}
	for _, g := range groups {
		slices.SortFunc(g.tokens, bytes.Compare)
		g.tokens = slices.CompactFunc(g.tokens, bytes.Equal)
	}

	ctx, cancel := context.WithDeadline(context.Background(), latest)
	b.write(ctx, groups)
	cancel()
	var outcome error
	for _, g := range groups {
		if g.err != nil {
			outcome = g.err
			break
		}
	}
	b.told(outcome)

	// Answer. The first request for a token is its winner and gets the writer's verdict;
	// later copies in this batch lost to it: ErrAlreadySpent, or the winner's failure if the
	// write failed (then nobody knows it is spent, so nobody may be told it is).
	claimed := make(map[*keyGroup][]bool, len(groups))
	for _, r := range live {
		g := byKey[r.keyID]
		if g.err != nil {
			r.result <- g.err
			continue
		}
		i, found := slices.BinarySearchFunc(g.tokens, r.token, bytes.Compare)
		if !found || len(g.fresh) != len(g.tokens) {
			r.result <- fmt.Errorf("spend: internal error: writer returned no result for a token")
			continue
		}
		c := claimed[g]
		if c == nil {
			c = make([]bool, len(g.tokens))
			claimed[g] = c
		}
		switch {
		case c[i]:
			r.result <- ErrAlreadySpent
		case g.fresh[i]:
			c[i] = true
			r.result <- nil
		default:
			c[i] = true
			r.result <- ErrAlreadySpent
		}
	}
}
