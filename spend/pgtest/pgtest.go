// Package pgtest gives tests their own PostgreSQL databases on a real server.
//
// Each call creates a fresh database with a unique name and drops it when the test ends, so
// test packages (which go test runs in parallel) never share state. The server comes from
// $PPREDEEM_TEST_DATABASE_URL, as pgx takes its test server from PGX_TEST_DATABASE
// (jackc/pgx .github/workflows/ci.yml). Without a reachable server the tests are skipped,
// except in CI (CI=true), where they fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ppredeem/ppredeem/spend"
)

// EnvURL names the environment variable holding the test server's URL.
const EnvURL = "PPREDEEM_TEST_DATABASE_URL"

const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

const startHint = "start PostgreSQL (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) " +
	"or set " + EnvURL + " to a server where the user may CREATE DATABASE"

// BaseDSN returns $PPREDEEM_TEST_DATABASE_URL or "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".
func BaseDSN() string {
	if s := os.Getenv(EnvURL); s != "" {
		return s
	}
	return defaultURL
}

// NewDatabase creates a fresh empty database on the server of BaseDSN, named
// "ppredeem_test_" + a sanitized name + a random suffix, drops it (WITH (FORCE)) when the test
// ends, and returns its DSN. If the server is unreachable the test is skipped, or fails when
// $CI is "true".
func NewDatabase(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := connectOrSkip(ctx, t)
	defer admin.Close(context.Background())

	db, dsn := NewDatabaseName(t, name)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", db, err)
	}
	return dsn
}

// NewDatabaseName returns a fresh database name on the server of BaseDSN, and the DSN that
// names it, without creating the database: for tests of commands that create it themselves
// (createdb in the README). The database is dropped (WITH (FORCE)), if it exists, when the test
// ends. Without a reachable server the test is skipped, or fails when $CI is "true".
func NewDatabaseName(t testing.TB, name string) (db, dsn string) {
	t.Helper()
	base := BaseDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connectOrSkip(ctx, t).Close(context.Background())

	db = dbName(name)
	ident := pgx.Identifier{db}.Sanitize()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop database %s: %v", db, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", db, err)
		}
	})
	dsn, err := withDatabase(base, db)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return db, dsn
}

// connectOrSkip connects to the server of BaseDSN, or skips the test (fails it when $CI is
// "true") when the server is unreachable.
func connectOrSkip(ctx context.Context, t testing.TB) *pgx.Conn {
	t.Helper()
	admin, err := connect(ctx, BaseDSN())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: test PostgreSQL unreachable: %v", err)
		}
		t.Skipf("pgtest: test PostgreSQL unreachable (%v): %s", err, startHint)
	}
	return admin
}

// NewMigratedDatabase is NewDatabase followed by spend.MigrateUp.
func NewMigratedDatabase(t testing.TB, name string) string {
	t.Helper()
	dsn := NewDatabase(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := spend.MigrateUp(ctx, dsn); err != nil {
		t.Fatalf("pgtest: migrate up: %v", err)
	}
	return dsn
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// dbName is "ppredeem_test_" + name reduced to [a-z0-9_] (at most 32 characters) + "_" +
// 8 random hex digits: at most 55 characters, under PostgreSQL's 63.
func dbName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() == 32 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var suffix [4]byte
	rand.Read(suffix[:])
	return "ppredeem_test_" + b.String() + "_" + hex.EncodeToString(suffix[:])
}

// withDatabase returns dsn with its database replaced by db. URLs get a new path; key/value
// strings get a dbname setting appended (the last setting wins).
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", err
		}
		u.Path = "/" + db
		u.RawPath = ""
		return u.String(), nil
	}
	return dsn + " dbname=" + db, nil
}
