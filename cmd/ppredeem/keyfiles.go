package main

import (
	"fmt"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/kind/voprf"
	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/verify"
)

// tokenKind is one kind of token `serve` redeems: the JSON-RPC method that
// takes it and how its key set loads from the configuration (on start and
// on every SIGHUP).
type tokenKind struct {
	method string
	load   func(*config.Config) (rpc.KeySet, error)
}

// tokenKinds lists the kinds of token the server redeems. A new kind is
// its package (an rpc.KeySet, see package rpc) and one line here; the
// stores, the batcher, the metrics and the error table are shared.
func tokenKinds() []tokenKind {
	return []tokenKind{
		{wire.MethodRedeem, func(c *config.Config) (rpc.KeySet, error) {
			if len(c.Keys) == 0 {
				return noLegacyKeys{}, nil // a server of the relay provider API only
			}
			return voprf.Load(c.Keys, limits(c))
		}},
	}
}

// limits are the VOPRF kind's params limits.
func limits(c *config.Config) verify.Limits {
	return verify.Limits{MaxTokenBytes: c.MaxTokenBytes, MaxBindings: c.MaxBindings, MaxBindingsBytes: c.MaxBindingsBytes}
}

// keyring is the key sets in force, one per kind in tokenKinds order. It
// is replaced whole on reload, so every kind changes keys at once.
type keyring []rpc.KeySet

// loadKeyring loads every kind's key set. Key IDs must be unique across
// kinds: they name the spent-token storage.
func loadKeyring(cfg *config.Config) (keyring, error) {
	var ring keyring
	owner := map[string]string{}
	for _, k := range tokenKinds() {
		set, err := k.load(cfg)
		if err != nil {
			return nil, err
		}
		for _, id := range set.KeyIDs() {
			if other, dup := owner[id]; dup {
				return nil, fmt.Errorf("keys: key ID %s is configured for both %s and %s", id, other, k.method)
			}
			owner[id] = k.method
		}
		ring = append(ring, set)
	}
	return ring, nil
}

// keyIDs returns the IDs of every kind's keys.
func (r keyring) keyIDs() []string {
	var ids []string
	for _, set := range r {
		ids = append(ids, set.KeyIDs()...)
	}
	return ids
}

// loadKeySet reads the VOPRF key files (ppredeem keys list and bench mint
// under them). Errors name the file, never the key material.
func loadKeySet(paths []string) (*verify.KeySet, error) { return voprf.LoadFiles(paths) }
