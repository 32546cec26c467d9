package spend

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresConfig configures OpenPostgres. Zero values select the defaults.
type PostgresConfig struct {
	DSN            string        // libpq URL or keyword/value string
	MaxConns       int32         // 0 → the DSN's pool_max_conns, else 16
	SpendTimeout   time.Duration // 0 → 5s: each spend's own deadline, independent of the caller
	BatchMax       int           // 0 → 256: most tokens in one INSERT
	AcquireTimeout time.Duration // 0 → 2s: connecting / acquiring a connection fails after this
	// FlushWorkers is the number of flush workers, each holding one connection while it
	// writes (0 → automatic: flushWorkerCount).
	FlushWorkers int
	// OnBatch, if set, is told the number of spends in each batch a flush worker takes (metrics).
	OnBatch func(size int)
}

const (
	defaultPGMaxConns        = 16
	defaultSpendTimeout      = 5 * time.Second
	defaultPGBatchMax        = 256
	defaultAcquireTimeout    = 2 * time.Second
	maxPGFlushWorkers        = 4
	ddlLockTimeout           = "3s" // SET LOCAL lock_timeout for partition DDL
	partitionPrefix          = "spent_tokens_"
	pgHealthCheckPeriod      = 10 * time.Second
	sqlstateCheckViolation   = "23514" // "no partition of relation ... found for row"
	sqlstateUniqueViolation  = "23505" // concurrent CREATE TABLE racing on pg_type
	sqlstateDuplicateTable   = "42P07"
	sqlstateUndefinedTable   = "42P01"
	sqlstateLockNotAvailable = "55P03" // lock_timeout
	ddlAttempts              = 5
)

// ddlLockKey is the transaction advisory lock that serialises this package's partition DDL
// (PrepareKeys, Retire) across processes: the first 8 bytes of SHA-256("ppredeem spent_tokens ddl").
const ddlLockKey int64 = 0x083ddcf9c23041f0

// flushWorkerCount is the number of PostgreSQL flush workers: one per CPU (GOMAXPROCS), at
// most maxPGFlushWorkers, and at most half the pool so that PrepareKeys, Count and Ping still
// get connections (each worker holds one connection while it writes). More workers overlap
// more commits but split the queue into smaller batches, and on a small box the database is
// CPU-bound, where bigger batches win: on 2 cores with 64 concurrent spenders, 2 workers gave
// about 25,000 spends/s, 4 about 23,000 and 8 about 18,000 (bench_test.go).
func flushWorkerCount(maxConns int32) int {
	return max(1, min(runtime.GOMAXPROCS(0), maxPGFlushWorkers, int(maxConns/2)))
}

// insertSQL records a batch of one key's tokens. It is a single autocommit statement: it
// returns only after its transaction committed (with synchronous_commit as configured on the
// server), and the primary key decides each token: RETURNING lists exactly the rows this
// statement inserted; a token left out was already there. A key without a partition fails the
// whole statement with SQLSTATE 23514 and records nothing.
// ON CONFLICT: https://www.postgresql.org/docs/15/sql-insert.html#SQL-ON-CONFLICT
const insertSQL = `INSERT INTO spent_tokens (key_id, token)
SELECT $1, t FROM unnest($2::bytea[]) AS t
ON CONFLICT DO NOTHING
RETURNING token`

// partitionsSQL lists the attached partitions of spent_tokens.
const partitionsSQL = `SELECT c.relname FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'spent_tokens'::regclass`

// Postgres is the PostgreSQL store: one partition of spent_tokens per key, the key registry
// (spend_keys, spend_key_holders) and the store's identity (spend_store).
type Postgres struct {
	pool           *pgxpool.Pool
	batch          *batcher
	ready          *readiness
	acquireTimeout time.Duration
	spendTimeout   time.Duration
	relayOnce      sync.Once
	relays         *relayBatcher // relay redemptions (relaybatch.go), started on first use
}

// pgTerms names a key's storage in PostgreSQL's terms, for messages.
var pgTerms = storageTerms{
	storage: func(id string) string { return "partition " + partitionPrefix + id },
	restore: func(id string) string {
		return fmt.Sprintf("table %[1]s%[2]s and attach it (ALTER TABLE spent_tokens ATTACH PARTITION %[1]s%[2]s FOR VALUES IN ('%[2]s'))",
			partitionPrefix, id)
	},
}

