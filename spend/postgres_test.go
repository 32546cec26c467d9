package spend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ppredeem/ppredeem/migrations"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/spend/pgtest"
)

func openPostgres(t testing.TB, cfg spend.PostgresConfig) *spend.Postgres {
	t.Helper()
	p, err := spend.OpenPostgres(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func postgresStorage(t *testing.T) kit {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	return kit{
		open: func(t *testing.T) spend.Store { return openPostgres(t, spend.PostgresConfig{DSN: dsn}) },
		loseKey: func(t *testing.T, keyID string) {
			execSQL(t, dsn, "DROP TABLE spent_tokens_"+keyID)
		},
	}
}

// execSQL runs statements on a connection of its own, as an operator's psql would.
func execSQL(t *testing.T, dsn string, sql ...string) {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestPostgresConformance(t *testing.T) {
	runConformance(t, postgresStorage)
}

// TestPostgresPrepareKeysTwoPools prepares the same keys from two pools at once, as two
// server processes starting together would.
func TestPostgresPrepareKeysTwoPools(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	for round := range 5 {
		a := openPostgres(t, spend.PostgresConfig{DSN: dsn})
		b := openPostgres(t, spend.PostgresConfig{DSN: dsn})
		ids := []string{fmt.Sprintf("%016x", round), fmt.Sprintf("%016x", round+100), keyA}
		errs := spendAll(4, func(i int) error {
			if i%2 == 0 {
				return a.PrepareKeys(ctx, ids)
			}
			return b.PrepareKeys(ctx, ids)
		})
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: concurrent PrepareKeys: %v", round, err)
			}
		}
	}
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})
	ids, err := p.KeyIDs(ctx)
	if err != nil || len(ids) != 11 {
		t.Fatalf("KeyIDs = %v, %v; want 11 keys", ids, err)
	}
}

// TestPostgresPrepareKeysNotAPartition: a stray table with a partition's name must not make
// PrepareKeys report success for a key that has no partition.
func TestPostgresPrepareKeysNotAPartition(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE spent_tokens_"+keyA+" (x int)"); err != nil {
		t.Fatal(err)
	}
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})
	if err := p.PrepareKeys(ctx, []string{keyA}); err == nil {
		t.Fatal("PrepareKeys succeeded although spent_tokens_<key> is not a partition")
	}
	wantSpend(t, p, keyA, randToken(t), spend.ErrUnknownKey)
	if err := p.Check(ctx); !errors.Is(err, spend.ErrStoreDamaged) || !strings.Contains(err.Error(), "spent_tokens_"+keyA+" is named like a partition") {
		t.Fatalf("Check with a stray table = %v", err)
	}
}

