package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/httpbody"
	"github.com/ppredeem/ppredeem/rpc/relay"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify/pass"
)

// serve also reads the relay provider API's settings.
func init() { serveSettings = append(serveSettings, config.RelaySettings...) }

// The purposes of the provider's secrets in the store (spend.RelayStore.RelaySecrets): made
// once by the first server, shared by every server on the store.
const (
	secretChallengeMAC = "challenge_mac"
	secretAccessToken  = "access_token"
)

// relayService is the relay provider API of `serve`: its handler, the configuration loaded
// from the settings, and the periodic purge.
type relayService struct {
	handler *relay.Handler
	store   spend.RelayStore
	spends  spend.Store
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex // guards the fields below, swapped by commit
	keyIDs  []string   // store IDs of every configured pass key
	active  []string   // store IDs of the issuing keys
	issuer  *pass.Issuer
	purgeIn time.Duration
}

// relayState is a loaded configuration, not yet in force.
type relayState struct {
	config *relay.Config // nil: the API is off
	keyIDs []string
	active []string
	purge  time.Duration
}

// newRelayService loads the relay settings of cfg and puts them in force. With no relay
// keys the handler answers 404 everywhere.
func newRelayService(ctx context.Context, cfg *config.Config, store spend.Store, log *slog.Logger, now func() time.Time, bodies *httpbody.Budget) (*relayService, error) {
	rs, ok := store.(spend.RelayStore)
	if !ok {
		return nil, fmt.Errorf("the %T store does not keep relays", store)
	}
	h, err := relay.New(relay.Options{Store: rs, Now: now, Logger: log, MaxBodyBytes: cfg.Relay.MaxBodyBytes, Bodies: bodies})
	if err != nil {
		return nil, err
	}
	s := &relayService{handler: h, store: rs, spends: store, log: log, now: now}
	st, err := s.load(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.commit(st)
	return s, nil
}

// load reads the key files and the credentials of cfg, and the shared secrets from the
// store (making them on first use). Errors name the file or setting, never key material.
func (s *relayService) load(ctx context.Context, cfg *config.Config) (*relayState, error) {
	r := cfg.Relay
	if !r.Enabled() {
		return &relayState{}, nil
	}
	files, err := r.RelayKeyFiles()
	if err != nil {
		return nil, err
	}
	byClaim := map[string][]*pass.Key{}
	st := &relayState{purge: r.PurgeInterval}
	for _, f := range files {
		data, err := os.ReadFile(f.File)
		if err != nil {
			return nil, fmt.Errorf("relay_keys: %w", err)
		}
		k, err := pass.ParseKeyPEM(data)
		clear(data)
		if err != nil {
			return nil, fmt.Errorf("relay_keys: %s: %w", f.File, err)
		}
		if len(byClaim[f.ClaimType]) == 0 {
			st.active = append(st.active, k.ID())
		}
		byClaim[f.ClaimType] = append(byClaim[f.ClaimType], k)
		st.keyIDs = append(st.keyIDs, k.ID())
	}
	keys, err := pass.NewKeySet(byClaim)
	if err != nil {
		return nil, fmt.Errorf("relay_keys: %w", err)
	}
	macKeys, err := s.secrets(ctx, secretChallengeMAC)
	if err != nil {
		return nil, err
	}
	accessKeys, err := s.secrets(ctx, secretAccessToken)
	if err != nil {
		return nil, err
	}
	issuer, err := pass.NewIssuer(pass.Config{IssuerName: r.IssuerName, MACKeys: macKeys, Keys: keys, Lifetime: r.PassLifetime})
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	apiKeys, err := r.APIKeyHashes()
	if err != nil {
		return nil, err
	}
	verifierKeys, err := r.VerifierKeyHashes()
	if err != nil {
		return nil, err
	}
	st.config = &relay.Config{
		Issuer:         issuer,
		APIKeys:        credentials(apiKeys),
		VerifierKeys:   credentials(verifierKeys),
		AccessKeys:     accessKeys,
		Sandbox:        r.Sandbox,
		RelayLifetime:  r.Lifetime,
		IdempotencyTTL: r.IdempotencyTTL,
	}
	return st, nil
}

// secrets returns the store's secrets of purpose, newest first, making the first one if
// there is none.
func (s *relayService) secrets(ctx context.Context, purpose string) ([][]byte, error) {
	initial := make([]byte, 32)
	_, _ = rand.Read(initial)
	list, err := s.store.RelaySecrets(ctx, purpose, initial)
	if err != nil {
		return nil, fmt.Errorf("relay: reading the shared %s secret from the store: %w", purpose, err)
	}
	out := make([][]byte, len(list))
	for i, sec := range list {
		out[i] = sec.Secret
	}
	return out, nil
}

func credentials(in []config.NamedHash) []relay.Credential {
	out := make([]relay.Credential, len(in))
	for i, c := range in {
		out[i] = relay.Credential{Name: c.Name, Hash: c.Hash}
	}
	return out
}

// commit puts a loaded state in force.
func (s *relayService) commit(st *relayState) {
	s.mu.Lock()
	s.keyIDs, s.active, s.purgeIn = st.keyIDs, st.active, st.purge
	s.issuer = nil
	if st.config != nil {
		s.issuer = st.config.Issuer
	}
	s.mu.Unlock()
	s.handler.SetConfig(st.config)
}

// stage loads cfg; the returned commit puts it in force, once the caller has taken the
// returned keys in the store (the reload's hold). On error nothing changes.
func (s *relayService) stage(ctx context.Context, cfg *config.Config) (commit func(), keyIDs []string, err error) {
	st, err := s.load(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return func() { s.commit(st) }, st.keyIDs, nil
}

// KeyIDs returns the store IDs of the configured pass keys.
func (s *relayService) KeyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keyIDs)
}