// OpenPostgres creates the connection pool and starts the flush workers. It does not connect:
// the database may be down at open time, and the pool connects (and reconnects) on demand, so
// a server started during an outage serves as soon as the database is back. Call Ping or
// CheckSchema to find out whether it can serve. OpenPostgres never migrates.
func OpenPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	if cfg.MaxConns < 0 || cfg.SpendTimeout < 0 || cfg.BatchMax < 0 || cfg.AcquireTimeout < 0 || cfg.FlushWorkers < 0 {
		return nil, errors.New("spend: negative PostgresConfig value")
	}
	spendTimeout := cmp.Or(cfg.SpendTimeout, defaultSpendTimeout)
	batchMax := cmp.Or(cfg.BatchMax, defaultPGBatchMax)
	acquireTimeout := cmp.Or(cfg.AcquireTimeout, defaultAcquireTimeout)

	pc, dsnMaxConns, err := parsePoolDSN(cfg.DSN)
	if err != nil {
		return nil, err // ErrBadDSN: says why without quoting the DSN
	}
	switch {
	case cfg.MaxConns > 0:
		pc.MaxConns = cfg.MaxConns
	case !dsnMaxConns:
		pc.MaxConns = defaultPGMaxConns
	}
	maxConns := pc.MaxConns
	pc.MinConns = 0
	// Idle connections are pinged before use after 1s idle (pgxpool default) and checked
	// every pgHealthCheckPeriod; a connection that hit a fatal error is closed by pgconn and
	// destroyed on release, so a dead connection is never reused.
	pc.HealthCheckPeriod = pgHealthCheckPeriod
	if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > acquireTimeout {
		pc.ConnConfig.ConnectTimeout = acquireTimeout
	}
	// When a statement's deadline passes, ask the server to cancel it (instead of only
	// dropping the socket, pgx's default): a statement waiting on a lock is then rolled back
	// rather than left to commit later unseen; the connection stays usable. The socket
	// deadline still follows, for a server that does not answer.
	pc.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: acquireTimeout}
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "ppredeem"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("spend: create PostgreSQL pool: %w", err)
	}
	p := &Postgres{pool: pool, acquireTimeout: acquireTimeout, spendTimeout: spendTimeout}
	workers := cmp.Or(cfg.FlushWorkers, flushWorkerCount(maxConns))
	p.ready = newReadiness(p.probe, spendTimeout+acquireTimeout)
	p.batch = newBatcher(workers, batchMax, spendTimeout, p.write, cfg.OnBatch, p.ready.wrote)
	return p, nil
}

// Spend implements Store. ctx is not used: the spend runs under the store's SpendTimeout
// whatever happens to the caller (see the package documentation).
func (p *Postgres) Spend(_ context.Context, keyID string, token []byte) error {
	if err := checkSpend(keyID, token); err != nil {
		return err
	}
	return p.batch.spend(keyID, token)
}

// write is the batcher's writeFunc: one INSERT per key, each its own transaction, so one key's
// failure touches only that key's callers.
func (p *Postgres) write(ctx context.Context, groups []*keyGroup) {
	for _, g := range groups {
		g.fresh, g.err = p.insertGroup(ctx, g.keyID, g.tokens)
	}
}

// insertGroup inserts tokens (sorted, distinct) under keyID and reports which were fresh.
func (p *Postgres) insertGroup(ctx context.Context, keyID string, tokens [][]byte) ([]bool, error) {
	var err error
	// Retry only when pgconn guarantees nothing reached the server (for example a pooled
	// connection found broken while sending): the first attempt cannot have committed, so
	// the second one's answer is the true one. Any other failure may have committed, and a
	// retry would then report our own fresh tokens as already spent.
	for range 2 {
		var fresh []bool
		fresh, err = p.tryInsert(ctx, keyID, tokens)
		if err == nil {
			return fresh, nil
		}
		if !pgconn.SafeToRetry(err) || ctx.Err() != nil {
			break
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case sqlstateCheckViolation:
			return nil, fmt.Errorf("spend: key %s: %w", keyID, ErrUnknownKey)
		case sqlstateUndefinedTable:
			return nil, fmt.Errorf("spend: table spent_tokens missing: %w", ErrSchemaBehind)
		}
	}
	return nil, fmt.Errorf("spend: record spent tokens: %w", err)
}

func (p *Postgres) tryInsert(ctx context.Context, keyID string, tokens [][]byte) ([]bool, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := conn.Query(ctx, insertSQL, keyID, tokens)
	if err != nil {
		return nil, err
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, err
	}
	fresh := make([]bool, len(tokens))
	for _, t := range inserted {
		i, ok := slices.BinarySearchFunc(tokens, t, bytes.Compare)
		if !ok {
			return nil, errors.New("spend: database returned a token that was not inserted")
		}
		fresh[i] = true
	}
	return fresh, nil
}

// acquire gets a pooled connection, failing after acquireTimeout (or ctx's end).
func (p *Postgres) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, p.acquireTimeout)
	defer cancel()
	conn, err := p.pool.Acquire(actx)
	if err != nil {
		return nil, fmt.Errorf("spend: acquire PostgreSQL connection: %w", err)
	}
	return conn, nil
}

// partitionName is the partition of a valid key ID, as a quoted identifier.
func partitionName(keyID string) string {
	return pgx.Identifier{partitionPrefix + keyID}.Sanitize()
}

