package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/spend"
)

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate up|down|status",
		Short: "Apply, roll back or show the Postgres schema migrations embedded in this binary",
		Long: `Apply, roll back or show the Postgres schema migrations embedded in this binary.

  up      apply every pending migration (safe to run twice, and from two processes at once)
  down    roll back the most recent migration
  status  list migrations, applied or pending`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"up", "down", "status"},
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
		ctx := cmd.Context()
		switch args[0] {
		case "up":
			if err := spend.MigrateUp(ctx, cfg.DatabaseURL); err != nil {
				return fmt.Errorf("migrate up: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
			return nil
		case "down":
			if err := spend.MigrateDown(ctx, cfg.DatabaseURL); err != nil {
				return fmt.Errorf("migrate down: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "rolled back one migration")
			return nil
		case "status":
			return spend.MigrateStatus(ctx, cfg.DatabaseURL, cmd.OutOrStdout())
		default:
			return fmt.Errorf("unknown migrate action %q: use up, down or status", args[0])
		}
	}
	return cmd
}
