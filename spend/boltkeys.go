package spend

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// encodeKeyRecord encodes a registry value: prepared at, retired at (zero: live).
func encodeKeyRecord(prepared, retired time.Time) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(prepared.UnixNano()))
	if !retired.IsZero() {
		binary.BigEndian.PutUint64(v[8:], uint64(retired.UnixNano()))
	}
	return v
}

// boltKeyState reads what the file knows of id: registry entry, bucket, live holds.
func (b *Bolt) keyState(tx *bolt.Tx, id string, now time.Time) (keyState, error) {
	k := keyState{id: id, hasStorage: tx.Bucket([]byte(id)) != nil}
	m := tx.Bucket(boltMetaBucket)
	if v := m.Bucket(boltKeysBucket).Get([]byte(id)); v != nil {
		if len(v) != 16 {
			return k, newError(ErrStoreDamaged, "spend: %s: the registry entry of key %s is damaged", b.path, id)
		}
		k.registered = true
		k.preparedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
		if r := binary.BigEndian.Uint64(v[8:]); r != 0 {
			k.retiredAt = time.Unix(0, int64(r)).UTC()
		}
	}
	err := m.Bucket(boltHoldersBucket).ForEach(func(holder, v []byte) error {
		expires, ids, err := decodeHold(v)
		if err != nil {
			return newError(ErrStoreDamaged, "spend: %s: the hold of %q is damaged", b.path, holder)
		}
		if expires.After(now) && slices.Contains(ids, id) {
			k.holds = append(k.holds, HoldInfo{Holder: string(holder), Expires: expires})
		}
		return nil
	})
	return k, err
}

func encodeHold(expires time.Time, ids []string) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(expires.UnixNano()))
	for _, id := range ids {
		v = append(v, id...)
	}
	return v
}

func decodeHold(v []byte) (time.Time, []string, error) {
	if len(v) < 8 || (len(v)-8)%keyIDLen != 0 {
		return time.Time{}, nil, errors.New("bad hold record")
	}
	var ids []string
	for rest := v[8:]; len(rest) > 0; rest = rest[keyIDLen:] {
		ids = append(ids, string(rest[:keyIDLen]))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), ids, nil
}

