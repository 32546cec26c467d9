package spend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ppredeem/ppredeem/migrations"
)

// Migrations run through goose's Provider API with the embedded files of package migrations,
// over database/sql with the pgx stdlib driver. Every provider operation that changes or
// reads versions (Up, Down, Status) holds a PostgreSQL session advisory lock
// (pg_try_advisory_lock, goose's default lock ID, per database), so two processes migrating at
// once take turns and the second finds nothing left to do.
// Provider API: https://pressly.github.io/goose/documentation/provider/

const (
	migrateConnectTimeout = 10 * time.Second
	migrateLockPeriod     = 1   // seconds between attempts to take the migration lock
	migrateLockAttempts   = 300 // so a migration waits up to 5 minutes for another one
	gooseVersionTable     = goose.DefaultTablename
)

// newProvider opens dsn and returns a goose provider for the embedded migrations; the caller
// closes it (which closes the database handle).
func newProvider(dsn string) (*goose.Provider, error) {
	// The server's DSN may carry pgxpool's settings (pool_max_conns...): parsed as a pool's,
	// they are checked and kept off the connection, where PostgreSQL would refuse them as
	// unknown parameters.
	pc, _, err := parsePoolDSN(dsn)
	if err != nil {
		return nil, err
	}
	cc := pc.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = migrateConnectTimeout
	}
	db := stdlib.OpenDB(*cc)
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(migrateLockPeriod, migrateLockAttempts))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("spend: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("spend: load migrations: %w", err)
	}
	return p, nil
}

// Migration is one embedded migration that ApplyMigrations applied or RollBackMigration
// rolled back.
type Migration struct {
	Version int64
	File    string // in package migrations, e.g. 00001_spent_tokens.sql
}

func (m Migration) String() string { return fmt.Sprintf("%s (version %d)", m.File, m.Version) }

func migrationsOf(results []*goose.MigrationResult) []Migration {
	var ms []Migration
	for _, r := range results {
		if r != nil && r.Source != nil {
			ms = append(ms, Migration{Version: r.Source.Version, File: r.Source.Path})
		}
	}
	return ms
}

// MigrateUp applies every pending migration. Running it again, or from two processes at once,
// is safe: the advisory lock serialises them and applied versions are skipped.
func MigrateUp(ctx context.Context, dsn string) error {
	_, _, err := ApplyMigrations(ctx, dsn)
	return err
}

// ApplyMigrations is MigrateUp that tells what it did: the migrations it applied, in order
// (none when the schema was up to date), and the schema version after them. When one fails,
// the error names it and applied lists those applied before it, which stay applied.
func ApplyMigrations(ctx context.Context, dsn string) (applied []Migration, version int64, err error) {
	p, err := newProvider(dsn)
	if err != nil {
		return nil, 0, err
	}
	defer func() { err = errors.Join(err, closeProvider(p)) }()
	results, err := p.Up(ctx)
	if err != nil {
		if partial, ok := errors.AsType[*goose.PartialError](err); ok {
			applied = migrationsOf(partial.Applied)
			if partial.Failed != nil && partial.Failed.Source != nil {
				failed := migrationsOf([]*goose.MigrationResult{partial.Failed})[0]
				return applied, 0, fmt.Errorf("spend: migrate up: %s failed: %w", failed, partial.Err)
			}
		}
		return applied, 0, fmt.Errorf("spend: migrate up: %w", err)
	}
	if version, err = p.GetDBVersion(ctx); err != nil {
		return migrationsOf(results), 0, fmt.Errorf("spend: migrate up: read the schema version: %w", err)
	}
	return migrationsOf(results), version, nil
}

// migrateUpTo applies the pending migrations up to version.
func migrateUpTo(ctx context.Context, dsn string, version int64) (err error) {
	p, err := newProvider(dsn)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeProvider(p)) }()
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("spend: migrate up to %d: %w", version, err)
	}
	return nil
}

