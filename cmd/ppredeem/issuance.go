package main

import (
	"fmt"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/admin"
	"github.com/ppredeem/ppredeem/rpc/attest"
	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/spend"
)

// issueOptions is the issuance of `serve` (POST /api/issue, GET
// /api/commitments): the VOPRF kind's first key signs, the attesters and
// open issuance of the configuration admit, the store counts every token
// issued (within spend_timeout), and m counts it too.
func issueOptions(cfg *config.Config, store spend.Store, m *admin.Metrics) (*rpc.IssueOptions, error) {
	usage, ok := store.(rpc.UsageCounter)
	if !ok {
		return nil, fmt.Errorf("the spent-token store %T cannot count issued tokens", store)
	}
	attesters, err := cfg.Attesters()
	if err != nil {
		return nil, err
	}
	proxies, err := cfg.TrustedProxies()
	if err != nil {
		return nil, err
	}
	keys := make([]attest.Key, len(attesters))
	for i, a := range attesters {
		keys[i] = attest.Key{Name: a.Name, Hash: a.Hash}
	}
	gate, err := attest.New(attest.Config{
		Keys:           keys,
		Open:           cfg.Issue.Open,
		Rate:           attest.PerHour(cfg.Issue.OpenPerHour),
		Burst:          cfg.Issue.OpenBurst,
		TrustedProxies: proxies,
	})
	if err != nil {
		return nil, err
	}
	return &rpc.IssueOptions{
		Kind:             wire.MethodRedeem,
		Gate:             gate,
		Usage:            usage,
		MaxTokens:        cfg.Issue.MaxTokens,
		CountTimeout:     cfg.SpendTimeout,
		CommitmentExpiry: cfg.Issue.CommitmentExpiry,
		Observer:         m.Issuance(gate.Names()),
	}, nil
}
