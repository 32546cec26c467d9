package main

import (
	"fmt"
	"sync/atomic"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/admin"
	"github.com/ppredeem/ppredeem/rpc/attest"
	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/spend"
)

// issueSettings are the settings of the attest.Gate, which a reload puts
// in force (reload.go).
var issueSettings = []string{"issue_keys", "issue_open", "issue_open_per_hour", "issue_open_burst", "trusted_proxies"}

// issueGate is the attest.Gate of `serve` in force: made at start,
// replaced by its successor on each reload.
type issueGate struct {
	current atomic.Pointer[attest.Gate]
	metrics *admin.IssueMetrics
}

// issueOptions is the issuance of `serve` (POST /api/issue, GET
// /api/commitments): the VOPRF kind's first key signs, the attesters and
// open issuance of the configuration admit (the Gate in gate), the store
// counts every token issued (within spend_timeout), and m counts it too.
func issueOptions(cfg *config.Config, store spend.Store, m *admin.Metrics) (*rpc.IssueOptions, *issueGate, error) {
	usage, ok := store.(rpc.UsageCounter)
	if !ok {
		return nil, nil, fmt.Errorf("the spent-token store %T cannot count issued tokens", store)
	}
	gc, err := gateConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	g, err := attest.New(gc)
	if err != nil {
		return nil, nil, err
	}
	gate := &issueGate{metrics: m.Issuance(g.Names())}
	gate.current.Store(g)
	return &rpc.IssueOptions{
		Kind:             wire.MethodRedeem,
		Gate:             gate.current.Load,
		Usage:            usage,
		MaxTokens:        cfg.Issue.MaxTokens,
		CountTimeout:     cfg.SpendTimeout,
		CommitmentExpiry: cfg.Issue.CommitmentExpiry,
		Observer:         gate.metrics,
	}, gate, nil
}

// gateConfig is the attest.Config of cfg's issueSettings.
func gateConfig(cfg *config.Config) (attest.Config, error) {
	attesters, err := cfg.Attesters()
	if err != nil {
		return attest.Config{}, err
	}
	proxies, err := cfg.TrustedProxies()
	if err != nil {
		return attest.Config{}, err
	}
	keys := make([]attest.Key, len(attesters))
	for i, a := range attesters {
		keys[i] = attest.Key{Name: a.Name, Hash: a.Hash}
	}
	return attest.Config{
		Keys:           keys,
		Open:           cfg.Issue.Open,
		Rate:           attest.PerHour(cfg.Issue.OpenPerHour),
		Burst:          cfg.Issue.OpenBurst,
		TrustedProxies: proxies,
	}, nil
}

// stage makes the successor of the Gate in force from cfg; the returned
// commit puts it in force. On error nothing changes.
func (g *issueGate) stage(cfg *config.Config) (commit func(), names []string, err error) {
	gc, err := gateConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	next, err := g.current.Load().Successor(gc)
	if err != nil {
		return nil, nil, err
	}
	return func() {
		g.metrics.AddAttesters(next.Names())
		g.current.Store(next)
	}, next.Names(), nil
}
