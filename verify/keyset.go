package verify

import (
	"crypto/hmac"
	"errors"

	"filippo.io/nistec"
)

// KeySet is the immutable, ordered set of redemption keys a server accepts.
// It is safe for concurrent use. Rotating keys means building a new KeySet.
type KeySet struct {
	keys []*Key
}

// NewKeySet returns a set of the given keys, in the given order. It needs at
// least one key, every key made by NewKey, GenerateKey or ParseKeysPEM, and
// no two keys with the same ID (the same scalar twice would make every spend
// record ambiguous).
func NewKeySet(keys []*Key) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("verify: a key set needs at least one key")
	}
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if !k.valid() {
			return nil, errZeroKey
		}
		if _, dup := seen[k.id]; dup {
			return nil, errors.New("verify: duplicate key " + k.id)
		}
		seen[k.id] = struct{}{}
	}
	return &KeySet{keys: append([]*Key(nil), keys...)}, nil
}

// Keys returns a copy of the keys, in configured order.
func (s *KeySet) Keys() []*Key {
	if s == nil {
		return nil
	}
	return append([]*Key(nil), s.keys...)
}

// Verify checks the tag of r against every key of s (verify/PROTOCOL.md §6):
// it hashes the token to T once, then for each key computes N = k·T, the
// derived key and the binding tag, and compares it with r.Tag in constant time
// (hmac.Equal). It returns the first key whose tag matches, or ErrBadTag: also
// when the token cannot be hashed to the curve, the method is unknown, the tag
// is not 32 bytes, or r is nil. It does not panic on any input.
//
// Verify stops at the first matching key, so its duration says which
// position matched; that is public (the client knows which commitment it was
// issued under). Verify does not check bindings against the request context,
// and does not record the spend: both are the caller's job.
func (s *KeySet) Verify(r *Redemption) (*Key, error) {
	if s == nil || r == nil || len(r.Tag) != tagLen {
		return nil, ErrBadTag
	}
	T := nistec.NewP256Point()
	if err := hashToCurve(T, r.Token, r.Method); err != nil {
		return nil, ErrBadTag
	}
	tr := newTranscript(r.Token, r.Bindings)
	defer tr.release()
	for _, k := range s.keys {
		if !tr.tag(T, k.scalar, r.Compressed) {
			continue
		}
		if hmac.Equal(tr.out[:], r.Tag) {
			return k, nil
		}
	}
	return nil, ErrBadTag
}
