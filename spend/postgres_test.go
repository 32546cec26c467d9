package spend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

func postgresStorage(t *testing.T) func(t *testing.T) spend.Store {
	dsn := pgtest.NewMigratedDatabase(t, t.Name())
	return func(t *testing.T) spend.Store {
		return openPostgres(t, spend.PostgresConfig{DSN: dsn})
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
	status := migrateStatus(t, dsn)
	for _, want := range []string{"pending", "00001_spent_tokens.sql", "current version: 0 (latest: 1)"} {
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
	for _, want := range []string{"applied", "00001_spent_tokens.sql", "current version: 1 (latest: 1)"} {
		if !strings.Contains(status, want) {
			t.Fatalf("status after MigrateUp lacks %q:\n%s", want, status)
		}
	}
	prepare(t, p, keyA)
	wantSpend(t, p, keyA, randToken(t), nil)

	// Down refuses while spends are recorded: they would become redeemable
	// again. Once the key is retired it drops the table, and up recreates it.
	if err := spend.MigrateDown(ctx, dsn); err == nil || !strings.Contains(err.Error(), "redeemable again") {
		t.Fatalf("MigrateDown with a spend recorded = %v, want a refusal", err)
	}
	if err := p.CheckSchema(ctx); err != nil {
		t.Fatalf("CheckSchema after a refused MigrateDown: %v", err)
	}
	if err := p.Retire(ctx, keyA); err != nil {
		t.Fatal(err)
	}
	if err := spend.MigrateDown(ctx, dsn); err != nil {
		t.Fatalf("MigrateDown: %v", err)
	}
	if err := p.CheckSchema(ctx); !errors.Is(err, spend.ErrSchemaBehind) {
		t.Fatalf("CheckSchema after MigrateDown = %v, want ErrSchemaBehind", err)
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
	if ids, err := p.KeyIDs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("KeyIDs after down+up = %v, %v; want none", ids, err)
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
