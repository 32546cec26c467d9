package spend

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// Holds: a server records in the store which keys it serves, with an expiry it keeps
// renewing, and Retire refuses a key with a live hold. A server that stops releases its holds;
// one that dies stops renewing, and its holds lapse after the TTL.
const (
	// DefaultHoldTTL is how long a hold lasts without renewal: three renewals, so that one
	// or two slow or failed renewals (a database restart) do not let it lapse.
	DefaultHoldTTL = 30 * time.Second
	// DefaultHoldRenew is how often a Holding renews its hold.
	DefaultHoldRenew = 10 * time.Second
)

// NewHolderID returns a holder ID naming this process for an operator reading a refusal:
// host name, process ID and a random suffix (a restarted process gets a new ID), e.g.
// "web-1/4242/9f3a1c2e".
func NewHolderID() string {
	host, err := os.Hostname()
	if err != nil || validHolder(host) != nil || len(host) > 100 {
		host = "unknown-host"
	}
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(r[:]))
}

// HoldConfig configures StartHolding. Zero values select the defaults.
type HoldConfig struct {
	Holder string        // "" → NewHolderID()
	TTL    time.Duration // 0 → DefaultHoldTTL
	Renew  time.Duration // 0 → DefaultHoldRenew; must be shorter than TTL
	// OnRenew, if set, is told the outcome of every renewal (nil on success), from the
	// renewing goroutine: for logs and metrics. A renewal that keeps failing lets the hold
	// lapse after TTL, and the keys can then be retired while this server still serves them;
	// their spends then fail (ErrUnknownKey), never succeed twice.
	OnRenew func(error)
}

// Holding is one server's hold on its keys: taken by StartHolding, changed by Update,
// renewed in the background, released by Stop.
type Holding struct {
	store Store
	cfg   HoldConfig

	mu   sync.Mutex // serialises Hold calls, so a renewal never restores an older key set
	keys []string

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// StartHolding prepares keyIDs (PrepareKeys) and takes the hold, then renews it every Renew
// until Stop. It fails, holding nothing, when a key is retired or its storage lost: a server
// must not start with such a key.
func StartHolding(ctx context.Context, s Store, keyIDs []string, cfg HoldConfig) (*Holding, error) {
	cfg.Holder = cmp.Or(cfg.Holder, NewHolderID())
	cfg.TTL = cmp.Or(cfg.TTL, DefaultHoldTTL)
	cfg.Renew = cmp.Or(cfg.Renew, DefaultHoldRenew)
	if cfg.Renew <= 0 || cfg.Renew >= cfg.TTL {
		return nil, fmt.Errorf("spend: hold renewal every %s must be shorter than its TTL %s", cfg.Renew, cfg.TTL)
	}
	h := &Holding{store: s, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	if err := h.Update(ctx, keyIDs); err != nil {
		return nil, err
	}
	go h.renew()
	return h, nil
}

// Holder returns the holder ID.
func (h *Holding) Holder() string { return h.cfg.Holder }

// Keys returns the key IDs held.
func (h *Holding) Keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.keys)
}

// Update prepares keyIDs and holds exactly them from now on (a reload: keys no longer listed
// are released at once, so they can be retired). On error the previous keys stay held; a
// refused key (retired, storage lost) prepares nothing, and a Hold that fails after
// PrepareKeys succeeded (a retire in between) leaves the new keys prepared but not held.
func (h *Holding) Update(ctx context.Context, keyIDs []string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.stop:
		return errors.New("spend: holding stopped")
	default:
	}
	if err := h.store.PrepareKeys(ctx, keyIDs); err != nil {
		return err
	}
	if err := h.store.Hold(ctx, h.cfg.Holder, keyIDs, h.cfg.TTL); err != nil {
		return err
	}
	h.keys = slices.Clone(keyIDs)
	return nil
}

func (h *Holding) renew() {
	defer close(h.done)
	t := time.NewTicker(h.cfg.Renew)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		// When a renewal starts, the hold has at least TTL - Renew left if the previous one
		// succeeded: a renewal finishing later would be too late anyway.
		h.mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.TTL-h.cfg.Renew)
		err := h.store.Hold(ctx, h.cfg.Holder, h.keys, h.cfg.TTL)
		cancel()
		h.mu.Unlock()
		if h.cfg.OnRenew != nil {
			h.cfg.OnRenew(err)
		}
	}
}

// Stop ends the renewals and releases the hold. Safe to call more than once.
func (h *Holding) Stop(ctx context.Context) error {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
	return h.store.Release(ctx, h.cfg.Holder)
}
