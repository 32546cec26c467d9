package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

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
key that no running server holds drops all of its records in one step: a
token can only verify under a configured key, so a key no server serves has
records that protect nothing. The store keeps a tombstone of every retired
key: it can never serve again.`,
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
		Short: "Show each configured key's ID, commitment and, from the store, its spent tokens and state",
		Long: `Show each configured key's ID, commitment and, from the store, how many
tokens it has spent and its state: new (not yet in the store), live (with the
servers holding it), retired, or records missing.

The store is opened as it is, never created; the embedded store's file is
locked by a running server, so list it with the server stopped. The exit
status is 1 when the store cannot be read, or when a configured key is
retired or its records are missing (serve would refuse it).`,
		Args: cobra.NoArgs,
	}
	loader := config.Bind(cmd.Flags(), "keys", "database_url", "data_dir")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		cfg, keys, err := loadConfiguredKeys(loader, "keys: at least one key file is required (--keys, PPREDEEM_KEYS)")
		if err != nil {
			return err
		}
		var store spend.Store
		var known map[string]spend.KeyInfo
		noStoreYet := embeddedStoreAbsent(cfg)
		storeErr := error(nil)
		if !noStoreYet {
			if store, storeErr = openExistingStore(ctx, cfg, "keys list"); storeErr == nil {
				defer store.Close()
				known, storeErr = keysByID(ctx, store)
			}
		}
		var problems []string
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tCOMMITMENT (H, base64 SEC1)\tSPENT\tSTATE")
		for _, k := range keys.Keys() {
			spent, state := "-", "-"
			if store != nil && storeErr == nil {
				info, ok := known[k.ID()]
				state = keyState(info, ok)
				switch n, err := store.Count(ctx, k.ID()); {
				case err == nil:
					spent = fmt.Sprint(n)
				case errors.Is(err, spend.ErrUnknownKey):
					spent = "0 (no storage yet)"
				default:
					spent = "error: " + err.Error()
				}
				if ok && (!info.RetiredAt.IsZero() || !info.HasStorage) {
					problems = append(problems, fmt.Sprintf("key %s: %s", k.ID(), state))
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.ID(), base64.StdEncoding.EncodeToString(k.Commitment()), spent, state)
		}
		fmt.Fprintf(w, "\nG (base point): %s\n", base64.StdEncoding.EncodeToString(verify.BasePoint()))
		if noStoreYet {
			fmt.Fprintf(w, "no embedded store in %s yet: nothing spent (ppredeem serve creates it at its first start)\n", cfg.DataDir)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if storeErr != nil {
			return fmt.Errorf("spent counts unavailable: %w", storeErr)
		}
		if len(problems) > 0 {
			return fmt.Errorf("serve would refuse these configured keys:\n  %s", strings.Join(problems, "\n  "))
		}
		return nil
	}
	return cmd
}

// keysByID lists what the store knows of every key.
func keysByID(ctx context.Context, store spend.Store) (map[string]spend.KeyInfo, error) {
	infos, err := store.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]spend.KeyInfo, len(infos))
	for _, k := range infos {
		out[k.ID] = k
	}
	return out, nil
}

// keyState describes a key as the store knows it (known: the store has
// seen it).
func keyState(k spend.KeyInfo, known bool) string {
	switch {
	case !known:
		return "new: its storage is made when a server starts with it"
	case !k.RetiredAt.IsZero():
		return "RETIRED at " + k.RetiredAt.Format(time.RFC3339) + ": it must never serve again; remove it from the configuration"
	case !k.HasStorage:
		return "RECORDS MISSING: its storage is gone; restore it from a backup (ppredeem check says how)"
	case len(k.Holds) == 0:
		return "live, held by no running server"
	}
	return fmt.Sprintf("live, held by %d running server(s)", len(k.Holds))
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

// openExistingStore opens the configured store as it is, never creating
// one (an embedded store opens with BoltConfig.MustExist). what names the
// command, for the message when a running server holds the embedded
// store's file.
func openExistingStore(ctx context.Context, cfg *config.Config, what string) (spend.Store, error) {
	if cfg.DatabaseURL != "" {
		return openStore(ctx, cfg, nil)
	}
	path := boltPath(cfg)
	b, err := spend.OpenBolt(spend.BoltConfig{Path: path, MustExist: true, SpendTimeout: cfg.SpendTimeout})
	if errors.Is(err, spend.ErrStoreInUse) {
		return nil, fmt.Errorf("%s cannot open the embedded store while a server runs on it: %w", what, err)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	return b, nil
}

// embeddedStoreAbsent reports whether cfg selects the embedded store and
// its data directory is missing or empty: no store was ever created there.
func embeddedStoreAbsent(cfg *config.Config) bool {
	if cfg.DatabaseURL != "" {
		return false
	}
	entries, err := os.ReadDir(cfg.DataDir)
	return errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0)
}

func newKeysRetireCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retire KEY-ID [--keys <serving keys>] [--database-url DSN | --data-dir DIR]",
		Short: "Delete every spent record of a key no running server holds, and tombstone it",
		Long: `Delete every spent record of a key no running server holds, in one step
(Postgres: detach and drop the key's partition; embedded store: delete its
bucket), and keep a tombstone: the key can never serve again, and a server
configured with it refuses to start or reload.

Every running server holds the keys it serves in the store, renewed every 10s
and lapsing 30s after a server dies; retire refuses a held key and names the
servers. Remove the key from their configuration and reload them (SIGHUP), or
stop them, then retire it. With --keys (the serving configuration), retire
also refuses a key that list still holds. The embedded store's file is locked
by its running server: stop the server first.`,
		Args: cobra.ExactArgs(1),
	}
	loader := config.Bind(cmd.Flags(), "keys", "database_url", "data_dir")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		keyID := args[0]
		if !spend.ValidKeyID(keyID) {
			return fmt.Errorf("%q is not a key ID: want 16 lowercase hex characters (see ppredeem keys list)", keyID)
		}
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		if len(cfg.Keys) > 0 {
			ring, err := loadKeyring(cfg)
			if err != nil {
				return err
			}
			if slices.Contains(ring.keyIDs(), keyID) {
				return fmt.Errorf("refusing to retire %s: the configuration still holds this key, so its tokens still verify; remove it from --keys and reload every server first", keyID)
			}
		}
		store, err := openExistingStore(ctx, cfg, "keys retire")
		if err != nil {
			return err
		}
		defer store.Close()
		n, countErr := store.Count(ctx, keyID)
		if err := store.Retire(ctx, keyID); err != nil {
			return fmt.Errorf("retire %s: %w", keyID, err)
		}
		id, _ := store.Identity(ctx)
		dropped := ""
		if countErr == nil {
			dropped = fmt.Sprintf(": dropped %d spent records", n)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "retired %s%s; store %s keeps its tombstone: the key can never serve again\n", keyID, dropped, id.ID)
		return nil
	}
	return cmd
}
