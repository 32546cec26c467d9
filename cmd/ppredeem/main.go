// Command ppredeem is a Privacy Pass redemption server.
//
//	ppredeem serve       --listen 127.0.0.1:8080 --keys a.pem[,b.pem] [--database-url DSN] [--relay-keys CLAIMTYPE=FILE,...]
//	ppredeem gateway     --listen 127.0.0.1:8081 --upstream http://127.0.0.1:8080
//	ppredeem migrate     up|down|status --database-url DSN
//	ppredeem keys        generate [--rsa]|list|retire
//	ppredeem apikeys     generate|usage
//	ppredeem issue       [--url URL] [--attester-key KEY | --attester-key-file FILE] [--count N]
//	ppredeem check       [--database-url DSN | --data-dir DIR] [--json]
//	ppredeem backup      --out FILE [--data-dir DIR]
//	ppredeem bench       --url http://127.0.0.1:8080/api/redeem --keys key.pem
//	ppredeem healthcheck [--url URL]
//	ppredeem version
//
// main only wires packages together: config decodes settings, verify checks
// tags, spend records spent tokens, rpc speaks JSON-RPC (its token kinds
// under rpc/kind, its admin listener rpc/admin), rpc/relay serves the relay
// provider API beside it and rpc/gateway the relay gateway.
//
// A command that ends with an error exits with status 1. serve and gateway
// report that error as a log record in their log_format (fatal.go); the
// other commands, and errors cobra finds in the command line itself, print
// "ppredeem: <error>".
//
// The first SIGINT or SIGTERM cancels the command's context: serve drains
// and stops gracefully, the other commands stop what they do. A second one
// exits at once (serve handles it itself; elsewhere the signal's default
// action ends the process).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal gets its default action again
	}()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		report(os.Stderr, err) // through the command's logger, if it has one
		stop()
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ppredeem",
		Short:         "Privacy Pass redemption server: verifies tokens and spends each exactly once",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newMigrateCommand(), newKeysCommand(), newBenchCommand())
	root.AddCommand(newVersionCommand(), newHealthcheckCommand(), newGatewayCommand())
	root.AddCommand(newCheckCommand(), newBackupCommand(), newIssueCommand(), newAPIKeysCommand())
	setVersion(root)
	return root
}