func TestMigrations(t *testing.T) {
	dsn := pgtest.NewDatabase(t, t.Name())
	ctx := ctxT(t)
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})

	// Unmigrated: the server must refuse to start, and nothing can be spent.
	if err := p.CheckSchema(ctx); !errors.Is(err, spend.ErrSchemaBehind) {
		t.Fatalf("CheckSchema before migrating = %v, want ErrSchemaBehind", err)
	}
	if err := p.PrepareKeys(ctx, []string{keyA}); !errors.Is(err, spend.ErrSchemaBehind) {
		t.Fatalf("PrepareKeys before migrating = %v, want ErrSchemaBehind", err)
	}
	if err := p.Spend(ctx, keyA, randToken(t)); err == nil || errors.Is(err, spend.ErrAlreadySpent) {
		t.Fatalf("Spend before migrating = %v, want an internal error", err)
	}
	if err := p.Check(ctx); !errors.Is(err, spend.ErrSchemaBehind) {
		t.Fatalf("Check before migrating = %v, want ErrSchemaBehind", err)
	}
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	latest := len(names) // migrations_test checks they are numbered 1..n without gaps
	status := migrateStatus(t, dsn)
	for _, want := range []string{"pending", "00001_spent_tokens.sql", "00003_key_registry.sql", fmt.Sprintf("current version: 0 (latest: %d)", latest)} {
		if !strings.Contains(status, want) {
			t.Fatalf("status before migrating lacks %q:\n%s", want, status)
		}
	}

	// Up twice: the second is a no-op.
	for range 2 {
		if err := spend.MigrateUp(ctx, dsn); err != nil {
			t.Fatalf("MigrateUp: %v", err)
		}
	}
	if err := p.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema after MigrateUp: %v", err)
	}
	status = migrateStatus(t, dsn)
	for _, want := range []string{"applied", "00002_store_identity.sql", fmt.Sprintf("current version: %[1]d (latest: %[1]d)", latest)} {
		if !strings.Contains(status, want) {
			t.Fatalf("status after MigrateUp lacks %q:\n%s", want, status)
		}
	}
	prepare(t, p, keyA)
	wantSpend(t, p, keyA, randToken(t), nil)

	// Down refuses once a key is registered: forgetting the registry (and the spends) would
	// make tokens redeemable again. The migrations above the registry (00003) hold nothing
	// yet and roll back first.
	for range latest - 3 {
		if err := spend.MigrateDown(ctx, dsn); err != nil {
			t.Fatalf("MigrateDown above the key registry: %v", err)
		}
	}
	if err := spend.MigrateDown(ctx, dsn); err == nil || !strings.Contains(err.Error(), "redeemable again") {
		t.Fatalf("MigrateDown with a key registered = %v, want a refusal", err)
	}
	if err := spend.MigrateUp(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema after a refused MigrateDown: %v", err)
	}

	// A store that never held a key rolls back step by step; up again makes a new store.
	dsn = pgtest.NewMigratedDatabase(t, t.Name())
	p = openPostgres(t, spend.PostgresConfig{DSN: dsn})
	first, err := p.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range latest {
		if err := spend.MigrateDown(ctx, dsn); err != nil {
			t.Fatalf("MigrateDown: %v", err)
		}
		if err := p.CheckSchema(ctx); !errors.Is(err, spend.ErrSchemaBehind) {
			t.Fatalf("CheckSchema after MigrateDown = %v, want ErrSchemaBehind", err)
		}
	}
	if err := spend.MigrateDown(ctx, dsn); err == nil {
		t.Fatal("MigrateDown with nothing applied succeeded")
	}
	if err := spend.MigrateUp(ctx, dsn); err != nil {
		t.Fatalf("MigrateUp after down: %v", err)
	}
	if err := p.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema after down+up: %v", err)
	}
	if second, err := p.Identity(ctx); err != nil || second.ID == first.ID {
		t.Fatalf("Identity after down+up = %+v, %v; want a new store, not %s", second, err, first.ID)
	}
	if ids, err := p.KeyIDs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("KeyIDs after down+up = %v, %v; want none", ids, err)
	}

	// The first migration's down refuses while spends are recorded.
	dsn = pgtest.NewDatabase(t, t.Name())
	if err := spend.MigrateUpTo(ctx, dsn, 1); err != nil {
		t.Fatal(err)
	}
	execSQL(t, dsn, "CREATE TABLE spent_tokens_"+keyA+" PARTITION OF spent_tokens FOR VALUES IN ('"+keyA+"')",
		"INSERT INTO spent_tokens (key_id, token) VALUES ('"+keyA+"', '\\x01')")
	if err := spend.MigrateDown(ctx, dsn); err == nil || !strings.Contains(err.Error(), "redeemable again") {
		t.Fatalf("MigrateDown of version 1 with a spend recorded = %v, want a refusal", err)
	}
}

// TestMigrationRegistersExistingPartitions: a database migrated and used before the key
// registry existed gets its keys registered by migrate up, so that a partition lost later
// is refused rather than created again empty.
func TestMigrationRegistersExistingPartitions(t *testing.T) {
	dsn := pgtest.NewDatabase(t, t.Name())
	ctx := ctxT(t)
	if err := spend.MigrateUpTo(ctx, dsn, 1); err != nil {
		t.Fatal(err)
	}
	// What a server of the previous version left: a partition per key, with spends.
	for _, key := range []string{keyA, keyB} {
		execSQL(t, dsn, "CREATE TABLE spent_tokens_"+key+" PARTITION OF spent_tokens FOR VALUES IN ('"+key+"')",
			"INSERT INTO spent_tokens (key_id, token) VALUES ('"+key+"', '\\x01')")
	}
	before := time.Now().Add(-time.Minute)
	if err := spend.MigrateUp(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})
	if err := p.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}
	infos, err := p.Keys(ctx)
	if err != nil || len(infos) != 2 || infos[0].ID != keyA || infos[1].ID != keyB ||
		infos[0].PreparedAt.Before(before) || !infos[1].HasStorage {
		t.Fatalf("Keys after migrating = %+v, %v; want both keys registered", infos, err)
	}
	wantSpend(t, p, keyA, []byte{1}, spend.ErrAlreadySpent)
	prepare(t, p, keyA, keyB)
	if err := p.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	execSQL(t, dsn, "DROP TABLE spent_tokens_"+keyB)
	if err := p.PrepareKeys(ctx, []string{keyB}); !errors.Is(err, spend.ErrKeyStorageLost) ||
		!strings.Contains(err.Error(), "partition spent_tokens_"+keyB+" is gone") || !strings.Contains(err.Error(), "ATTACH PARTITION") {
		t.Fatalf("PrepareKeys after losing a partition = %v, want ErrKeyStorageLost naming the partition and how to restore it", err)
	}
	if ids, err := p.KeyIDs(ctx); err != nil || len(ids) != 1 {
		t.Fatalf("KeyIDs = %v, %v: the lost partition was recreated", ids, err)
	}
}