// PrepareKeys implements Store: for each key, its bucket and registry entry, in one
// transaction; a refused key (retired, storage lost) leaves everything unchanged. The file
// lock keeps other processes out, and bbolt serialises writers within this one.
func (b *Bolt) PrepareKeys(ctx context.Context, keyIDs []string) error {
	ids, err := checkKeyIDs(keyIDs)
	if err != nil || len(ids) == 0 {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var refused error
	err = b.db.Update(func(tx *bolt.Tx) error {
		now := time.Now()
		keys := tx.Bucket(boltMetaBucket).Bucket(boltKeysBucket)
		var errs []error
		type step struct {
			id               string
			create, register bool
		}
		var steps []step
		for _, id := range ids {
			k, err := b.keyState(tx, id, now)
			if err != nil {
				return err
			}
			create, register, err := k.prepare(b.terms)
			if err != nil {
				errs = append(errs, err)
			}
			steps = append(steps, step{id, create, register})
		}
		if refused = errors.Join(errs...); refused != nil {
			return refused
		}
		for _, s := range steps {
			if s.create {
				if _, err := tx.CreateBucket([]byte(s.id)); err != nil {
					return err
				}
			}
			if s.register {
				if err := keys.Put([]byte(s.id), encodeKeyRecord(now, time.Time{})); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: bolt: prepare key buckets: %w", err)
	}
	return err
}

// Hold implements Store. Within one process the file lock already excludes every other
// server; holds still apply to Retire through this handle, and OpenBolt drops the holds a
// previous process left behind.
func (b *Bolt) Hold(ctx context.Context, holder string, keyIDs []string, ttl time.Duration) error {
	ids, err := checkHoldArgs(holder, keyIDs, ttl)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	slices.Sort(ids)
	var refused error
	err = b.db.Update(func(tx *bolt.Tx) error {
		now := time.Now()
		var errs []error
		for _, id := range ids {
			k, err := b.keyState(tx, id, now)
			if err != nil {
				return err
			}
			if err := k.holdable(b.terms); err != nil {
				errs = append(errs, err)
			}
		}
		if refused = errors.Join(errs...); refused != nil {
			return refused
		}
		holders := tx.Bucket(boltMetaBucket).Bucket(boltHoldersBucket)
		if err := dropExpiredHolds(holders, now); err != nil {
			return err
		}
		if len(ids) == 0 {
			return holders.Delete([]byte(holder))
		}
		return holders.Put([]byte(holder), encodeHold(now.Add(ttl), ids))
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: bolt: hold keys: %w", err)
	}
	return err
}

func dropExpiredHolds(holders *bolt.Bucket, now time.Time) error {
	var expired [][]byte
	err := holders.ForEach(func(k, v []byte) error {
		if exp, _, err := decodeHold(v); err != nil || !exp.After(now) {
			expired = append(expired, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range expired {
		if err == nil {
			err = holders.Delete(k)
		}
	}
	return err
}

// Release implements Store.
func (b *Bolt) Release(ctx context.Context, holder string) error {
	if err := validHolder(holder); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(boltMetaBucket).Bucket(boltHoldersBucket).Delete([]byte(holder))
	})
	if err != nil {
		return fmt.Errorf("spend: bolt: release holds: %w", err)
	}
	return nil
}

// Retire implements Store: the key's bucket is deleted and its registry entry marked retired,
// in one transaction. bbolt frees the bucket's pages rather than deleting records one by
// one, so the cost grows with the pages of the bucket, not with a per-record write.
func (b *Bolt) Retire(ctx context.Context, keyID string) error {
	if !ValidKeyID(keyID) {
		return fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var refused error
	err := b.db.Update(func(tx *bolt.Tx) error {
		now := time.Now()
		k, err := b.keyState(tx, keyID, now)
		if err != nil {
			return err
		}
		if refused = k.retirable(now); refused != nil {
			return refused
		}
		prepared := k.preparedAt
		if !k.registered {
			prepared = now
		}
		if err := tx.Bucket(boltMetaBucket).Bucket(boltKeysBucket).Put([]byte(keyID), encodeKeyRecord(prepared, now)); err != nil {
			return err
		}
		if k.hasStorage {
			return tx.DeleteBucket([]byte(keyID))
		}
		return nil
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: bolt: retire key %s: %w", keyID, err)
	}
	return err
}

// Count implements Store. It walks the bucket: for operators and tests.
func (b *Bolt) Count(ctx context.Context, keyID string) (int64, error) {
	if !ValidKeyID(keyID) {
		return 0, fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(keyID))
		if bk == nil {
			return fmt.Errorf("spend: key %s: %w", keyID, ErrUnknownKey)
		}
		n = int64(bk.Stats().KeyN)
		return nil
	})
	return n, err
}

// KeyIDs implements Store.
func (b *Bolt) KeyIDs(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var ids []string
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if id := string(name); ValidKeyID(id) {
				ids = append(ids, id)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("spend: bolt: list key buckets: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// Keys implements Store.
func (b *Bolt) Keys(ctx context.Context) ([]KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var states []keyState
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		states, err = b.keyStates(tx, time.Now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("spend: bolt: list keys: %w", err)
	}
	return keyInfos(states), nil
}

// keyStates returns the state of every key in the registry or with a bucket, sorted.
func (b *Bolt) keyStates(tx *bolt.Tx, now time.Time) ([]keyState, error) {
	var ids []string
	err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if ValidKeyID(string(name)) {
			ids = append(ids, string(name))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(boltMetaBucket).Bucket(boltKeysBucket).ForEach(func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	states := make([]keyState, 0, len(ids))
	for _, id := range ids {
		k, err := b.keyState(tx, id, now)
		if err != nil {
			return nil, err
		}
		states = append(states, k)
	}
	return states, nil
}