// routes are the provider API's endpoints for the main listener.
func (s *relayService) routes() map[string]http.Handler { return s.handler.Routes() }

// purgeLoop runs purgeOnce at start and every purge interval until ctx ends.
func (s *relayService) purgeLoop(ctx context.Context) {
	for {
		s.purgeOnce(ctx)
		s.mu.Lock()
		every := s.purgeIn
		s.mu.Unlock()
		if every <= 0 {
			every = time.Minute
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// purgeOnce records the issuing keys as issuing now, drops the relays and idempotency
// records that expired, and retires the keys past their last pass lifetime: a key last seen
// issuing at t (plus one purge interval, the longest it may have issued unseen) signed no
// pass redeemable after Issuer.PassNotAfter of that. Retire refuses a key some server still
// holds (it still redeems with it): that key waits for a later purge.
func (s *relayService) purgeOnce(ctx context.Context) {
	s.mu.Lock()
	active, configured, issuer, every := slices.Clone(s.active), slices.Clone(s.keyIDs), s.issuer, s.purgeIn
	s.mu.Unlock()
	now := s.now()
	if len(active) > 0 {
		if err := s.store.MarkIssuing(ctx, active, now); err != nil {
			s.log.Warn("relay purge: recording the issuing keys failed", "err", err)
		}
	}
	p, err := s.store.PurgeRelays(ctx, now)
	if err != nil {
		s.log.Warn("relay purge failed", "err", err)
	} else if p.Relays > 0 || p.IdempotencyRecords > 0 {
		s.log.Info("relay purge", "relays", p.Relays, "idempotency_records", p.IdempotencyRecords)
	}
	if issuer == nil {
		return
	}
	keys, err := s.store.IssuingKeys(ctx)
	if err != nil {
		s.log.Warn("relay purge: reading the issuing keys failed", "err", err)
		return
	}
	for _, k := range keys {
		if slices.Contains(configured, k.KeyID) || !now.After(issuer.PassNotAfter(k.LastIssuingAt.Add(every))) {
			continue
		}
		switch err := s.spends.Retire(ctx, k.KeyID); {
		case err == nil:
			s.log.Info("relay purge: retired a pass key past its last pass lifetime; its spent records are dropped", "key_id", k.KeyID)
		case errors.Is(err, spend.ErrKeyRetired), errors.Is(err, spend.ErrUnknownKey):
		case errors.Is(err, spend.ErrKeyHeld):
			s.log.Debug("relay purge: a pass key past its lifetime is still held by a server", "key_id", k.KeyID)
		default:
			s.log.Warn("relay purge: retiring a pass key failed", "key_id", k.KeyID, "err", err)
		}
	}
}

// checkDistinctKeyIDs refuses a relay key whose store ID is also a legacy key's: the two
// would share spent-token storage.
func checkDistinctKeyIDs(legacy, relayIDs []string) error {
	for _, id := range relayIDs {
		if slices.Contains(legacy, id) {
			return fmt.Errorf("relay_keys: key ID %s is also the ID of a legacy key (keys); they would share spent-token storage", id)
		}
	}
	return nil
}

// noLegacyKeys is the legacy kind's key set of a server without --keys (the relay provider
// API only): no token verifies under it.
type noLegacyKeys struct{}

func (noLegacyKeys) KeyIDs() []string { return nil }

func (noLegacyKeys) Verify([]byte) (rpc.Verdict, error) {
	return rpc.Verdict{}, &rpc.Refusal{Outcome: rpc.OutcomeBadTag, Err: errors.New("no legacy keys are configured")}
}