// TestPartitionFromOlderBinary: a partition created by a binary that does not know the
// registry (during a rolling upgrade) is registered by the next PrepareKeys; Check reports
// it until then.
func TestPartitionFromOlderBinary(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	execSQL(t, dsn, "CREATE TABLE spent_tokens_"+keyA+" PARTITION OF spent_tokens FOR VALUES IN ('"+keyA+"')",
		"INSERT INTO spent_tokens (key_id, token) VALUES ('"+keyA+"', '\\x01')")
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})
	if err := p.Check(ctx); !errors.Is(err, spend.ErrStoreDamaged) || !strings.Contains(err.Error(), "not in the key registry") {
		t.Fatalf("Check with an unregistered partition = %v", err)
	}
	prepare(t, p, keyA)
	wantSpend(t, p, keyA, []byte{1}, spend.ErrAlreadySpent)
	if err := p.Check(ctx); err != nil {
		t.Fatalf("Check after PrepareKeys registered it: %v", err)
	}
}

// TestPostgresIdentityMissing: a database with the schema but not the identity migrate up
// made is refused at start, with the reason.
func TestPostgresIdentityMissing(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	execSQL(t, dsn, "DELETE FROM spend_store")
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})
	for name, f := range map[string]func() error{
		"CheckSchema": func() error { return p.CheckSchema(ctx) },
		"Check":       func() error { return p.Check(ctx) },
		"Identity":    func() error { _, err := p.Identity(ctx); return err },
	} {
		if err := f(); !errors.Is(err, spend.ErrNoStore) || !strings.Contains(err.Error(), "migrate up") {
			t.Fatalf("%s without an identity = %v, want ErrNoStore", name, err)
		}
	}
}

func migrateStatus(t *testing.T, dsn string) string {
	t.Helper()
	var b bytes.Buffer
	if err := spend.MigrateStatus(ctxT(t), dsn, &b); err != nil {
		t.Fatalf("MigrateStatus: %v", err)
	}
	return b.String()
}

// TestMigrateConcurrently runs MigrateUp from several goroutines, each with its own
// connection pool, on a fresh database: the advisory lock makes them take turns.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.NewDatabase(t, t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := spendAll(4, func(int) error { return spend.MigrateUp(ctx, dsn) })
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent MigrateUp: %v", err)
		}
	}
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})
	if err := p.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema: %v", err)
	}
}

func TestMigrateBadDSN(t *testing.T) {
	ctx := ctxT(t)
	const secret = "hunter2-secret"
	err := spend.MigrateUp(ctx, "postgres://u:"+secret+"@127.0.0.1:5432/x?sslmode=bogus")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("MigrateUp(bad DSN) = %v: want an error without the password", err)
	}
	if _, err := spend.OpenPostgres(ctx, spend.PostgresConfig{DSN: "postgres://u:" + secret + "@h/x?sslmode=bogus"}); err == nil ||
		strings.Contains(err.Error(), secret) {
		t.Fatalf("OpenPostgres(bad DSN) = %v: want an error without the password", err)
	}
}

