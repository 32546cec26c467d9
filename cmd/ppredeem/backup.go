package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/spend"
)

func newBackupCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE [--data-dir DIR]",
		Short: "Write a consistent copy of the embedded spent-token store to a new file",
		Long: `Write a consistent copy of the embedded spent-token store to a new file.

The copy is one bbolt read transaction (spend.Bolt.Backup): it holds every
spend acknowledged before the backup began, and the store's identity. To
restore, stop the server and put the copy in place as <data dir>/spent.db;
nothing else is needed (the directory's marker is written again from the
identity in the file when it is missing). The store file is locked by its
running server, so back up with the server stopped.

The PostgreSQL store is backed up with PostgreSQL's own tools (pg_dump of the
ppredeem tables, or base backups); see the README's "Backups".`,
		Args: cobra.NoArgs,
	}
	loader := config.Bind(cmd.Flags(), "data_dir", "database_url")
	cmd.Flags().StringVar(&out, "out", "", "file to write the copy to (must not exist)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if out == "" {
			return errors.New("--out is required")
		}
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		if cfg.DatabaseURL != "" {
			return errors.New("backup copies the embedded store; back up a PostgreSQL store with pg_dump or base backups " +
				"(every ppredeem table together, see the README's Backups)")
		}
		if embeddedStoreAbsent(cfg) {
			return fmt.Errorf("no embedded store in %s: nothing to back up", cfg.DataDir)
		}
		store, err := openExistingStore(cmd.Context(), cfg, "backup")
		if err != nil {
			return err
		}
		defer store.Close()
		b := store.(*spend.Bolt)
		id, _ := b.Identity(cmd.Context())
		// O_EXCL: never overwrite a file, least of all an older backup.
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		n, err := b.Backup(cmd.Context(), f)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
			return fmt.Errorf("backup to %s: %w", out, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes): store %s, created at %s; restore it as %s with the server stopped\n",
			out, n, id.ID, id.CreatedAt.Format("2006-01-02T15:04:05Z07:00"), boltPath(cfg))
		return nil
	}
	return cmd
}
