package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc/admin"
	"github.com/ppredeem/ppredeem/rpc/gateway"
	"github.com/ppredeem/ppredeem/rpc/httpbody"
)

// gatewaySettings are the settings `ppredeem gateway` reads.
var gatewaySettings = []string{
	"gateway_listen", "gateway_admin_listen", "gateway_upstream", "gateway_request_timeout", "gateway_max_body_bytes",
	"log_format", "log_level", "max_header_bytes", "max_inflight_body_bytes", "memory_limit_bytes",
	"read_header_timeout", "read_timeout", "write_timeout", "idle_timeout", "shutdown_timeout", "drain_delay",
}

// gatewayFlags name the gateway_* settings on the gateway's command line
// without the prefix; the environment and config file keep it
// (PPREDEEM_GATEWAY_LISTEN, gateway_listen).
var gatewayFlags = map[string]string{
	"gateway_listen":          "listen",
	"gateway_admin_listen":    "admin-listen",
	"gateway_upstream":        "upstream",
	"gateway_request_timeout": "request-timeout",
	"gateway_max_body_bytes":  "max-body-bytes",
}

func newGatewayCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Serve the relay gateway a platform runs, in front of a provider API",
		Long: `Serve the relay gateway: POST /relays, POST /relays/privacy-passes and
POST /relays/{relay-token}/redeem, delegating to the provider API at --upstream
(ppredeem serve, or any service speaking the same API).

The gateway holds no keys and no database: every call carries its own
credentials. It builds Privacy Passes on the platform's behalf (the client
side of issuance) and retries upstream calls that may succeed later.
SIGTERM or SIGINT drains: /readyz fails, in-flight requests finish, then the
process exits.`,
		Args: cobra.NoArgs,
	}
	loader := config.BindRenamed(cmd.Flags(), gatewayFlags, gatewaySettings...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		if err := cfg.ValidateGateway(); err != nil {
			return fmt.Errorf("invalid configuration:\n%w", err)
		}
		logger, err := newLogger(cfg, os.Stderr)
		if err != nil {
			return err
		}
		applyMemoryLimit(cfg, logger)
		lc, release := processLifecycle()
		defer release()
		return runGateway(cmd.Context(), cfg, logger, lc)
	}
	logErrors(cmd, loader)
	return cmd
}

// runGateway serves until ctx is done or a stop signal comes, then shuts
// down gracefully (see listeners.serve).
func runGateway(ctx context.Context, cfg *config.Config, log *slog.Logger, lc lifecycle) error {
	g := cfg.Gateway
	reg := prometheus.NewRegistry()
	build := currentBuild()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		admin.NewBuildInfo(build.Version, build.Revision, build.GoVersion))
	bodies := httpbody.NewBudget(cfg.MaxInflightBodyBytes)
	reg.MustRegister(admin.BodyBudgetCollectors(bodies)...)
	handler, err := gateway.New(gateway.Options{
		Upstream:       g.Upstream,
		RequestTimeout: g.RequestTimeout,
		MaxBodyBytes:   g.MaxBodyBytes,
		Bodies:         bodies,
		Logger:         log,
		Registerer:     reg,
	})
	if err != nil {
		return err
	}
	srv := publicServer(cfg, handler, log)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	adminSrv := &http.Server{Handler: mux, ReadHeaderTimeout: cfg.ReadHeaderTimeout, IdleTimeout: cfg.IdleTimeout}
	ls, err := listen(srv, g.Listen, adminSrv, g.AdminListen)
	if err != nil {
		return err
	}
	// The upstream URL holds no credentials (ValidateGateway refuses them).
	log.Info("ppredeem gateway serving", "listen", ls.mainLn.Addr().String(), "admin_listen", addrString(ls.adminAddr()),
		"upstream", g.Upstream, "version", build.Version, "revision", build.Revision)
	return ls.serve(ctx, log, lc, shutdownPlan{
		drainDelay:      cfg.DrainDelay,
		shutdownTimeout: cfg.ShutdownTimeout,
		startDraining:   handler.StartDraining,
	})
}
