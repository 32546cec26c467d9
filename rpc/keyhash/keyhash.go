// Package keyhash finds who holds a presented secret key, as the operator
// configures keys: by a name and the SHA-256 of the key (NAME=SHA256HEX,
// package config), so that the server never stores a key. The attester
// keys of issuance (rpc/attest) and the API and verifier keys of the relay
// provider API (rpc/relay) are matched here.
//
// Match hashes the presented key once and compares the digest with every
// configured hash with crypto/subtle.ConstantTimeCompare, all of them,
// whatever matched first: the time taken says neither which key matched
// nor how much of one did. It depends only on the number of keys.
package keyhash

import (
	"crypto/sha256"
	"crypto/subtle"
)

// Key is one configured key: its holder's name (for billing, metrics and
// logs) and the SHA-256 of the key.
type Key struct {
	Name string
	Hash [sha256.Size]byte
}

// Match returns the key of keys whose Hash is the SHA-256 of presented.
// An empty presented key matches nothing. Names and hashes are expected
// to be unique (config refuses duplicates); were a hash listed twice, the
// last key with it would be returned.
func Match(keys []Key, presented string) (Key, bool) {
	if presented == "" {
		return Key{}, false
	}
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range keys {
		if subtle.ConstantTimeCompare(sum[:], keys[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Key{}, false
	}
	return keys[found], true
}
