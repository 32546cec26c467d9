package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Generate, list and retire redemption keys",
		Long: `Generate, list and retire redemption keys.

A key's ID is the first 8 bytes of SHA-256 over its public commitment H = k·G
(SEC1 uncompressed), in hex. Spent tokens are stored per key ID, so retiring a
key that is no longer configured drops all of its records in one step: a
token can only verify under a configured key, so a retired key's records
protect nothing.`,
	}
	cmd.AddCommand(newKeysGenerateCommand(), newKeysListCommand(), newKeysRetireCommand(), newRotateRelaySecretCommand())
	return cmd
}

func newKeysGenerateCommand() *cobra.Command {
	var out string
	var rsaKey bool
	var bits int
	cmd := &cobra.Command{
		Use:   "generate --out key.pem [--rsa [--bits 2048|4096]]",
		Short: "Write a new P-256 redemption key (SEC1 PEM), or with --rsa a Privacy Pass issuer key, and print its ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			if rsaKey {
				return generateRSAKey(cmd.OutOrStdout(), out, bits)
			}
			if cmd.Flags().Changed("bits") {
				return errors.New("--bits applies to --rsa keys only")
			}
			key, err := verify.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			if err := writeNewFile(out, key.MarshalPEM()); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s\n", out)
			fmt.Fprintf(w, "id: %s\n", key.ID())
			fmt.Fprintf(w, "H:  %s\n", base64.StdEncoding.EncodeToString(key.Commitment()))
			fmt.Fprintf(w, "G:  %s\n", base64.StdEncoding.EncodeToString(verify.BasePoint()))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the new key to (must not exist)")
	cmd.Flags().BoolVar(&rsaKey, "rsa", false, "write an RSA Privacy Pass issuer key (PKCS #8 PEM) for relay_keys")
	cmd.Flags().IntVar(&bits, "bits", 2048, "RSA key size with --rsa: 2048 or 4096")
	return cmd
}

func newKeysListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list --keys a.pem[,b.pem] [--database-url DSN | --data-dir DIR]",
		Short: "Show each configured key's ID, commitment and (with a store) how many tokens it has spent",
		Args:  cobra.NoArgs,
	}
	loader := config.Bind(cmd.Flags(), "keys", "database_url", "data_dir")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, keys, err := loadConfiguredKeys(loader, "keys: at least one key file is required (--keys, PPREDEEM_KEYS)")
		if err != nil {
			return err
		}
		store, storeErr := openExistingStore(cmd.Context(), cfg)
		if store != nil {
			defer store.Close()
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tCOMMITMENT (H, base64 SEC1)\tSPENT")
		for _, k := range keys.Keys() {
			spent := "-"
			if store != nil {
				switch n, err := store.Count(cmd.Context(), k.ID()); {
				case err == nil:
					spent = fmt.Sprint(n)
				case errors.Is(err, spend.ErrUnknownKey):
					spent = "0 (no storage yet)"
				default:
					spent = "error: " + err.Error()
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", k.ID(), base64.StdEncoding.EncodeToString(k.Commitment()), spent)
		}
		fmt.Fprintf(w, "\nG (base point): %s\n", base64.StdEncoding.EncodeToString(verify.BasePoint()))
		if storeErr != nil {
			fmt.Fprintf(w, "spent counts unavailable: %v\n", storeErr)
		}
		return w.Flush()
	}
	return cmd
}

// loadConfiguredKeys decodes the settings and loads the configured key
// files; noKeys is the error text when none is configured.
func loadConfiguredKeys(loader *config.Loader, noKeys string) (*config.Config, *verify.KeySet, error) {
	cfg, err := loader.Load()
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.Keys) == 0 {
		return nil, nil, errors.New(noKeys)
	}
	keys, err := loadKeySet(cfg.Keys)
	if err != nil {
		return nil, nil, err
	}
	return cfg, keys, nil
}

// openExistingStore opens the configured store for reading counts, without
// creating one: a missing embedded store means nothing was spent yet.
func openExistingStore(ctx context.Context, cfg *config.Config) (spend.Store, error) {
	if cfg.DatabaseURL == "" {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, boltFile)); err != nil {
			return nil, fmt.Errorf("no embedded store at %s", filepath.Join(cfg.DataDir, boltFile))
		}
	}
	return openStore(ctx, cfg, nil)
}

func newKeysRetireCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retire KEY-ID --keys <serving keys> [--database-url DSN | --data-dir DIR]",
		Short: "Delete every spent record of a key that is no longer configured, in one step",
		Long: `Delete every spent record of a key that is no longer configured, in one step
(Postgres: detach and drop the key's partition; embedded store: delete its bucket).

Pass the serving configuration (--keys or PPREDEEM_KEYS, or --config): retire
refuses a key that configuration still holds, because its tokens still verify
and their records are what stops a second redemption. Remove the key from the
configuration, reload or restart every server, then retire it. The embedded
store is a file only one process can open: stop the server first.`,
		Args: cobra.ExactArgs(1),
	}
	loader := config.Bind(cmd.Flags(), "keys", "database_url", "data_dir")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		keyID := args[0]
		if !spend.ValidKeyID(keyID) {
			return fmt.Errorf("%q is not a key ID: want 16 lowercase hex characters (see ppredeem keys list)", keyID)
		}
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		if len(cfg.Keys) == 0 {
			return errors.New("pass the serving configuration's keys (--keys or PPREDEEM_KEYS) so retire can check the key is no longer configured")
		}
		ring, err := loadKeyring(cfg)
		if err != nil {
			return err
		}
		for _, id := range ring.keyIDs() {
			if id == keyID {
				return fmt.Errorf("refusing to retire %s: the configuration still holds this key, so its tokens still verify; remove it from --keys and reload every server first", keyID)
			}
		}
		store, err := openExistingStore(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		n, countErr := store.Count(cmd.Context(), keyID)
		if err := store.Retire(cmd.Context(), keyID); err != nil {
			if errors.Is(err, spend.ErrUnknownKey) {
				return fmt.Errorf("key %s has no spent-token storage (never used, or already retired)", keyID)
			}
			return fmt.Errorf("retire %s: %w", keyID, err)
		}
		if countErr == nil {
			fmt.Fprintf(cmd.OutOrStdout(), "retired %s: dropped %d spent records\n", keyID, n)
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "retired %s\n", keyID)
		}
		return nil
	}
	return cmd
}
