package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/spend"
)

// migrateActions lists migrate's actions, for its help and for the error
// that a missing or unknown action gets.
const migrateActions = `  up      apply every pending migration (safe to run twice, and from two processes at once)
  down    roll back the most recent migration
  status  list migrations, applied or pending`

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate up|down|status",
		Short: "Apply, roll back or show the Postgres schema migrations embedded in this binary",
		Long: `Apply, roll back or show the Postgres schema migrations embedded in this binary.

` + migrateActions,
		ValidArgs: []string{"up", "down", "status"},
	}
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 && slices.Contains(cmd.ValidArgs, args[0]) {
			return nil
		}
		what := "migrate needs one action"
		switch {
		case len(args) == 1:
			what = fmt.Sprintf("unknown migrate action %q", args[0])
		case len(args) > 1:
			what = fmt.Sprintf("migrate takes one action, not %d", len(args))
		}
		return fmt.Errorf("%s:\n%s\n\n%s", what, migrateActions, strings.TrimRight(cmd.UsageString(), "\n"))
	}
	loader := config.Bind(cmd.Flags(), "database_url")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		if err := cfg.ValidateDatabase(); err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		switch args[0] {
		case "up":
			applied, version, err := spend.ApplyMigrations(ctx, cfg.DatabaseURL)
			for _, m := range applied {
				fmt.Fprintf(out, "applied %s\n", m)
			}
			if err != nil {
				return fmt.Errorf("migrate up: %w", err)
			}
			if len(applied) == 0 {
				fmt.Fprintf(out, "nothing to apply: the schema is at version %d, up to date\n", version)
			} else {
				fmt.Fprintf(out, "the schema is at version %d, up to date\n", version)
			}
			return nil
		case "down":
			m, version, err := spend.RollBackMigration(ctx, cfg.DatabaseURL)
			if err != nil {
				return fmt.Errorf("migrate down: %w", err)
			}
			fmt.Fprintf(out, "rolled back %s\nthe schema is at version %d\n", m, version)
			return nil
		case "status":
			return spend.MigrateStatus(ctx, cfg.DatabaseURL, out)
		}
		return fmt.Errorf("unknown migrate action %q", args[0]) // Args lets none through
	}
	return cmd
}
