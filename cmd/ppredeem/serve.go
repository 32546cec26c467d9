package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/metrics"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
)

var serveSettings = []string{
	"listen", "admin_listen", "database_url", "data_dir", "keys", "log_format", "log_level",
	"db_max_conns", "spend_timeout", "spend_batch", "max_body_bytes", "max_batch_requests",
	"max_token_bytes", "max_bindings", "max_bindings_bytes", "max_header_bytes",
	"read_header_timeout", "read_timeout", "write_timeout", "idle_timeout", "shutdown_timeout", "drain_delay",
}

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve redemptions on POST /api/redeem",
		Long: `Serve redemptions on POST /api/redeem.

Spent tokens go to Postgres when --database-url is set (run "ppredeem migrate up"
first), otherwise to the embedded store in --data-dir. The partition or bucket
of every configured key is created at start. SIGHUP reloads the key files;
SIGTERM or SIGINT drains: /readyz fails, in-flight redemptions finish, then
the process exits.`,
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
		if os.Getenv("GOGC") == "" {
			// The live heap is a few MB: letting it grow to 5x live before
			// a collection instead of 2x runs about a quarter as many GC
			// cycles; peak RSS under load stays at 38-48 MB (BENCHMARKS.md).
			debug.SetGCPercent(400)
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		return runServer(cmd.Context(), cfg, logger, hup, nil)
	}
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

// listening is told the addresses the server listens on (tests use port 0).
type listening func(main, admin net.Addr)

// runServer serves until ctx is done, then shuts down gracefully. Every
// check (keys, store, schema, partitions, listen addresses) happens before
// the first request is accepted.
func runServer(ctx context.Context, cfg *config.Config, log *slog.Logger, hup <-chan os.Signal, onListen listening) error {
	keys, err := loadKeySet(cfg.Keys)
	if err != nil {
		return err
	}
	m := metrics.New()
	store, err := openStore(ctx, cfg, m.ObserveBatch)
	if err != nil {
		return err
	}
	defer store.Close()
	if pg, ok := store.(*spend.Postgres); ok {
		m.MustRegister(metrics.NewPoolCollector(pg.Stats))
	}
	if err := store.PrepareKeys(ctx, keyIDs(keys)); err != nil {
		return fmt.Errorf("preparing spent-token storage for the configured keys: %w", err)
	}
	var current atomic.Pointer[verify.KeySet]
	current.Store(keys)

	handler, err := rpc.NewHandler(rpc.Options{
		Keys:         current.Load,
		Spender:      store,
		Ready:        store.Ping,
		Limits:       verify.Limits{MaxTokenBytes: cfg.MaxTokenBytes, MaxBindings: cfg.MaxBindings, MaxBindingsBytes: cfg.MaxBindingsBytes},
		MaxBodyBytes: cfg.MaxBodyBytes,
		MaxBatch:     cfg.MaxBatchRequests,
		Logger:       log,
		Observer:     m,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           m.Instrument(handler),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	var admin *http.Server
	var adminAddr net.Addr
	if cfg.AdminListen != "" {
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin listen %s: %w", cfg.AdminListen, err)
		}
		adminAddr = aln.Addr()
		admin = &http.Server{Handler: m.AdminHandler(), ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout}
		go func() {
			if err := admin.Serve(aln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin listener stopped", "err", err)
			}
		}()
	}
	log.Info("ppredeem serving", "listen", ln.Addr().String(), "admin_listen", addrString(adminAddr),
		"store", storeName(cfg), "keys", keyIDs(keys))
	if onListen != nil {
		onListen(ln.Addr(), adminAddr)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	for running := true; running; {
		select {
		case <-hup:
			reloadKeys(ctx, cfg.Keys, store, &current, log)
		case err := <-serveErr:
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			running = false
		}
	}

	handler.StartDraining()
	if cfg.DrainDelay > 0 {
		// Load balancers see /readyz fail and stop sending; meanwhile
		// everything that still arrives is served.
		log.Info("shutting down: /readyz now fails; still serving", "drain_delay", cfg.DrainDelay)
		time.Sleep(cfg.DrainDelay)
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if admin != nil {
		defer admin.Shutdown(shutdownCtx)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// reloadKeys swaps in the key files' current contents. A bad file keeps the
// old key set in force: a typo must not take the server down.
func reloadKeys(ctx context.Context, paths []string, store spend.Store, current *atomic.Pointer[verify.KeySet], log *slog.Logger) {
	keys, err := loadKeySet(paths)
	if err != nil {
		log.Error("key reload failed; keeping the previous keys", "err", err)
		return
	}
	prepCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := store.PrepareKeys(prepCtx, keyIDs(keys)); err != nil {
		log.Error("key reload failed: cannot prepare spent-token storage; keeping the previous keys", "err", err)
		return
	}
	current.Store(keys)
	log.Info("keys reloaded", "keys", keyIDs(keys))
}

// openStore opens the configured store; onBatch (may be nil) is told the
// size of every spend batch.
func openStore(ctx context.Context, cfg *config.Config, onBatch func(int)) (spend.Store, error) {
	if cfg.DatabaseURL != "" {
		pg, err := spend.OpenPostgres(ctx, spend.PostgresConfig{
			DSN:          cfg.DatabaseURL,
			MaxConns:     int32(cfg.DBMaxConns),
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
