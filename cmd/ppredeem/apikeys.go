package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/rpc/relay"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify/pass"
)

// generateRSAKey writes a new Privacy Pass issuer key to out (mode 0600, never over an
// existing file) and prints its token-key-id and store ID.
func generateRSAKey(w io.Writer, out string, bits int) error {
	key, err := pass.GenerateKey(bits)
	if err != nil {
		return err
	}
	pemText, err := key.MarshalPEM()
	if err != nil {
		return err
	}
	defer clear(pemText)
	if err := writeNewFile(out, pemText); err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %s (RSA %d bits)\n", out, key.Bits())
	fmt.Fprintf(w, "token-key-id: %s\n", key.TokenKeyID())
	fmt.Fprintf(w, "id:           %s\n", key.ID())
	return nil
}

// writeNewFile writes data to a new file of mode 0600; an existing file is an error
// (O_EXCL: a key that may be in use is never overwritten).
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	return nil
}

func newAPIKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikeys",
		Short: "Make API and verifier keys of the relay provider API, and show the passes billed per API key",
		Long: `Make API and verifier keys of the relay provider API, and show the passes billed
per API key.

A key is shown once, when it is made; the server is configured with its
SHA-256 only (api_keys or verifier_keys: NAME=SHA256HEX). To revoke a key,
remove its entry and reload the servers (SIGHUP).`,
	}
	cmd.AddCommand(newAPIKeysGenerateCommand(), newAPIKeysUsageCommand())
	return cmd
}

// apiKeyPrefix starts every key apikeys generate makes, so that one found in a log or a
// repository is recognised.
const apiKeyPrefix = "ppk_"

func newAPIKeysGenerateCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "generate --name NAME [--json]",
		Short: "Print a new random key once, and the NAME=SHA256HEX entry that configures it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !config.ValidName(name) {
				return errors.New("--name is required: 1 to 64 of A-Z a-z 0-9 . _ -")
			}
			var b [32]byte
			_, _ = rand.Read(b[:])
			key := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
			sum := sha256.Sum256([]byte(key))
			hash := hex.EncodeToString(sum[:])
			w := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(w).Encode(map[string]string{"name": name, "key": key, "hash": hash})
			}
			fmt.Fprintf(w, "key:   %s\n", key)
			fmt.Fprintf(w, "entry: %s=%s\n", name, hash)
			fmt.Fprintln(w, "The key is shown only now: give it to its holder. Add the entry to api_keys (or verifier_keys) and reload the servers.")
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the key's name (billing and logs)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"name","key","hash"}`)
	return cmd
}

func newAPIKeysUsageCommand() *cobra.Command {
	var admin string
	cmd := &cobra.Command{
		Use:   "usage [--admin URL | --database-url DSN | --data-dir DIR]",
		Short: "Show the Privacy Passes billed per API key and claim type",
		Long: `Show the Privacy Passes billed per API key and claim type.

With --admin, ask a running server's admin listener (GET /usage): this works on
both stores while the server runs. Without it, read the store: Postgres at any
time; the embedded store only while no server holds its file.`,
		Args: cobra.NoArgs,
	}
	loader := config.Bind(cmd.Flags(), "database_url", "data_dir")
	cmd.Flags().StringVar(&admin, "admin", "", "base URL of a running server's admin listener, e.g. http://127.0.0.1:9090")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var counts []spend.UsageCount
		var err error
		if admin != "" {
			counts, err = usageFromAdmin(cmd.Context(), admin)
		} else {
			counts, err = usageFromStore(cmd.Context(), loader)
		}
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "API KEY\tCLAIM TYPE\tPASSES")
		for _, c := range counts {
			if name, ok := strings.CutPrefix(c.Subject, relay.UsageSubjectPrefix); ok {
				fmt.Fprintf(w, "%s\t%s\t%d\n", name, c.Item, c.Count)
			}
		}
		return w.Flush()
	}
	return cmd
}

func usageFromAdmin(ctx context.Context, base string) ([]spend.UsageCount, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + UsagePath)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--admin %q is not an http(s) URL", base)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the admin listener: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("the admin listener answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	var body usageBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("the admin listener's answer: %w", err)
	}
	out := make([]spend.UsageCount, len(body.Usage))
	for i, r := range body.Usage {
		out[i] = spend.UsageCount(r)
	}
	return out, nil
}

func usageFromStore(ctx context.Context, loader *config.Loader) ([]spend.UsageCount, error) {
	cfg, err := loader.Load()
	if err != nil {
		return nil, err
	}
	store, err := openExistingStore(ctx, cfg, "apikeys usage")
	if err != nil {
		if errors.Is(err, spend.ErrStoreInUse) {
			return nil, fmt.Errorf("%w; ask the running server instead: --admin http://<its admin_listen>", err)
		}
		return nil, err
	}
	defer store.Close()
	counter, ok := store.(spend.UsageCounter)
	if !ok {
		return nil, fmt.Errorf("the %T store keeps no usage", store)
	}
	return counter.Usage(ctx)
}

// relaySecretPurposes names the rotatable secrets of the relay provider API on the command
// line.
var relaySecretPurposes = map[string]string{"challenge-mac": secretChallengeMAC, "access-token": secretAccessToken}

func newRotateRelaySecretCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate-relay-secret challenge-mac|access-token [--database-url DSN | --data-dir DIR]",
		Short: "Add a new shared secret of the relay provider API to the store; servers use it after a reload",
		Long: `Add a new shared secret of the relay provider API to the store.

challenge-mac is the key of the challenges' MAC, access-token the key that signs
relay-session access tokens. The newest secret signs, every older one still
verifies, so passes and tokens made before the rotation stay valid. Reload every
server (SIGHUP) to start signing with it. The embedded store's file serves one
process at a time: stop the server first.`,
		Args: cobra.ExactArgs(1),
	}
	loader := config.Bind(cmd.Flags(), "database_url", "data_dir")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		purpose, ok := relaySecretPurposes[args[0]]
		if !ok {
			return fmt.Errorf("%q: want challenge-mac or access-token", args[0])
		}
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		store, err := openExistingStore(cmd.Context(), cfg, "keys rotate-relay-secret")
		if err != nil {
			return err
		}
		defer store.Close()
		rs, ok := store.(spend.RelayStore)
		if !ok {
			return fmt.Errorf("the %T store keeps no relay secrets", store)
		}
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		if err := rs.AddRelaySecret(cmd.Context(), purpose, secret); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "added a new %s secret; reload every server (SIGHUP) to sign with it\n", args[0])
		return nil
	}
	return cmd
}
