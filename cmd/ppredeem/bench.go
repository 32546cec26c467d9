package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/cmd/internal/loadgen"
	"github.com/ppredeem/ppredeem/verify"
)

func newBenchCommand() *cobra.Command {
	var (
		cfg      loadgen.Config
		keyFiles []string
		method   string
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "bench --url URL --keys key.pem [--concurrency 64] [--count N] [--duration D] [--rate R] [--json]",
		Short: "Drive a ppredeem server with tokens minted under a key and report throughput and latency",
		Long: `Drive a ppredeem server with tokens minted under a key and report throughput and latency.

Tokens are minted before the clock starts (N = k·H2C(t), no issuance), so
the figures measure the server. Without --rate the load is closed-loop:
--concurrency workers each send the next request as soon as the previous
answer arrives. With --rate it is open-loop: requests start on a fixed
schedule and latency counts from the scheduled start. Progress goes to
stderr; the report to stdout (with --json, one JSON object).

The exit status is 1 if any request got an unexpected answer or none at all
(a transport failure: connection error, timeout, an answer that is not
JSON-RPC), after the report is written; the -32021 and -32020 answers that
--double-spend and --bad-tag ask for are expected, not failures.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(keyFiles) == 0 {
				return errors.New("--keys is required: the key file tokens are minted under")
			}
			keys, err := loadKeySet(keyFiles)
			if err != nil {
				return err
			}
			cfg.Keys = keys.Keys()
			switch strings.ToLower(method) {
			case "increment":
				cfg.Method = verify.Increment
			case "swu":
				cfg.Method = verify.SWU
			default:
				return fmt.Errorf("--method %q: want increment or swu", method)
			}
			cfg.Progress = cmd.ErrOrStderr()
			report, err := loadgen.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			write := report.WriteText
			if asJSON {
				write = report.WriteJSON
			}
			if err := write(cmd.OutOrStdout()); err != nil {
				return err
			}
			return report.Err()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080/api/redeem", "redeem endpoint of the server under test")
	f.StringSliceVar(&keyFiles, "keys", nil, "PEM key file(s) to mint tokens under (the server must hold them)")
	f.StringVar(&method, "method", "increment", "hash-to-curve method of the minted tokens: increment or swu")
	f.IntVar(&cfg.Concurrency, "concurrency", loadgen.DefaultConcurrency, "requests in flight at once (closed loop) or at most (open loop)")
	f.IntVar(&cfg.Count, "count", 0, "number of redemptions (0: until --duration ends)")
	f.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: when --count is done)")
	f.Float64Var(&cfg.Rate, "rate", 0, "open loop: redemptions started per second (0: closed loop)")
	f.Float64Var(&cfg.DoubleSpend, "double-spend", 0, "fraction of requests re-sending an already redeemed token (expect -32021)")
	f.Float64Var(&cfg.BadTag, "bad-tag", 0, "fraction of requests with a corrupted tag (expect -32020)")
	f.DurationVar(&cfg.Timeout, "timeout", loadgen.DefaultTimeout, "timeout of one request")
	f.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if cfg.Count == 0 && cfg.Duration == 0 {
			cfg.Count = 10000
			fmt.Fprintln(cmd.ErrOrStderr(), "bench: neither --count nor --duration given; running --count 10000")
		}
		if cfg.Duration < 0 || cfg.Timeout <= 0 {
			return errors.New("--duration must be >= 0 and --timeout > 0")
		}
		return nil
	}
	return cmd
}
