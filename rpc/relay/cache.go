package relay

import (
	"sync"
	"time"

	"github.com/ppredeem/ppredeem/spend"
)

// relayCache keeps the facts of relays whose claim result is known: the secret's hash,
// the claim type, the encryption key, the expiry, the result and the methodology. None of
// them ever changes once the result is reported (a result is final), so generate-claim can
// skip reading the relay from the store when this server created it as a sandbox, took its
// report, or read it once with a result; what still changes (whether and by which pass it
// was redeemed, the payload answered) is decided by the store's atomic step, which reads
// the row itself. A relay without a result is never cached: another server may record it.
// The cache is bounded: when full it starts over.
type relayCache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]*spend.Relay
}

const relayCacheSize = 1 << 16

func newRelayCache(max int) *relayCache {
	return &relayCache{max: max, m: make(map[[32]byte]*spend.Relay)}
}

// put remembers the immutable facts of r if its result is known.
func (c *relayCache) put(r *spend.Relay) {
	if r.ClaimResult == "" {
		return
	}
	facts := &spend.Relay{ID: r.ID, SecretHash: r.SecretHash, ClaimType: r.ClaimType, EncryptionKey: r.EncryptionKey,
		Sandbox: r.Sandbox, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, ClaimResult: r.ClaimResult,
		Methodology: r.Methodology, ReportedAt: r.ReportedAt}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[r.ID] = facts
}

// get returns the facts of a live relay, or nil.
func (c *relayCache) get(id [32]byte, now time.Time) *spend.Relay {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.m[id]
	if r == nil {
		return nil
	}
	if !r.ExpiresAt.After(now) {
		delete(c.m, id)
		return nil
	}
	return r
}
