package main

import (
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc/httpbody"
)

// netHTTPHeaderSlack is what net/http reads beyond Server.MaxHeaderBytes
// before it answers 431: its initialReadLimitSize is MaxHeaderBytes + 4096
// ("bufio slop", golang/go src/net/http/server.go).
const netHTTPHeaderSlack = 4096

// publicServer is the http.Server of a public listener (serve's and the
// gateway's main listeners), serving h:
//
//   - the request line and headers, through the blank line that ends
//     them, may take exactly max_header_bytes bytes: MaxHeaderBytes is that
//     minus net/http's slack (config.MinHeaderBytes keeps it above 4 KiB);
//   - an answer given before the body was read to its end lingers
//     (httpbody.Linger with httpbody.DefaultLinger), so a client still
//     sending reads it; Linger is outermost, on net/http's own writer;
//   - OPTIONS * reaches h (a JSON answer) instead of net/http's empty 200;
//   - net/http's own complaints go to the log at debug level.
func publicServer(cfg *config.Config, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:                      httpbody.Linger(h, httpbody.DefaultLinger),
		DisableGeneralOptionsHandler: true,
		ReadHeaderTimeout:            cfg.ReadHeaderTimeout,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		MaxHeaderBytes:               cfg.MaxHeaderBytes - netHTTPHeaderSlack,
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// applyMemoryLimit sets the process's soft memory limit to
// memory_limit_bytes (runtime/debug.SetMemoryLimit). When that is 0 the
// runtime keeps the limit it read from GOMEMLIMIT at start, or none. The
// limit in force is logged.
func applyMemoryLimit(cfg *config.Config, log *slog.Logger) {
	if cfg.MemoryLimitBytes > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimitBytes)
		log.Info("memory limit set", "bytes", cfg.MemoryLimitBytes, "from", "memory_limit_bytes")
		return
	}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		log.Info("memory limit set", "bytes", limit, "from", "GOMEMLIMIT")
	}
}
