package pass

import (
	"errors"
	"fmt"
	"slices"
)

// MaxClaimTypeLen bounds a claim type name.
const MaxClaimTypeLen = 64

// KeySet is the immutable set of issuer keys, per claim type:
// for each claim type an ordered list whose first key is the active issuing
// key and whose other keys only redeem (passes they signed stay valid for
// their lifetime). It is safe for concurrent use; rotating keys means
// building a new KeySet.
type KeySet struct {
	byClaim map[string][]*Key
	byID    map[string]keyEntry // by token-key-id
	claims  []string            // sorted
}

type keyEntry struct {
	key       *Key
	claimType string
	active    bool
}

// NewKeySet builds a key set from claim type → keys, the first key of each
// list being the claim type's active issuing key. It needs at least one claim
// type, at least one key per claim type, claim type names of 1 to 64
// characters from [A-Za-z0-9._-], and no key twice (in one claim type or in
// two: a pass must name exactly one claim type). Two different keys whose
// store IDs (the first 64 bits of the token-key-id) collide are refused too,
// since the spent-token store could not tell them apart. The lists are
// copied.
func NewKeySet(claims map[string][]*Key) (*KeySet, error) {
	if len(claims) == 0 {
		return nil, errors.New("pass: a key set needs at least one claim type")
	}
	s := &KeySet{
		byClaim: make(map[string][]*Key, len(claims)),
		byID:    make(map[string]keyEntry),
	}
	storeIDs := make(map[string]string)
	for ct, keys := range claims {
		if !validClaimType(ct) {
			return nil, fmt.Errorf("pass: claim type %q: want 1 to %d characters from A-Z a-z 0-9 . _ -", truncate(ct, MaxClaimTypeLen), MaxClaimTypeLen)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("pass: claim type %q has no keys", ct)
		}
		for i, k := range keys {
			if !k.valid() {
				return nil, fmt.Errorf("pass: claim type %q: %w", ct, errZeroKey)
			}
			if prev, dup := s.byID[k.tokenKeyID]; dup {
				return nil, fmt.Errorf("pass: key %s listed twice (claim types %q and %q)", k.id, prev.claimType, ct)
			}
			if other, dup := storeIDs[k.id]; dup {
				return nil, fmt.Errorf("pass: keys %s and %s share the store ID %s", other, k.tokenKeyID, k.id)
			}
			storeIDs[k.id] = k.tokenKeyID
			s.byID[k.tokenKeyID] = keyEntry{key: k, claimType: ct, active: i == 0}
		}
		s.byClaim[ct] = slices.Clone(keys)
		s.claims = append(s.claims, ct)
	}
	slices.Sort(s.claims)
	return s, nil
}

func validClaimType(ct string) bool {
	if len(ct) == 0 || len(ct) > MaxClaimTypeLen {
		return false
	}
	for i := 0; i < len(ct); i++ {
		c := ct[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ClaimTypes returns the configured claim types, sorted (nil for a nil set).
func (s *KeySet) ClaimTypes() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.claims)
}

// Keys returns the keys of a claim type, the active one first, or nil for an
// unknown claim type.
func (s *KeySet) Keys(claimType string) []*Key { return slices.Clone(s.byClaim[claimType]) }

// Active returns the active issuing key of a claim type.
func (s *KeySet) Active(claimType string) (*Key, bool) {
	keys := s.byClaim[claimType]
	if len(keys) == 0 {
		return nil, false
	}
	return keys[0], true
}

// Lookup returns the key with the given token-key-id, active or not, and the
// claim type it belongs to.
func (s *KeySet) Lookup(tokenKeyID string) (key *Key, claimType string, ok bool) {
	e, ok := s.byID[tokenKeyID]
	return e.key, e.claimType, ok
}

// activeKey returns the key with the given token-key-id, and its claim
// type, if it is the active issuing key of that claim type.
func (s *KeySet) activeKey(tokenKeyID string) (*Key, string, bool) {
	e, ok := s.byID[tokenKeyID]
	if !ok || !e.active {
		return nil, "", false
	}
	return e.key, e.claimType, true
}
