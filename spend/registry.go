package spend

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The key registry: both stores remember every key they have ever held storage for, when it
// was first prepared and when it was retired (a tombstone), and which servers hold it now.
// The rules below are shared, so that both stores refuse the same things with the same words.

// keyState is what a store knows of one key ID.
type keyState struct {
	id         string
	registered bool
	preparedAt time.Time
	retiredAt  time.Time // zero while live
	hasStorage bool
	holds      []HoldInfo // live holds only
}

// storageTerms names a key's storage in a store's own terms, for messages.
type storageTerms struct {
	// storage describes the key's storage, e.g. "partition spent_tokens_<id>".
	storage func(id string) string
	// restore says what to restore from a backup, e.g. "that table".
	restore func(id string) string
}

// prepare decides what PrepareKeys does with k: create its storage, register it, both,
// neither, or refuse.
func (k keyState) prepare(terms storageTerms) (create, register bool, err error) {
	switch {
	case !k.retiredAt.IsZero():
		return false, false, errKeyRetired(k)
	case k.registered && !k.hasStorage:
		return false, false, errStorageLost(k, terms)
	}
	return !k.hasStorage, !k.registered, nil
}

// holdable reports whether a hold may be taken on k.
func (k keyState) holdable(terms storageTerms) error {
	if _, register, err := k.prepare(terms); err != nil {
		return err
	} else if register || !k.hasStorage {
		return newError(ErrUnknownKey, "spend: key %s is not prepared in this store: PrepareKeys must come before Hold", k.id)
	}
	return nil
}

// retirable reports whether Retire may drop k at time now.
func (k keyState) retirable(now time.Time) error {
	switch {
	case !k.retiredAt.IsZero():
		return newError(ErrKeyRetired, "spend: key %s is already retired (at %s)", k.id, timestamp(k.retiredAt))
	case !k.registered && !k.hasStorage:
		return newError(ErrUnknownKey, "spend: key %s was never prepared in this store: nothing to retire", k.id)
	case len(k.holds) > 0:
		var who []string
		var last time.Time
		for _, h := range k.holds {
			who = append(who, h.Holder)
			if h.Expires.After(last) {
				last = h.Expires
			}
		}
		return newError(ErrKeyHeld, "spend: refusing to retire key %s: running server %s holds it (the hold expires in %s unless renewed); "+
			"remove the key from that server's configuration and reload it (SIGHUP), or stop it, then retire the key",
			k.id, strings.Join(who, ", "), last.Sub(now).Round(time.Second))
	}
	return nil
}

func errKeyRetired(k keyState) error {
	return newError(ErrKeyRetired, "spend: key %s was retired at %s and its spent records deleted: it must never serve again, "+
		"or tokens it already accepted would be accepted a second time; remove it from the configuration and use a new key "+
		"(ppredeem keys generate)", k.id, timestamp(k.retiredAt))
}

func errStorageLost(k keyState, terms storageTerms) error {
	since := "before"
	if !k.preparedAt.IsZero() {
		since = "since " + timestamp(k.preparedAt)
	}
	return newError(ErrKeyStorageLost, "spend: the spent records of key %s are missing: %s is gone, although this store has held "+
		"the key %s; refusing to create it again empty, which would make every token the key accepted redeemable again. "+
		"Restore %s from a backup, or retire the key (ppredeem keys retire %s) and use a new one",
		k.id, terms.storage(k.id), since, terms.restore(k.id), k.id)
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// checkRegistry compares registry and storage for Check: a live key without storage, a
// retired key with storage again, storage without a registration.
func checkRegistry(states []keyState, terms storageTerms) []error {
	var problems []error
	for _, k := range states {
		switch {
		case !k.retiredAt.IsZero() && k.hasStorage:
			problems = append(problems, newError(ErrStoreDamaged, "key %s was retired at %s but %s exists again (made by an older ppredeem?): "+
				"its tokens must not be served; retire the key again once no server holds it", k.id, timestamp(k.retiredAt), terms.storage(k.id)))
		case k.registered && k.retiredAt.IsZero() && !k.hasStorage:
			problems = append(problems, errStorageLost(k, terms))
		case !k.registered:
			problems = append(problems, newError(ErrStoreDamaged, "%s is not in the key registry (made by an older ppredeem?); "+
				"the next start of a server holding the key registers it", terms.storage(k.id)))
		}
	}
	return problems
}

// validHolder reports whether holder is usable as a holder ID: 1 to 200 printable ASCII
// characters.
func validHolder(holder string) error {
	if holder == "" || len(holder) > 200 {
		return fmt.Errorf("spend: holder ID must be 1 to 200 characters, got %d", len(holder))
	}
	for i := 0; i < len(holder); i++ {
		if holder[i] < 0x20 || holder[i] > 0x7e {
			return fmt.Errorf("spend: holder ID %q has a character that is not printable ASCII", holder)
		}
	}
	return nil
}

// checkHoldArgs validates Hold's arguments.
func checkHoldArgs(holder string, keyIDs []string, ttl time.Duration) ([]string, error) {
	if err := validHolder(holder); err != nil {
		return nil, err
	}
	if ttl < time.Second || ttl > 24*time.Hour {
		return nil, fmt.Errorf("spend: hold TTL %s out of range (1s to 24h)", ttl)
	}
	return checkKeyIDs(keyIDs)
}

func keyInfos(states []keyState) []KeyInfo {
	out := make([]KeyInfo, len(states))
	for i, k := range states {
		out[i] = KeyInfo{ID: k.id, PreparedAt: k.preparedAt, RetiredAt: k.retiredAt, HasStorage: k.hasStorage, Holds: k.holds}
	}
	return out
}

// checkResult sums up Check's problems.
func checkResult(what string, problems []error) error {
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("spend: %s: %d problem(s) found:\n%w", what, len(problems), errors.Join(problems...))
}
