package loadgen

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// kind is what a request is built to get.
type kind uint8

const (
	kindFresh  kind = iota // a fresh token: success
	kindBad                // a fresh token with a corrupted tag: -32020
	kindDouble             // a token already redeemed: -32021
	numKinds
)

// job is one request to send.
type job struct {
	body  []byte // the request body
	kind  kind
	valid int32     // index of a fresh token in tokens.valid, else -1
	sched time.Time // open loop: when the request was due
}

// dispenser hands out request bodies in the configured mix. It is shared by
// all workers (closed loop) or used by the scheduler (open loop); one mutex
// acquisition per request is negligible next to an HTTP round trip.
type dispenser struct {
	mu       sync.Mutex
	limit    int // slots to hand out; 0 = unlimited
	frac     [numKinds]float64
	assigned [numKinds]int
	slot     int

	tok       *tokens
	nextValid int
	nextBad   int

	spent []int32 // fresh tokens whose redemption succeeded
	rr    int     // next spent token to re-send
	debt  int     // double spends sent as fresh tokens, to make up later

	exhausted string // why take returned false early, "" if it did not
}

func newDispenser(limit int, doubleSpend, badTag float64, tok *tokens) *dispenser {
	d := &dispenser{limit: limit, tok: tok, spent: make([]int32, 0, len(tok.valid))}
	d.frac[kindDouble] = doubleSpend
	d.frac[kindBad] = badTag
	d.frac[kindFresh] = max(0, 1-doubleSpend-badTag)
	return d
}

// nextKindLocked plans the next slot: the kind furthest behind its share
// (ties go to fresh, then bad, then double), so the kinds interleave evenly.
func (d *dispenser) nextKindLocked() (kind, bool) {
	if d.limit > 0 && d.slot >= d.limit {
		return 0, false
	}
	n := float64(d.slot + 1)
	best, bestDeficit := kindFresh, math.Inf(-1)
	for k := range numKinds {
		if def := d.frac[k]*n - float64(d.assigned[k]); def > bestDeficit {
			best, bestDeficit = k, def
		}
	}
	d.assigned[best]++
	d.slot++
	return best, true
}

// take returns the next request to send, or false when the run has no more
// requests (limit reached or tokens used up; see exhausted).
func (d *dispenser) take() (job, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.exhausted != "" {
		return job{}, false
	}
	k, ok := d.nextKindLocked()
	if !ok {
		return job{}, false
	}
	switch k {
	case kindBad:
		if d.nextBad >= len(d.tok.bad) {
			d.exhausted = fmt.Sprintf("the %d bad-tag tokens were used up", len(d.tok.bad))
			return job{}, false
		}
		i := d.nextBad
		d.nextBad++
		return job{body: d.tok.bad[i], kind: kindBad, valid: -1}, true
	case kindDouble:
		if len(d.spent) > 0 {
			return d.resendLocked(), true
		}
		// Nothing redeemed yet: send a fresh token now, a double spend later.
		d.debt++
		return d.freshLocked()
	default:
		if d.debt > 0 && len(d.spent) > 0 {
			d.debt--
			return d.resendLocked(), true
		}
		return d.freshLocked()
	}
}

func (d *dispenser) resendLocked() job {
	i := d.spent[d.rr%len(d.spent)]
	d.rr++
	return job{body: d.tok.valid[i], kind: kindDouble, valid: -1}
}

func (d *dispenser) freshLocked() (job, bool) {
	if d.nextValid >= len(d.tok.valid) {
		if d.debt > 0 && len(d.spent) == 0 {
			d.exhausted = fmt.Sprintf("the %d fresh tokens were used up before any redemption succeeded, so double spends had nothing to re-send", len(d.tok.valid))
		} else {
			d.exhausted = fmt.Sprintf("the token pool (%d fresh tokens) was used up after %d requests; set a count or a larger pool", len(d.tok.valid), d.slot-1)
		}
		return job{}, false
	}
	i := d.nextValid
	d.nextValid++
	return job{body: d.tok.valid[i], kind: kindFresh, valid: int32(i)}, true
}

// skip plans a slot that is not sent (open loop, late). It returns false when
// the limit is reached.
func (d *dispenser) skip() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.exhausted != "" {
		return false
	}
	_, ok := d.nextKindLocked()
	return ok
}

// redeemed records that fresh token i was redeemed successfully: it may now be
// re-sent as a double spend.
func (d *dispenser) redeemed(i int32) {
	d.mu.Lock()
	d.spent = append(d.spent, i)
	d.mu.Unlock()
}

// exhaustedReason returns why take stopped early, or "".
func (d *dispenser) exhaustedReason() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.exhausted
}
