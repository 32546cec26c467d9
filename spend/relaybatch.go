package spend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit of relay redemptions on PostgreSQL. Each redemption is one call of
// relay_redeem; under load the calls queued at one moment run in one transaction, sent as
// one pipelined round trip (pgx.Batch), so that one commit (one WAL flush) serves them all,
// as the spend batcher does for spends (batcher.go). Inside the transaction the calls run
// in order, each seeing the ones before it, so two calls for one relay or one pass in the
// same batch resolve as they would one after the other. If the transaction fails as a whole
// (a key without a partition, a deadlock with another batch, a lost connection before
// COMMIT), nothing of it committed, and each call is then run alone in its own transaction,
// which gives every caller its own answer. A failure during COMMIT leaves the outcome
// unknown: those callers get the error, as a Spend would.

const relayBatchMax = 64

type redeemCall struct {
	r        Redemption
	deadline time.Time
	done     chan redeemResult // capacity 1
}

type redeemResult struct {
	outcome RedeemOutcome
	payload string
	err     error
}

type relayBatcher struct {
	p     *Postgres
	queue chan *redeemCall
	mu    sync.RWMutex
	shut  bool
	wg    sync.WaitGroup
}

func newRelayBatcher(p *Postgres, workers int) *relayBatcher {
	b := &relayBatcher{p: p, queue: make(chan *redeemCall, workers*relayBatchMax)}
	b.wg.Add(workers)
	for range workers {
		go b.run()
	}
	return b
}

// relayBatch returns the store's relay batcher, started on first use.
func (p *Postgres) relayBatch() *relayBatcher {
	p.relayOnce.Do(func() { p.relays = newRelayBatcher(p, flushWorkerCount(p.pool.Config().MaxConns)) })
	return p.relays
}