// TestPostgresDown: against a port where nothing listens, every operation fails within a few
// seconds; Open itself succeeds (the pool connects lazily).
func TestPostgresDown(t *testing.T) {
	p := openPostgres(t, spend.PostgresConfig{
		DSN: "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable",
	})
	ctx := context.Background()
	for name, op := range map[string]func() error{
		"Spend":       func() error { return p.Spend(ctx, keyA, randToken(t)) },
		"Ping":        func() error { return p.Ping(ctx) },
		"PrepareKeys": func() error { return p.PrepareKeys(ctx, []string{keyA}) },
		"CheckSchema": func() error { return p.CheckSchema(ctx) },
	} {
		start := time.Now()
		err := op()
		if err == nil || errors.Is(err, spend.ErrAlreadySpent) {
			t.Fatalf("%s with the database down = %v, want an internal error", name, err)
		}
		if d := time.Since(start); d > 6*time.Second {
			t.Fatalf("%s took %v with the database down", name, d)
		}
	}
	// Concurrent spends all fail, and fast.
	start := time.Now()
	errs := spendAll(64, func(int) error { return p.Spend(ctx, keyA, randToken(t)) })
	for _, err := range errs {
		if err == nil || errors.Is(err, spend.ErrAlreadySpent) {
			t.Fatalf("Spend with the database down = %v", err)
		}
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("64 spends took %v with the database down", d)
	}
}

// TestPostgresUnresponsive: a server that accepts connections but never answers (a hung host,
// a black-holed network) makes spends fail within the timeouts, not hang.
func TestPostgresUnresponsive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	p := openPostgres(t, spend.PostgresConfig{
		DSN:            "postgres://postgres@" + ln.Addr().String() + "/postgres?sslmode=disable",
		AcquireTimeout: time.Second,
	})
	ctx := context.Background()
	start := time.Now()
	errs := spendAll(64, func(int) error { return p.Spend(ctx, keyA, randToken(t)) })
	for _, err := range errs {
		if err == nil || errors.Is(err, spend.ErrAlreadySpent) {
			t.Fatalf("Spend against an unresponsive server = %v", err)
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("64 spends against an unresponsive server took %v (AcquireTimeout 1s)", d)
	}
	if err := p.Ping(ctx); err == nil {
		t.Fatal("Ping against an unresponsive server succeeded")
	}
}

