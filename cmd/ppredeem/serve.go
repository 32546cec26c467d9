package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/admin"
	"github.com/ppredeem/ppredeem/rpc/httpbody"
	"github.com/ppredeem/ppredeem/spend"
)

var serveSettings = []string{
	"listen", "admin_listen", "database_url", "data_dir", "keys", "log_format", "log_level",
	"db_max_conns", "spend_timeout", "spend_batch", "max_body_bytes", "max_batch_requests",
	"max_token_bytes", "max_bindings", "max_bindings_bytes", "max_header_bytes",
	"max_inflight_body_bytes", "memory_limit_bytes",
	"read_header_timeout", "read_timeout", "write_timeout", "idle_timeout", "shutdown_timeout", "drain_delay",
	"max_issue_tokens", "issue_keys", "issue_open", "issue_open_per_hour", "issue_open_burst", "trusted_proxies", "commitment_expiry",
}

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve redemptions on POST /api/redeem",
		Long: `Serve redemptions on POST /api/redeem, and issuance on POST /api/issue
(the first key signs; attester keys or open issuance decide who may get tokens)
with the keys' commitments on GET /api/commitments.

Spent tokens go to Postgres when --database-url is set (run "ppredeem migrate up"
first), otherwise to the embedded store in --data-dir. The partition or bucket
of every configured key is created at start, and the server holds its keys
in the store (a key a running server holds cannot be retired). SIGHUP reloads
the configuration: the config file and every key file it names;
SIGTERM or SIGINT drains: /readyz fails, in-flight redemptions finish, then
the process exits; a second SIGTERM or SIGINT during the drain exits at once.`,
		Args: cobra.NoArgs,
	}
	loader := config.Bind(cmd.Flags(), serveSettings...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		if err := cfg.ValidateServe(); err != nil {
			return fmt.Errorf("invalid configuration:\n%w", err)
		}
		logger, err := newLogger(cfg, os.Stderr)
		if err != nil {
			return err
		}
		applyMemoryLimit(cfg, logger)
		if os.Getenv("GOGC") == "" {
			// The live heap is a few MB: letting it grow to 5x live before
			// a collection instead of 2x runs about a quarter as many GC
			// cycles; peak RSS under load stays at 38-48 MB (BENCHMARKS.md).
			debug.SetGCPercent(400)
		}
		lc, release := processLifecycle()
		defer release()
		return runServer(cmd.Context(), cfg, logger, lc)
	}
	logErrors(cmd, loader)
	return cmd
}