// ddl runs f in a transaction holding the DDL advisory lock (waiting for it as long as ctx
// allows), then with a lock_timeout so that DDL queued behind long spends gives up instead of
// stalling every spend queued behind it. Lock timeouts and duplicate-table races are retried.
func (p *Postgres) ddl(ctx context.Context, f func(pgx.Tx) error) error {
	var err error
	for range ddlAttempts {
		err = p.ddlOnce(ctx, f)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || ctx.Err() != nil {
			return err
		}
		switch pgErr.Code {
		case sqlstateDuplicateTable, sqlstateUniqueViolation, sqlstateLockNotAvailable:
			continue
		}
		return err
	}
	return err
}

func (p *Postgres) ddlOnce(ctx context.Context, f func(pgx.Tx) error) error {
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ddlLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+ddlLockTimeout+"'"); err != nil {
			return err
		}
		return f(tx)
	})
}

// querier is what queryKeyIDs needs from a connection or transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queryKeyIDs lists the key IDs with an attached partition, sorted.
func queryKeyIDs(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.Query(ctx, partitionsSQL)
	if err != nil {
		return nil, mapUndefinedTable(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, mapUndefinedTable(err)
	}
	ids := make([]string, 0, len(names))
	for _, n := range names {
		if id, ok := strings.CutPrefix(n, partitionPrefix); ok && ValidKeyID(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// mapUndefinedTable reports a missing spent_tokens table as ErrSchemaBehind.
func mapUndefinedTable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateUndefinedTable {
		return fmt.Errorf("spend: table spent_tokens missing: %w", ErrSchemaBehind)
	}
	return err
}

// Count implements Store. It scans the key's partition: meant for operators and tests, not
// for the request path.
func (p *Postgres) Count(ctx context.Context, keyID string) (int64, error) {
	if !ValidKeyID(keyID) {
		return 0, fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	have, err := queryKeyIDs(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("spend: count: %w", err)
	}
	if !slices.Contains(have, keyID) {
		return 0, fmt.Errorf("spend: key %s: %w", keyID, ErrUnknownKey)
	}
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM "+partitionName(keyID)).Scan(&n)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateUndefinedTable {
		return 0, fmt.Errorf("spend: key %s: %w", keyID, ErrUnknownKey) // retired meanwhile
	}
	if err != nil {
		return 0, fmt.Errorf("spend: count: %w", err)
	}
	return n, nil
}

// KeyIDs implements Store.
func (p *Postgres) KeyIDs(ctx context.Context) ([]string, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	ids, err := queryKeyIDs(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("spend: list key partitions: %w", err)
	}
	return ids, nil
}

// Ready implements Store. The write probe is one round trip: a multi-statement query, run
// as one transaction, that takes the lock an INSERT into spent_tokens needs (ROW EXCLUSIVE,
// on every partition) within the spend timeout, then writes the store's row (spend_store.
// probed_at) and commits. So a lock held by another session for longer than the spend
// timeout, a read-only database (a standby) and a database that cannot write or flush its
// log (a full disk) all make the store unready.
func (p *Postgres) Ready(ctx context.Context) error { return p.ready.ready(ctx) }

func (p *Postgres) probe(ctx context.Context) error {
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// Without arguments pgx sends the simple query protocol, which runs the statements as
	// one implicit transaction; set_config(..., true) lasts until its end.
	tag, err := conn.Exec(ctx, fmt.Sprintf(`SELECT set_config('lock_timeout', '%dms', true);
LOCK TABLE spent_tokens IN ROW EXCLUSIVE MODE;
UPDATE spend_store SET probed_at = now()`, max(1, p.spendTimeout.Milliseconds())))
	if err != nil {
		return fmt.Errorf("spend: write probe (lock spent_tokens, write spend_store): %w", mapUndefinedTable(err))
	}
	if tag.RowsAffected() != 1 {
		return newError(ErrNoStore, "spend: write probe: the store identity row (spend_store) is missing")
	}
	return nil
}

// Ping implements Store: it acquires a connection (pinging it if it was idle) and runs an
// empty query.
func (p *Postgres) Ping(ctx context.Context) error {
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("spend: ping PostgreSQL: %w", err)
	}
	return nil
}

// Close implements Store: queued spends are written first, then the pool is closed.
func (p *Postgres) Close() error {
	p.batch.close()
	p.relayOnce.Do(func() {}) // no batcher starts after Close
	if p.relays != nil {
		p.relays.close()
	}
	p.ready.close()
	p.pool.Close()
	return nil
}

// PoolStats is a snapshot of the connection pool, for metrics.
type PoolStats struct {
	AcquiredConns, IdleConns, TotalConns, MaxConns int32
	AcquireCount, EmptyAcquireCount                int64
	AcquireDuration                                time.Duration
}

// Stats returns a snapshot of the connection pool.
func (p *Postgres) Stats() PoolStats {
	s := p.pool.Stat()
	return PoolStats{
		AcquiredConns:     s.AcquiredConns(),
		IdleConns:         s.IdleConns(),
		TotalConns:        s.TotalConns(),
		MaxConns:          s.MaxConns(),
		AcquireCount:      s.AcquireCount(),
		EmptyAcquireCount: s.EmptyAcquireCount(),
		AcquireDuration:   s.AcquireDuration(),
	}
}