// TestPostgresRecoversAfterTerminatedBackends kills every connection of the store from
// another session: the next spends may fail, but spends succeed again within a few seconds
// without reopening the store, and nothing already spent becomes spendable.
func TestPostgresRecoversAfterTerminatedBackends(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn, MaxConns: 8})
	prepare(t, p, keyA)
	spent := make([][]byte, 0, 64)
	for range 64 {
		tok := randToken(t)
		spent = append(spent, tok)
	}
	errs := spendAll(64, func(i int) error { return p.Spend(ctx, keyA, spent[i]) })
	for _, err := range errs {
		if err != nil {
			t.Fatalf("warm-up Spend: %v", err)
		}
	}

	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t`).Scan(&killed)
	if err != nil || killed == 0 {
		t.Fatalf("terminate backends: %d, %v", killed, err)
	}

	// Keep spending fresh tokens concurrently until a round fully succeeds.
	start := time.Now()
	for {
		errs := spendAll(16, func(int) error { return p.Spend(ctx, keyA, randToken(t)) })
		ok, spentErrs, other := tally(errs)
		if spentErrs != 0 {
			t.Fatalf("a fresh token was reported already spent after the outage")
		}
		if ok == len(errs) {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("spends still failing %v after terminating backends: %v", time.Since(start), other[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("recovered after %v", time.Since(start))
	for _, tok := range spent {
		wantSpend(t, p, keyA, tok, spend.ErrAlreadySpent)
	}
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
	if s := p.Stats(); s.MaxConns != 8 || s.TotalConns > 8 || s.AcquireCount == 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

// TestPostgresSpendTimeout: a spend blocked behind a lock returns an error (outcome unknown)
// after SpendTimeout, never success, and the store keeps serving other keys afterwards.
func TestPostgresSpendTimeout(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn, SpendTimeout: 500 * time.Millisecond})
	prepare(t, p, keyA, keyB)

	// Hold the key's partition locked in another session.
	blocker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE spent_tokens_"+keyA+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	tok := randToken(t)
	start := time.Now()
	err = p.Spend(ctx, keyA, tok)
	if err == nil || errors.Is(err, spend.ErrAlreadySpent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Spend behind a lock = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Spend behind a lock took %v, SpendTimeout is 500ms", d)
	}
	// The store cancels the statement on the server; wait until nothing waits on the lock.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var waiting int
		err := blocker.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the timed-out INSERT is still waiting on the server: it was not cancelled")
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wantSpend(t, p, keyB, randToken(t), nil)
	// The timed-out statement was cancelled before it could insert, so the token is fresh.
	// (In general a timed-out spend's outcome is unknown; here the lock makes it certain.)
	wantSpend(t, p, keyA, tok, nil)
}

// TestPostgresReadyUnderTableLock: a lock on spent_tokens held by another session for
// longer than the spend timeout makes the store unready, both with no traffic (the write
// probe waits for the lock and gives up) and with traffic (the spends time out); the first
// spend that succeeds after the lock is gone makes it ready again, without a probe.
func TestPostgresReadyUnderTableLock(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn, SpendTimeout: 300 * time.Millisecond})
	prepare(t, p, keyA)
	if err := p.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	blocker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close(ctx)
	tx, err := blocker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE spent_tokens IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	// No traffic: once the last good answer is older than ReadyCacheFor, a probe runs and
	// meets the lock.
	var readyErr error
	waitFor(t, 10*time.Second, "Ready to fail under the lock", func() bool {
		readyErr = p.Ready(ctx)
		return readyErr != nil
	})
	if !strings.Contains(readyErr.Error(), "refuses writes") || !strings.Contains(readyErr.Error(), "lock timeout") {
		t.Fatalf("Ready under the lock = %v, want the probe's lock timeout", readyErr)
	}
	t.Logf("Ready under the lock: %v", readyErr)
	// Traffic: the spend times out, and Ready says so at once.
	if err := p.Spend(ctx, keyA, randToken(t)); err == nil || errors.Is(err, spend.ErrAlreadySpent) {
		t.Fatalf("Spend under the lock = %v, want an error", err)
	}
	if err := p.Ready(ctx); err == nil || !strings.Contains(err.Error(), "spends are failing") {
		t.Fatalf("Ready after a failed spend = %v, want the spend's failure", err)
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wantSpend(t, p, keyA, randToken(t), nil)
	probes := spend.ReadyProbes(p)
	if err := p.Ready(ctx); err != nil || spend.ReadyProbes(p) != probes {
		t.Fatalf("Ready after a successful spend = %v (probes %d → %d), want ready without a probe", err, probes, spend.ReadyProbes(p))
	}
}

// TestPostgresReadyReadOnly: a database that takes no writes (a standby, or
// default_transaction_read_only) is not ready, though it answers.
func TestPostgresReadyReadOnly(t *testing.T) {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	ctx := ctxT(t)
	execSQL(t, dsn, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$")
	p := openPostgres(t, spend.PostgresConfig{DSN: dsn})
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := p.Ready(ctx); err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Fatalf("Ready on a read-only database = %v, want the write probe's failure", err)
	}
}

// TestPostgresReadyWhileDown: with the database down, a flood of Ready calls makes at most
// one probe (one connect) per ReadyCacheFor, and every call fails.
func TestPostgresReadyWhileDown(t *testing.T) {
	// A server that accepts connections and closes them at once, counting them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	p := openPostgres(t, spend.PostgresConfig{
		DSN:            "postgres://postgres@" + ln.Addr().String() + "/postgres?sslmode=disable",
		AcquireTimeout: time.Second,
	})
	ctx := context.Background()
	start := time.Now()
	var calls atomic.Int64
	errs := spendAll(50, func(int) error {
		for time.Since(start) < 2500*time.Millisecond {
			calls.Add(1)
			if err := p.Ready(ctx); err == nil {
				return errors.New("Ready succeeded with the database down")
			}
		}
		return nil
	})
	elapsed := time.Since(start)
	if _, _, other := tally(errs); len(other) != 0 {
		t.Fatal(other[0])
	}
	// pgx may make two connection attempts for one connect (it did here: 2 per probe).
	most := 2 + int(elapsed/spend.ReadyCacheFor)
	if probes, n := spend.ReadyProbes(p), accepted.Load(); probes > most || n == 0 || n > 2*int64(probes) {
		t.Fatalf("%d probes, %d connection attempts for %d Ready calls in %v; want at most %d probes, 2 attempts each",
			probes, n, calls.Load(), elapsed, most)
	}
	t.Logf("%d Ready calls in %v: %d probes, %d connection attempts", calls.Load(), elapsed, spend.ReadyProbes(p), accepted.Load())
}
