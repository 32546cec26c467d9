package spend_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/spend/pgtest"
)

// TestBadDSN: a DSN that does not parse is refused, by OpenPostgres and by
// the migrations alike, with an error that says why and shows what a DSN
// looks like, and never quotes the password. None of these connects.
func TestBadDSN(t *testing.T) {
	for _, tc := range []struct {
		name, dsn string
		why       string // in the message
		secret    string // never in the message
	}{
		{"URL with a bad port", "postgres://app:hunter2zebra@db.example:54x2/ppredeem", "invalid port", "hunter2zebra"},
		{"URL with a bad escape in the password", "postgres://app:hunter2%zzebra@db.example/ppredeem", "password", "hunter2"},
		{"URL with a bad escape in the host", "postgres://app@db%zz/ppredeem", "failed to parse as URL", ""},
		{"keyword/value with an unquoted space in the password", "host=db.example password=hunter2 zebra-stripes", "invalid keyword/value", "zebra-stripes"},
		{"keyword/value without a password", "host=db.example dbname", "invalid keyword/value", ""},
		{"pool_max_conns not a number", "postgres://app:hunter2zebra@db.example/ppredeem?pool_max_conns=many", "pool_max_conns", "hunter2zebra"},
		{"pool_max_conns zero", "postgres://app@db.example/ppredeem?pool_max_conns=0", "pool_max_conns too small", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, openErr := spend.OpenPostgres(context.Background(), spend.PostgresConfig{DSN: tc.dsn})
			migrateErr := spend.MigrateUp(context.Background(), tc.dsn)
			for _, err := range []error{openErr, migrateErr} {
				if !errors.Is(err, spend.ErrBadDSN) {
					t.Fatalf("got %v, want ErrBadDSN", err)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.why) {
					t.Errorf("%q does not say why (%q)", msg, tc.why)
				}
				if !strings.Contains(msg, "postgres://user:password@127.0.0.1:5432/ppredeem?sslmode=disable") {
					t.Errorf("%q shows no example DSN", msg)
				}
				if tc.secret != "" && strings.Contains(msg, tc.secret) {
					t.Errorf("%q quotes the password", msg)
				}
			}
		})
	}
}

// TestPoolSizeFromDSN: a pool_max_conns in the DSN sizes the pool unless
// MaxConns is set; without either the pool has 16 connections. Opening does
// not connect.
func TestPoolSizeFromDSN(t *testing.T) {
	const dsn = "postgres://app@127.0.0.1:1/ppredeem"
	for _, tc := range []struct {
		dsn      string
		maxConns int32
		want     int32
	}{
		{dsn, 0, 16},
		{dsn + "?pool_max_conns=3", 0, 3},
		{dsn + "?pool_max_conns=3", 5, 5},
		{dsn, 7, 7},
		{"host=127.0.0.1 port=1 pool_max_conns=9", 0, 9},
	} {
		p, err := spend.OpenPostgres(context.Background(), spend.PostgresConfig{DSN: tc.dsn, MaxConns: tc.maxConns})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Stats().MaxConns; got != tc.want {
			t.Errorf("DSN %q, MaxConns %d: pool of %d, want %d", tc.dsn, tc.maxConns, got, tc.want)
		}
		p.Close()
	}
}

// TestMigrateWithPoolSettings: the server's DSN, pool settings included,
// migrates too: pgxpool's settings stay off the migration's connection,
// where PostgreSQL would refuse them as unknown parameters.
func TestMigrateWithPoolSettings(t *testing.T) {
	dsn := pgtest.NewDatabase(t, t.Name())
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	if err := spend.MigrateUp(context.Background(), dsn+sep+"pool_max_conns=3&pool_max_conn_lifetime=1h"); err != nil {
		t.Fatal(err)
	}
}
