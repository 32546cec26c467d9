package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc/admin"
	"github.com/ppredeem/ppredeem/spend"
)

// reloadableSettings are the settings a reload puts in force: the ones
// the token kinds' loaders read (tokenKinds), the issuance Gate's
// (issuance.go) and the relay provider API's (relay.go). A loader that
// reads another setting adds it here, or a reload keeps that setting's
// start-up value and reports it as needing a restart. Every other serve
// setting (the listeners, the store, the pool, the timeouts, logging, the
// body and batch limits, max_issue_tokens, commitment_expiry) is used once
// at start and needs a restart.
var reloadableSettings = slices.Concat([]string{"keys", "max_token_bytes", "max_bindings", "max_bindings_bytes"}, issueSettings, config.RelaySettings)

// holdTimeout bounds the store's work of a reload or of stopping: taking
// or dropping the hold on the keys.
const holdTimeout = 30 * time.Second

// reloader does what SIGHUP asks of `serve`: load the configuration again
// (flags, environment, and the config file read anew), load every key file
// it names, take the new keys in the store, then swap every kind's key set
// at once (one pointer). Any failure keeps the previous state in force.
type reloader struct {
	running *config.Config           // the settings in force
	keys    []string                 // the key IDs in force, of every kind and of the relays
	current *atomic.Pointer[keyring] // read by the handler
	relays  *relayService            // the relay provider API's keys and credentials
	gate    *issueGate               // who may get tokens at POST /api/issue
	hold    *spend.Holding           // the store's record of the keys this server serves
	gauges  *admin.ReloadGauges      // the outcome of the latest load
	log     *slog.Logger
}

// reload runs one reload, records its outcome in the gauges and logs it.
func (r *reloader) reload(ctx context.Context) error {
	err := r.apply(ctx)
	r.gauges.Observe(err, time.Now())
	if err != nil {
		r.log.Error("reload failed; the previous configuration and keys stay in force", "err", err)
	}
	return err
}

func (r *reloader) apply(ctx context.Context) error {
	next, err := r.running.Reload()
	if err != nil {
		return err
	}
	if err := next.ValidateServe(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	cfg := r.running.With(next, reloadableSettings)
	if err := cfg.ValidateServe(); err != nil {
		// A reloaded setting checked against one that needs a restart
		// (issue_open_burst against max_issue_tokens).
		return fmt.Errorf("the configuration would be invalid with the settings that need a restart at their values at start:\n%w", err)
	}
	ring, err := loadKeyring(cfg)
	if err != nil {
		return err
	}
	holdCtx, cancel := context.WithTimeout(ctx, holdTimeout)
	defer cancel()
	commitRelays, relayIDs, err := r.relays.stage(holdCtx, cfg)
	if err != nil {
		return err
	}
	if err := checkDistinctKeyIDs(ring.keyIDs(), relayIDs); err != nil {
		return err
	}
	commitGate, attesters, err := r.gate.stage(cfg)
	if err != nil {
		return err
	}
	ids := append(ring.keyIDs(), relayIDs...)
	// Hold the old keys and the new ones while the key sets change, so that
	// no key this server serves is ever unheld; then release the dropped ones.
	if err := r.hold.Update(holdCtx, union(r.keys, ids)); err != nil {
		return fmt.Errorf("the spent-token store cannot take the new keys: %w", err)
	}
	r.current.Store(&ring)
	commitRelays()
	commitGate()
	added, removed := keyChanges(r.keys, ids)
	if err := r.hold.Update(holdCtx, ids); err != nil {
		// The new keys serve; the dropped ones stay held (and cannot be
		// retired) until a later reload or a stop releases them.
		r.log.Warn("the dropped keys are still held in the store; reload again to release them", "keys", removed, "err", err)
	}
	restart := config.Changed(r.running, next, restartSettings())
	r.running, r.keys = cfg, ids
	if len(restart) > 0 {
		r.log.Warn("settings changed in the configuration need a restart; their values at start stay in force", "settings", restart)
	}
	r.log.Info("configuration reloaded", "keys", ring.keyIDs(), "relay_keys", relayIDs, "added", added, "removed", removed, "attesters", attesters)
	warnAboutKeys(r.log, ring.keyIDs())
	return nil
}

// restartSettings are the serve settings a reload does not change.
func restartSettings() []string {
	var out []string
	for _, key := range serveSettings {
		if !slices.Contains(reloadableSettings, key) {
			out = append(out, key)
		}
	}
	return out
}

// keyChanges returns the IDs in next but not in prev, and in prev but not
// in next.
func keyChanges(prev, next []string) (added, removed []string) {
	added, removed = []string{}, []string{}
	for _, id := range next {
		if !slices.Contains(prev, id) {
			added = append(added, id)
		}
	}
	for _, id := range prev {
		if !slices.Contains(next, id) {
			removed = append(removed, id)
		}
	}
	return added, removed
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
