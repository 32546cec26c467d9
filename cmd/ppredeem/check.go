package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
)

func newCheckCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check [--database-url DSN | --data-dir DIR] [--keys a.pem,...] [--json]",
		Short: "Verify the spent-token store's consistency and show its identity, keys, holds and retirements",
		Long: `Verify the spent-token store's consistency and show its identity, keys, holds
and retirements.

It opens the existing store, never creating one, and reads all of it: the
identity; every key the store has seen, live or retired, with its spent
tokens and the running servers that hold it; then the store's own check
(embedded store: bbolt's page-by-page consistency check, the key registry
against the buckets, the identity against the data directory's marker;
Postgres: the schema version, the identity, the key registry against the
partitions, and stray tables named like a partition). With --keys (the serving
configuration) it also reports a configured key that is retired or whose
records are missing, which serve would refuse.

The embedded store's file is locked by its running server: check it with the
server stopped, or check a backup (--data-dir of a directory holding the copy
as spent.db). The exit status is 1 on any problem; --json prints the same
report as one JSON object.`,
		Args: cobra.NoArgs,
	}
	loader := config.Bind(cmd.Flags(), "database_url", "data_dir", "keys")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		r := checkStore(cmd.Context(), cfg)
		if asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(r); err != nil {
				return err
			}
		} else if err := r.print(cmd.OutOrStdout()); err != nil {
			return err
		}
		if !r.OK {
			return fmt.Errorf("check: %d problem(s) found", len(r.Problems))
		}
		return nil
	}
	return cmd
}

// checkReport is what `ppredeem check` finds; its JSON form is --json.
type checkReport struct {
	Store    string         `json:"store"` // "postgres" or "embedded:<path>"
	Identity *checkIdentity `json:"identity,omitempty"`
	Keys     []checkKey     `json:"keys"`
	Problems []string       `json:"problems"`
	OK       bool           `json:"ok"`
}

type checkIdentity struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

type checkKey struct {
	ID         string      `json:"id"`
	State      string      `json:"state"` // live, retired, records_missing
	PreparedAt *time.Time  `json:"prepared_at,omitempty"`
	RetiredAt  *time.Time  `json:"retired_at,omitempty"`
	Spent      *int64      `json:"spent,omitempty"` // with storage only
	Holds      []checkHold `json:"holds"`
	Configured bool        `json:"configured"` // named by --keys
}

type checkHold struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// checkStore builds the report; every failure becomes a problem in it.
func checkStore(ctx context.Context, cfg *config.Config) *checkReport {
	r := &checkReport{Store: storeName(cfg), Keys: []checkKey{}, Problems: []string{}}
	defer func() { r.OK = len(r.Problems) == 0 }()
	var configured []string
	if len(cfg.Keys) > 0 {
		ring, err := loadKeyring(cfg)
		if err != nil {
			r.problem(err)
			return r
		}
		configured = ring.keyIDs()
	}
	if embeddedStoreAbsent(cfg) {
		r.problem(fmt.Errorf("no embedded store in %s: the directory is missing or empty (ppredeem serve creates a store there at its first start)", cfg.DataDir))
		return r
	}
	store, err := openExistingStore(ctx, cfg, "check")
	if err != nil {
		r.problem(err)
		return r
	}
	defer store.Close()
	id, err := store.Identity(ctx)
	if err != nil {
		r.problem(err)
		return r
	}
	r.Identity = &checkIdentity{ID: id.ID, CreatedAt: id.CreatedAt}
	infos, err := store.Keys(ctx)
	if err != nil {
		r.problem(err)
		return r
	}
	seen := map[string]bool{}
	for _, k := range infos {
		seen[k.ID] = true
		ck := checkKey{ID: k.ID, State: "live", Holds: []checkHold{}, Configured: slices.Contains(configured, k.ID)}
		if !k.PreparedAt.IsZero() {
			ck.PreparedAt = &k.PreparedAt
		}
		switch {
		case !k.RetiredAt.IsZero():
			ck.State, ck.RetiredAt = "retired", &k.RetiredAt
		case !k.HasStorage:
			ck.State = "records_missing"
		}
		if k.HasStorage {
			n, err := store.Count(ctx, k.ID)
			if err != nil {
				r.problem(fmt.Errorf("counting the spent tokens of key %s: %w", k.ID, err))
			} else {
				ck.Spent = &n
			}
		}
		for _, h := range k.Holds {
			ck.Holds = append(ck.Holds, checkHold{Holder: h.Holder, Expires: h.Expires})
		}
		if ck.Configured && ck.State == "retired" {
			r.problem(fmt.Errorf("configured key %s was retired at %s: serve refuses it; remove it from the configuration and use a new key (ppredeem keys generate)",
				k.ID, k.RetiredAt.Format(time.RFC3339)))
		}
		r.Keys = append(r.Keys, ck)
	}
	for _, idc := range configured {
		if !seen[idc] {
			r.Keys = append(r.Keys, checkKey{ID: idc, State: "new", Holds: []checkHold{}, Configured: true})
		}
	}
	// The store's check also reports a key whose records are missing.
	if err := store.Check(ctx); err != nil {
		r.problem(err)
	}
	return r
}

// problem adds err to the report: each problem of a joined error (the
// store's Check lists them so) on its own.
func (r *checkReport) problem(err error) {
	if joined, ok := errors.Unwrap(err).(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			r.Problems = append(r.Problems, e.Error())
		}
		return
	}
	r.Problems = append(r.Problems, err.Error())
}

func (r *checkReport) print(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "store:\t%s\n", r.Store)
	if r.Identity != nil {
		fmt.Fprintf(w, "store id:\t%s\n", r.Identity.ID)
		fmt.Fprintf(w, "created at:\t%s\n", r.Identity.CreatedAt.Format(time.RFC3339))
	}
	if len(r.Keys) > 0 {
		fmt.Fprintln(w, "\nKEY\tSTATE\tPREPARED\tRETIRED\tSPENT\tHELD BY (until)\tCONFIGURED")
		for _, k := range r.Keys {
			var holds []string
			for _, h := range k.Holds {
				holds = append(holds, fmt.Sprintf("%s (%s)", h.Holder, h.Expires.Format(time.RFC3339)))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.State, timeOrDash(k.PreparedAt), timeOrDash(k.RetiredAt),
				countOrDash(k.Spent), orDash(strings.Join(holds, ", ")), yesNo(k.Configured))
		}
	}
	if r.OK {
		fmt.Fprintln(w, "\ncheck:\tok")
	} else {
		fmt.Fprintf(w, "\ncheck:\t%d problem(s)\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - %s\n", strings.ReplaceAll(p, "\n", "\n    "))
		}
	}
	return w.Flush()
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func countOrDash(n *int64) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// boltPath is the embedded store's file in cfg's data directory.
func boltPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, boltFile) }