func (b *relayBatcher) close() {
	b.mu.Lock()
	if !b.shut {
		b.shut = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// redeem queues r and waits for its result, at most the spend timeout.
func (b *relayBatcher) redeem(r Redemption) (RedeemOutcome, string, error) {
	timer := time.NewTimer(b.p.spendTimeout)
	defer timer.Stop()
	c := &redeemCall{r: r, deadline: time.Now().Add(b.p.spendTimeout), done: make(chan redeemResult, 1)}
	b.mu.RLock()
	if b.shut {
		b.mu.RUnlock()
		return 0, "", errClosed
	}
	select {
	case b.queue <- c:
	case <-timer.C:
		b.mu.RUnlock()
		return 0, "", errNotQueued
	}
	b.mu.RUnlock()
	select {
	case res := <-c.done:
		return res.outcome, res.payload, res.err
	case <-timer.C:
		return 0, "", errSpendTimeout
	}
}

func (b *relayBatcher) run() {
	defer b.wg.Done()
	batch := make([]*redeemCall, 0, relayBatchMax)
	for {
		c, ok := <-b.queue
		if !ok {
			return
		}
		batch = append(batch[:0], c)
	drain:
		for len(batch) < relayBatchMax {
			select {
			case c, ok := <-b.queue:
				if !ok {
					break drain
				}
				batch = append(batch, c)
			default:
				break drain
			}
		}
		b.flush(batch)
		clear(batch)
	}
}

// flush runs one batch and answers every call in it exactly once.
func (b *relayBatcher) flush(batch []*redeemCall) {
	now := time.Now()
	live := batch[:0:0]
	var latest time.Time
	for _, c := range batch {
		if !now.Before(c.deadline) {
			c.done <- redeemResult{err: errSpendTimeout}
			continue
		}
		live = append(live, c)
		if c.deadline.After(latest) {
			latest = c.deadline
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), latest)
	defer cancel()
	if len(live) == 1 {
		o, p, err := b.p.redeemOne(ctx, live[0].r)
		live[0].done <- redeemResult{o, p, err}
		return
	}
	// Relay rows are locked in ID order, so two batches meeting on relays wait rather
	// than deadlock (passes can still cross; the fallback below handles that).
	slices.SortStableFunc(live, func(x, y *redeemCall) int { return bytes.Compare(x.r.RelayID[:], y.r.RelayID[:]) })
	results, committed, err := b.p.redeemBatch(ctx, live)
	if err == nil {
		for i, c := range live {
			c.done <- results[i]
		}
		return
	}
	if committed {
		for _, c := range live {
			c.done <- redeemResult{err: err}
		}
		return
	}
	for _, c := range live {
		o, p, err := b.p.redeemOne(ctx, c.r)
		c.done <- redeemResult{o, p, err}
	}
}

const redeemSQL = `SELECT o_outcome, o_payload FROM relay_redeem($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

func redeemArgs(r Redemption) []any {
	var scope, key *string
	var hash, body []byte
	var expires *time.Time
	if rec := r.Idempotency; rec != nil {
		scope, key, hash, body, expires = &rec.Scope, &rec.Key, rec.RequestHash[:], rec.Body, &rec.ExpiresAt
		if body == nil {
			body = []byte{}
		}
	}
	return []any{r.RelayID[:], r.KeyID, r.SpendID, r.Payload, r.Now, scope, key, hash, body, expires}
}

func decodeRedeem(outcome string, payload *string) (RedeemOutcome, string, error) {
	o, ok := redeemOutcomes[outcome]
	if !ok {
		return 0, "", fmt.Errorf("spend: redeem relay: unknown outcome %q", outcome)
	}
	return o, deref(payload), nil
}

func mapRedeemErr(keyID string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateCheckViolation {
		return fmt.Errorf("spend: key %s: %w", keyID, ErrUnknownKey)
	}
	return fmt.Errorf("spend: redeem relay: %w", mapUndefinedTable(err))
}

// redeemOne runs one redemption as its own autocommit statement.
func (p *Postgres) redeemOne(ctx context.Context, r Redemption) (RedeemOutcome, string, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return 0, "", err
	}
	defer conn.Release()
	var outcome string
	var payload *string
	if err := conn.QueryRow(ctx, redeemSQL, redeemArgs(r)...).Scan(&outcome, &payload); err != nil {
		return 0, "", mapRedeemErr(r.KeyID, err)
	}
	return decodeRedeem(outcome, payload)
}

// redeemBatch runs the calls in one transaction, pipelined: BEGIN, the calls and COMMIT
// in one round trip. committed reports that the error came with or after COMMIT (the
// outcome is unknown); otherwise nothing was committed.
func (p *Postgres) redeemBatch(ctx context.Context, calls []*redeemCall) (results []redeemResult, committed bool, err error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer conn.Release()
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	for _, c := range calls {
		batch.Queue(redeemSQL, redeemArgs(c.r)...)
	}
	batch.Queue("COMMIT")
	br := conn.SendBatch(ctx, batch)
	results, committed, err = readRedeemBatch(br, calls)
	if cerr := br.Close(); cerr != nil && err == nil && !committed {
		err = cerr
	}
	if err != nil && !committed {
		// The transaction may still be open on the connection: roll it back, or drop the
		// connection if that fails.
		if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			conn.Conn().Close(context.Background())
		}
	}
	return results, committed, err
}

// readRedeemBatch reads the answers of a pipelined BEGIN, calls, COMMIT. committed is true
// once COMMIT was sent and answered with an error (outcome unknown); a COMMIT that
// succeeded returns the results with committed false and no error.
func readRedeemBatch(br pgx.BatchResults, calls []*redeemCall) ([]redeemResult, bool, error) {
	if _, err := br.Exec(); err != nil {
		return nil, false, err
	}
	results := make([]redeemResult, len(calls))
	for i, c := range calls {
		var outcome string
		var payload *string
		if err := br.QueryRow().Scan(&outcome, &payload); err != nil {
			return nil, false, mapRedeemErr(c.r.KeyID, err)
		}
		o, pl, err := decodeRedeem(outcome, payload)
		if err != nil {
			return nil, false, err
		}
		results[i] = redeemResult{outcome: o, payload: pl}
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, true, fmt.Errorf("spend: redeem relay: commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		// A transaction that failed reports ROLLBACK to COMMIT: nothing was committed.
		return nil, false, fmt.Errorf("spend: redeem relay: the transaction rolled back (%s)", tag.String())
	}
	return results, false, nil
}
