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
	"golang.org/x/sync/errgroup"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/admin"
	"github.com/ppredeem/ppredeem/spend"
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
		if os.Getenv("GOGC") == "" {
			// The live heap is a few MB: letting it grow to 5x live before
			// a collection instead of 2x runs about a quarter as many GC
			// cycles; peak RSS under load stays at 38-48 MB (BENCHMARKS.md).
			debug.SetGCPercent(400)
		}
		// main cancels the context at the first SIGINT or SIGTERM; stop
		// sees that one too, and a second one.
		hup, stop := make(chan os.Signal, 1), make(chan os.Signal, 2)
		signal.Notify(hup, syscall.SIGHUP)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(hup)
		defer signal.Stop(stop)
		return runServer(cmd.Context(), cfg, logger, lifecycle{hup: hup, stop: stop})
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

// lifecycle connects runServer to the process's signals and, in tests, to
// the test. Every field may be nil.
type lifecycle struct {
	// hup: each value reloads the key files (SIGHUP).
	hup <-chan os.Signal
	// stop: each value is one SIGINT or SIGTERM. The first value, or ctx
	// ending, begins the graceful shutdown; the second value stops at
	// once, during the drain delay or while in-flight requests finish.
	stop <-chan os.Signal
	// listening is told the addresses the server listens on (tests use
	// port 0); admin is nil without an admin listener.
	listening func(main, admin net.Addr)
	// reloaded is told the outcome of each reload: nil once the new keys
	// are in force, the error when the previous keys stay.
	reloaded func(error)
	// draining is told that shutdown has begun: /readyz fails from now on.
	draining func()
	// signalled is told, after each value received on stop, how many
	// have come so far.
	signalled func(n int)
}

// errStoppedAtOnce is runServer's answer to a second stop signal.
var errStoppedAtOnce = errors.New("stopped at once by a second signal: in-flight requests were cut off")

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
	store, err := openStore(ctx, cfg, m.ObserveBatch)
	if err != nil {
		return err
	}
	defer store.Close()
	if pg, ok := store.(*spend.Postgres); ok {
		m.MustRegister(admin.NewPoolCollector(pg.Stats))
	}
	if err := store.PrepareKeys(ctx, ring.keyIDs()); err != nil {
		return fmt.Errorf("preparing spent-token storage for the configured keys: %w", err)
	}
	var current atomic.Pointer[keyring]
	current.Store(&ring)
	var kinds []rpc.Kind
	for i, k := range tokenKinds() {
		kinds = append(kinds, rpc.Kind{Method: k.method, Keys: func() rpc.KeySet { return (*current.Load())[i] }})
	}
	handler, err := rpc.NewHandler(rpc.Options{
		Kinds:        kinds,
		Spender:      store,
		Ready:        store.Ping,
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
	servers := []*http.Server{srv}
	listeners := []net.Listener{ln}
	var adminAddr net.Addr
	if cfg.AdminListen != "" {
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin listen %s: %w", cfg.AdminListen, err)
		}
		adminAddr = aln.Addr()
		servers = append(servers, &http.Server{Handler: m.Handler(), ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout})
		listeners = append(listeners, aln)
	}

	group, groupCtx := errgroup.WithContext(context.Background())
	for i, s := range servers {
		group.Go(func() error {
			if err := s.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve %s: %w", listeners[i].Addr(), err)
			}
			return nil
		})
	}
	// closeAll cuts every connection of both listeners and waits for
	// their goroutines: on every way out (after a completed Shutdown it
	// changes nothing), and at once when one listener failed.
	closeAll := func() error {
		for _, s := range servers {
			s.Close()
		}
		return group.Wait()
	}
	defer closeAll()
	log.Info("ppredeem serving", "listen", ln.Addr().String(), "admin_listen", addrString(adminAddr),
		"store", storeName(cfg), "keys", ring.keyIDs())
	if lc.listening != nil {
		lc.listening(ln.Addr(), adminAddr)
	}

	signals := 0 // values received on lc.stop
	for running := true; running; {
		select {
		case <-lc.hup:
			err := reloadKeys(ctx, cfg, store, &current, log)
			if lc.reloaded != nil {
				lc.reloaded(err)
			}
		case <-groupCtx.Done():
			return closeAll()
		case <-ctx.Done():
			running = false
		case <-lc.stop:
			signals++
			if lc.signalled != nil {
				lc.signalled(signals)
			}
			running = false
		}
	}
	// The second stop signal stops at once. When ctx ended first, the
	// signal that ended it (main cancels ctx on the first one) may still
	// be on its way to lc.stop: it counts as the first.
	stopAtOnce := make(chan struct{})
	go func() {
		for signals < 2 {
			select {
			case <-lc.stop:
				signals++
				if lc.signalled != nil {
					lc.signalled(signals)
				}
			case <-groupCtx.Done():
				return
			}
		}
		close(stopAtOnce)
	}()

	handler.StartDraining()
	if lc.draining != nil {
		lc.draining()
	}
	if cfg.DrainDelay > 0 {
		// Load balancers see /readyz fail and stop sending; meanwhile
		// everything that still arrives is served.
		log.Info("shutting down: /readyz now fails; still serving", "drain_delay", cfg.DrainDelay)
		drained := time.NewTimer(cfg.DrainDelay)
		select {
		case <-drained.C:
		case <-stopAtOnce:
			log.Warn("shutting down at once: second signal during the drain delay")
			return errStoppedAtOnce
		case <-groupCtx.Done():
			return closeAll()
		}
	}
	log.Info("shutting down: draining in-flight requests", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	go func() {
		select {
		case <-stopAtOnce:
			cancel()
		case <-shutdownCtx.Done():
		}
	}()
	// The main listener first: the admin listener keeps serving metrics
	// while in-flight redemptions finish.
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		select {
		case <-stopAtOnce:
			log.Warn("shutting down at once: second signal while in-flight requests finished")
			return errStoppedAtOnce
		default:
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	if err := group.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// reloadKeys swaps in the key files' current contents. A bad file keeps the
// old key set in force: a typo must not take the server down.
func reloadKeys(ctx context.Context, cfg *config.Config, store spend.Store, current *atomic.Pointer[keyring], log *slog.Logger) error {
	ring, err := loadKeyring(cfg)
	if err != nil {
		log.Error("key reload failed; keeping the previous keys", "err", err)
		return err
	}
	prepCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := store.PrepareKeys(prepCtx, ring.keyIDs()); err != nil {
		log.Error("key reload failed: cannot prepare spent-token storage; keeping the previous keys", "err", err)
		return err
	}
	current.Store(&ring)
	log.Info("keys reloaded", "keys", ring.keyIDs())
	return nil
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