// MigrateDown rolls back the most recently applied migration (one step). With nothing
// applied it returns an error.
func MigrateDown(ctx context.Context, dsn string) error {
	_, _, err := RollBackMigration(ctx, dsn)
	return err
}

// RollBackMigration is MigrateDown that tells what it did: the migration it rolled back and
// the schema version after.
func RollBackMigration(ctx context.Context, dsn string) (rolledBack Migration, version int64, err error) {
	p, err := newProvider(dsn)
	if err != nil {
		return Migration{}, 0, err
	}
	defer func() { err = errors.Join(err, closeProvider(p)) }()
	result, err := p.Down(ctx)
	if err != nil {
		if errors.Is(err, goose.ErrNoNextVersion) {
			return Migration{}, 0, errors.New("spend: migrate down: no applied migration to roll back")
		}
		return Migration{}, 0, fmt.Errorf("spend: migrate down: %w", err)
	}
	ms := migrationsOf([]*goose.MigrationResult{result})
	if len(ms) == 1 {
		rolledBack = ms[0]
	}
	if version, err = p.GetDBVersion(ctx); err != nil {
		return rolledBack, 0, fmt.Errorf("spend: migrate down: read the schema version: %w", err)
	}
	return rolledBack, version, nil
}

// MigrateStatus writes one line per embedded migration (applied with its time, or pending)
// and the current version, for example:
//
//	applied  2025-01-02T15:04:05Z  00001_spent_tokens.sql
//	pending                        00002_next.sql
//	current version: 1 (latest: 2)
func MigrateStatus(ctx context.Context, dsn string, w io.Writer) (err error) {
	p, err := newProvider(dsn)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeProvider(p)) }()
	st, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("spend: migrate status: %w", err)
	}
	cur, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("spend: migrate status: %w", err)
	}
	var latest int64
	for _, s := range st {
		at := ""
		if s.State == goose.StateApplied {
			at = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		if _, err := fmt.Fprintf(w, "%-8s %-20s  %s\n", s.State, at, s.Source.Path); err != nil {
			return err
		}
		latest = max(latest, s.Source.Version)
	}
	_, err = fmt.Fprintf(w, "current version: %d (latest: %d)\n", cur, latest)
	return err
}

func closeProvider(p *goose.Provider) error {
	if err := p.Close(); err != nil {
		return fmt.Errorf("spend: close migration connection: %w", err)
	}
	return nil
}

// latestMigration is the highest version among the embedded migrations.
func latestMigration() (int64, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return 0, fmt.Errorf("spend: migration file %s: %w", n, err)
		}
		latest = max(latest, v)
	}
	if latest == 0 {
		return 0, errors.New("spend: no embedded migrations")
	}
	return latest, nil
}

// CheckSchema returns a wrapped ErrSchemaBehind when the database's goose version is lower
// than the latest embedded migration (or goose never ran there), and ErrNoStore when the
// store identity that migrate up creates is missing. A newer schema is accepted: migrations
// are additive, and an older binary may run during a rolling upgrade. It only reads: unlike
// goose's own version check it never creates the version table.
func (p *Postgres) CheckSchema(ctx context.Context) error {
	want, err := latestMigration()
	if err != nil {
		return err
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var have sql.NullInt64
	// to_regclass yields NULL for a missing table instead of an error.
	err = conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", gooseVersionTable).Scan(&have.Valid)
	if err == nil && have.Valid {
		err = conn.QueryRow(ctx,
			"SELECT max(version_id) FROM "+pgx.Identifier{gooseVersionTable}.Sanitize()+" WHERE is_applied").Scan(&have)
	}
	if err != nil {
		return fmt.Errorf("spend: read schema version: %w", err)
	}
	if !have.Valid || have.Int64 < want {
		return fmt.Errorf("spend: schema version %d, this binary needs %d: %w", have.Int64, want, ErrSchemaBehind)
	}
	_, err = queryIdentity(ctx, conn)
	return err
}
