package spend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PrepareKeys implements Store: in one transaction under the DDL advisory lock (so that
// processes preparing, holding or retiring keys take turns), it decides each key from the
// registry and the partitions (keyState.prepare), creates the missing partitions and
// registers the new keys. A refused key leaves everything unchanged. Duplicate table errors
// (a concurrent CREATE by a process not using the lock) are retried: the next attempt finds
// the partition.
func (p *Postgres) PrepareKeys(ctx context.Context, keyIDs []string) error {
	ids, err := checkKeyIDs(keyIDs)
	if err != nil || len(ids) == 0 {
		return err
	}
	var refused error
	err = p.ddl(ctx, func(tx pgx.Tx) error {
		states, err := queryKeyStates(ctx, tx, ids)
		if err != nil {
			return err
		}
		var errs []error
		var create, register []string
		for _, k := range states {
			c, r, err := k.prepare(pgTerms)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if c {
				create = append(create, k.id)
			}
			if r {
				register = append(register, k.id)
			}
		}
		if refused = errors.Join(errs...); refused != nil {
			return refused
		}
		for _, id := range create {
			// id is validated hex, so the literal cannot be broken out of.
			q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF spent_tokens FOR VALUES IN ('%s')",
				partitionName(id), id)
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		if len(register) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO spend_keys (key_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, register); err != nil {
				return err
			}
		}
		// A table of the right name that is not attached (made by hand?) would make
		// IF NOT EXISTS succeed without a partition: check.
		have, err := queryKeyIDs(ctx, tx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if !slices.Contains(have, id) {
				return fmt.Errorf("spend: table %s exists but is not a partition of spent_tokens", partitionPrefix+id)
			}
		}
		return nil
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: prepare key partitions: %w", err)
	}
	return err
}

// Hold implements Store, under the DDL advisory lock like Retire: a retire either sees the
// hold and refuses, or commits first and the hold is refused. Expiry is counted by the
// database's clock, so the servers' clocks do not matter.
func (p *Postgres) Hold(ctx context.Context, holder string, keyIDs []string, ttl time.Duration) error {
	ids, err := checkHoldArgs(holder, keyIDs, ttl)
	if err != nil {
		return err
	}
	var refused error
	err = p.ddl(ctx, func(tx pgx.Tx) error {
		states, err := queryKeyStates(ctx, tx, ids)
		if err != nil {
			return err
		}
		var errs []error
		for _, k := range states {
			if err := k.holdable(pgTerms); err != nil {
				errs = append(errs, err)
			}
		}
		if refused = errors.Join(errs...); refused != nil {
			return refused
		}
		_, err = tx.Exec(ctx, `DELETE FROM spend_key_holders
			WHERE expires_at <= now() OR (holder_id = $1 AND NOT key_id = ANY($2::text[]))`, holder, ids)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO spend_key_holders (key_id, holder_id, expires_at)
			SELECT k, $1, now() + $3::bigint * interval '1 millisecond' FROM unnest($2::text[]) AS k
			ON CONFLICT (key_id, holder_id) DO UPDATE SET expires_at = EXCLUDED.expires_at`, holder, ids, ttl.Milliseconds())
		return err
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: hold keys: %w", mapUndefinedTable(err))
	}
	return err
}

// Release implements Store.
func (p *Postgres) Release(ctx context.Context, holder string) error {
	if err := validHolder(holder); err != nil {
		return err
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "DELETE FROM spend_key_holders WHERE holder_id = $1", holder); err != nil {
		return fmt.Errorf("spend: release holds: %w", mapUndefinedTable(err))
	}
	return nil
}

// Retire implements Store: under the DDL advisory lock, it checks the key (keyState.retirable:
// known, not retired, no live hold), marks it retired in the registry, then DETACH PARTITION
// and DROP TABLE, in one transaction, so the key's records vanish at once whatever their
// number. DETACH (not CONCURRENTLY, which cannot run in a transaction) briefly takes an
// ACCESS EXCLUSIVE lock on spent_tokens: spends of all keys wait for it; lock_timeout bounds
// that wait.
func (p *Postgres) Retire(ctx context.Context, keyID string) error {
	if !ValidKeyID(keyID) {
		return fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	var refused error
	err := p.ddl(ctx, func(tx pgx.Tx) error {
		var now time.Time
		if err := tx.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
			return err
		}
		states, err := queryKeyStates(ctx, tx, []string{keyID})
		if err != nil {
			return err
		}
		if refused = states[0].retirable(now); refused != nil {
			return refused
		}
		_, err = tx.Exec(ctx, `INSERT INTO spend_keys (key_id, retired_at) VALUES ($1, now())
			ON CONFLICT (key_id) DO UPDATE SET retired_at = now()`, keyID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM spend_key_holders WHERE key_id = $1", keyID); err != nil {
			return err
		}
		if !states[0].hasStorage {
			return nil
		}
		name := partitionName(keyID)
		if _, err := tx.Exec(ctx, "ALTER TABLE spent_tokens DETACH PARTITION "+name); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DROP TABLE "+name)
		return err
	})
	if err != nil && refused == nil {
		return fmt.Errorf("spend: retire key %s: %w", keyID, mapUndefinedTable(err))
	}
	return err
}

// queryKeyStates returns the state of each of ids (all keys the store knows when ids is nil),
// sorted by ID: registry row, partition, live holds (by the database's clock).
func queryKeyStates(ctx context.Context, q querier, ids []string) ([]keyState, error) {
	parts, err := queryKeyIDs(ctx, q)
	if err != nil {
		return nil, err
	}
	byID := map[string]*keyState{}
	state := func(id string) *keyState {
		k := byID[id]
		if k == nil {
			k = &keyState{id: id}
			byID[id] = k
		}
		return k
	}
	for _, id := range ids {
		state(id)
	}
	for _, id := range parts {
		if ids == nil || byID[id] != nil {
			state(id).hasStorage = true
		}
	}
	rows, err := q.Query(ctx, `SELECT key_id, prepared_at, retired_at FROM spend_keys
		WHERE $1::text[] IS NULL OR key_id = ANY($1::text[])`, ids)
	if err != nil {
		return nil, mapUndefinedTable(err)
	}
	var (
		id       string
		prepared time.Time
		retired  *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &prepared, &retired}, func() error {
		k := state(id)
		k.registered, k.preparedAt = true, prepared.UTC()
		if retired != nil {
			k.retiredAt = retired.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, mapUndefinedTable(err)
	}
	rows, err = q.Query(ctx, `SELECT key_id, holder_id, expires_at FROM spend_key_holders
		WHERE expires_at > now() AND ($1::text[] IS NULL OR key_id = ANY($1::text[]))
		ORDER BY key_id, holder_id`, ids)
	if err != nil {
		return nil, mapUndefinedTable(err)
	}
	var holder string
	var expires time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &holder, &expires}, func() error {
		k := state(id)
		k.holds = append(k.holds, HoldInfo{Holder: holder, Expires: expires.UTC()})
		return nil
	})
	if err != nil {
		return nil, mapUndefinedTable(err)
	}
	out := make([]keyState, 0, len(byID))
	for _, k := range byID {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b keyState) int { return strings.Compare(a.id, b.id) })
	return out, nil
}

// Keys implements Store.
func (p *Postgres) Keys(ctx context.Context) ([]KeyInfo, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	states, err := queryKeyStates(ctx, conn, nil)
	if err != nil {
		return nil, fmt.Errorf("spend: list keys: %w", err)
	}
	return keyInfos(states), nil
}

// Identity implements Store: the row `ppredeem migrate up` made (migrations/00002). A
// database with the schema but without the row gives ErrNoStore.
func (p *Postgres) Identity(ctx context.Context) (Identity, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return Identity{}, err
	}
	defer conn.Release()
	return queryIdentity(ctx, conn)
}

func queryIdentity(ctx context.Context, conn *pgxpool.Conn) (Identity, error) {
	var id Identity
	err := conn.QueryRow(ctx, "SELECT store_id::text, created_at FROM spend_store").Scan(&id.ID, &id.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Identity{}, newError(ErrNoStore, "spend: the database has the ppredeem schema but no store identity "+
			"(table spend_store is empty): it was not created by `ppredeem migrate up`, or the row was deleted; "+
			"restore the database from a backup")
	}
	if err != nil {
		return Identity{}, fmt.Errorf("spend: read store identity: %w", mapUndefinedTable(err))
	}
	id.CreatedAt = id.CreatedAt.UTC()
	return id, nil
}

// Check implements Store: the schema version, the store identity, the registry against the
// partitions (keyState rules), and tables named like a partition that are not attached.
func (p *Postgres) Check(ctx context.Context) error {
	var problems []error
	if err := p.CheckSchema(ctx); err != nil {
		if errors.Is(err, ErrSchemaBehind) || errors.Is(err, ErrNoStore) {
			return err
		}
		problems = append(problems, err)
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	states, err := queryKeyStates(ctx, conn, nil)
	if err != nil {
		return fmt.Errorf("spend: check: %w", err)
	}
	problems = append(problems, checkRegistry(states, pgTerms)...)
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_catalog.pg_class c
		WHERE c.relkind IN ('r', 'p') AND c.relname LIKE 'spent\_tokens\_%'
		  AND c.relnamespace = (SELECT relnamespace FROM pg_catalog.pg_class WHERE oid = 'spent_tokens'::regclass)
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid)
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("spend: check: %w", err)
	}
	stray, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("spend: check: %w", err)
	}
	for _, name := range stray {
		problems = append(problems, newError(ErrStoreDamaged, "table %s is named like a partition but is not attached to spent_tokens: "+
			"spends under its key fail; attach it or drop it", name))
	}
	return checkResult("PostgreSQL store", problems)
}
