package main

import (
	"fmt"
	"os"

	"github.com/ppredeem/ppredeem/verify"
)

// loadKeySet reads every PEM file and builds the key set. Errors name the
// file, never the key material.
func loadKeySet(paths []string) (*verify.KeySet, error) {
	var keys []*verify.Key
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("keys file %s: %w", p, err)
		}
		ks, err := verify.ParseKeysPEM(data)
		if err != nil {
			return nil, fmt.Errorf("keys file %s: %w", p, err)
		}
		keys = append(keys, ks...)
	}
	set, err := verify.NewKeySet(keys)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return set, nil
}

func keyIDs(set *verify.KeySet) []string {
	var ids []string
	for _, k := range set.Keys() {
		ids = append(ids, k.ID())
	}
	return ids
}