func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, error) {
	level, err := cfg.SlogLevel()
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// runServer serves until ctx is done or a stop signal comes, then shuts
// down gracefully. Every check (keys, store, schema, partitions, listen
// addresses) happens before the first request is accepted. The main and
// admin listeners run as one group: when one fails the other is shut
// down, and every return closes both.
func runServer(ctx context.Context, cfg *config.Config, log *slog.Logger, lc lifecycle) error {
	ring, err := loadKeyring(cfg)
	if err != nil {
		return err
	}
	m := admin.NewMetrics()
	build := currentBuild()
	m.MustRegister(admin.NewBuildInfo(build.Version, build.Revision, build.GoVersion))
	store, err := openStore(ctx, cfg, m.ObserveBatch)
	if err != nil {
		return err
	}
	defer store.Close()
	if pg, ok := store.(*spend.Postgres); ok {
		m.MustRegister(admin.NewPoolCollector(pg.Stats))
	}
	if err := logStore(ctx, log, cfg, store); err != nil {
		return err
	}
	bodies := httpbody.NewBudget(cfg.MaxInflightBodyBytes) // every endpoint of the main listener
	m.MustRegister(admin.BodyBudgetCollectors(bodies)...)
	relays, err := newRelayService(ctx, cfg, store, log, lc.clock(), bodies)
	if err != nil {
		return err
	}
	m.MustRegister(relays.handler.Collectors()...)
	if err := checkDistinctKeyIDs(ring.keyIDs(), relays.KeyIDs()); err != nil {
		return err
	}
	// The hold prepares every key's storage and records in the store that
	// this server serves them, so that no key is retired under it.
	hold, err := spend.StartHolding(ctx, store, append(ring.keyIDs(), relays.KeyIDs()...), spend.HoldConfig{OnRenew: holdRenewals(log)})
	if err != nil {
		return fmt.Errorf("the spent-token store cannot take the configured keys: %w", err)
	}
	defer stopHolding(hold, log) // before the store closes
	log.Info("holding the configured keys in the spent-token store", "holder", hold.Holder(), "keys", hold.Keys())
	var current atomic.Pointer[keyring]
	current.Store(&ring)
	var kinds []rpc.Kind
	for i, k := range tokenKinds() {
		kinds = append(kinds, rpc.Kind{Method: k.method, Keys: func() rpc.KeySet { return (*current.Load())[i] }})
	}
	issue, gate, err := issueOptions(cfg, store, m)
	if err != nil {
		return err
	}
	handler, err := rpc.NewHandler(rpc.Options{
		Kinds:        kinds,
		Spender:      store,
		Ready:        store.Ready,
		ReadyTimeout: readyTimeout(cfg),
		Warnings:     func() []string { return keyWarnings(current.Load().keyIDs()) },
		MaxBodyBytes: cfg.MaxBodyBytes,
		Bodies:       bodies,
		MaxBatch:     cfg.MaxBatchRequests,
		Logger:       log,
		Observer:     m,
		Issue:        issue,
		Routes:       relays.routes(),
	})
	if err != nil {
		return err
	}
	srv := publicServer(cfg, m.Instrument(handler), log)
	reloads := &reloader{running: cfg, keys: hold.Keys(), current: &current, relays: relays, gate: gate, hold: hold, gauges: admin.NewReloadGauges(m), log: log}
	reloads.gauges.Observe(nil, time.Now()) // the configuration loaded at start
	adminSrv := &http.Server{Handler: adminHandler(m, store), ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout}
	ls, err := listen(srv, cfg.Listen, adminSrv, cfg.AdminListen)
	if err != nil {
		return err
	}
	log.Info("ppredeem serving", "listen", ls.mainLn.Addr().String(), "admin_listen", addrString(ls.adminAddr()),
		"store", storeName(cfg), "keys", ring.keyIDs(), "relay_keys", relays.KeyIDs(), "version", build.Version, "revision", build.Revision)
	warnAboutKeys(log, ring.keyIDs())
	purgeCtx, stopPurge := context.WithCancel(ctx)
	defer stopPurge()
	go relays.purgeLoop(purgeCtx)
	return ls.serve(ctx, log, lc, shutdownPlan{
		drainDelay:      cfg.DrainDelay,
		shutdownTimeout: cfg.ShutdownTimeout,
		startDraining:   handler.StartDraining,
		reload:          func() error { return reloads.reload(ctx) },
	})
}

// readyTimeout bounds one /readyz store check: the store's write probe
// takes up to spend_timeout once it has a connection, and PostgreSQL
// gets up to 2s more to connect (spend.PostgresConfig.AcquireTimeout).
func readyTimeout(cfg *config.Config) time.Duration { return cfg.SpendTimeout + 3*time.Second }

// openStore opens the configured store; onBatch (may be nil) is told the
// size of every spend batch.
func openStore(ctx context.Context, cfg *config.Config, onBatch func(int)) (spend.Store, error) {
	if cfg.DatabaseURL != "" {
		var maxConns int32 // 0: the DSN's pool_max_conns, else spend's default
		if cfg.IsSet("db_max_conns") {
			maxConns = int32(cfg.DBMaxConns)
		}
		pg, err := spend.OpenPostgres(ctx, spend.PostgresConfig{
			DSN:          cfg.DatabaseURL,
			MaxConns:     maxConns,
			SpendTimeout: cfg.SpendTimeout,
			BatchMax:     cfg.SpendBatch,
			OnBatch:      onBatch,
		})
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		if err := pg.CheckSchema(ctx); err != nil {
			pg.Close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
		return pg, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	b, err := spend.OpenBolt(spend.BoltConfig{Path: filepath.Join(cfg.DataDir, boltFile), BatchMax: cfg.SpendBatch, SpendTimeout: cfg.SpendTimeout, OnBatch: onBatch})
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	return b, nil
}

const boltFile = "spent.db"

func storeName(cfg *config.Config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "embedded:" + filepath.Join(cfg.DataDir, boltFile)
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
