package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/rpc/client"
)

// maxCommitmentsFile bounds a --commitments file.
const maxCommitmentsFile = 1 << 20

// issuedLine is one line of `ppredeem issue`'s output.
type issuedLine struct {
	Token    string          `json:"token"`    // standard base64 of t
	N        string          `json:"N"`        // standard base64 of SEC1 uncompressed N
	Bindings []string        `json:"bindings"` // what Redeem binds the token to
	Redeem   json.RawMessage `json:"redeem"`   // the JSON-RPC request, ready to POST
}

func newIssueCommand() *cobra.Command {
	var (
		target, attesterKey, keyFile, commitments string
		count                                     int
		bindings                                  []string
		form                                      bool
		timeout                                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "issue [--url URL] [--attester-key KEY | --attester-key-file FILE] [--count N] [--commitments URL|FILE] [--bindings B]...",
		Short: "Get tokens from a legacy Privacy Pass issuer and print each with a ready-to-POST redemption",
		Long: `Get tokens from a legacy Privacy Pass issuer and print each with a ready-to-POST redemption.

The client does what the browser extension does: it draws --count random
tokens, blinds them, POSTs them to --url (ppredeem's /api/issue), checks the
issuer's batch DLEQ proof against the commitment of the key that signed, and
unblinds the signatures. Nothing is printed unless the proof verifies.

The commitments come from --commitments, a URL or a file in the shape of
GET /api/commitments; by default from /api/commitments on --url's server.

Each token is one JSON line on stdout:

  {"token":"<b64 t>","N":"<b64 N>","bindings":[...],"redeem":{<JSON-RPC request>}}

"redeem" redeems the token for the --bindings given (repeat the flag for
each binding, in order), e.g.

  ppredeem issue --count 1 --bindings www.example.com --bindings "GET /" |
    jq -c .redeem | curl -s --data-binary @- http://127.0.0.1:8080/api/redeem

token and N are the token's secrets: whoever holds them can redeem it once.
The attester key is better passed in a file (--attester-key-file) than on
the command line, where other users of the machine can see it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 1 || count > client.MaxIssueTokens {
				return fmt.Errorf("--count %d: want 1 to %d", count, client.MaxIssueTokens)
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, got %s", timeout)
			}
			issueURL, redeemURL, err := issueEndpoints(target)
			if err != nil {
				return fmt.Errorf("--url: %w", err)
			}
			key, err := attesterKeyOf(attesterKey, keyFile)
			if err != nil {
				return err
			}
			for _, b := range bindings { // checked before tokens are issued for nothing
				if !utf8.ValidString(b) {
					return errors.New("--bindings: a binding is not valid UTF-8")
				}
			}
			c, err := client.New(redeemURL, nil)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			opts := &client.IssueOptions{Endpoint: issueURL, AttesterKey: key, Form: form}
			if opts.Commitments, opts.CommitmentsURL, err = commitmentsOf(commitments); err != nil {
				return fmt.Errorf("--commitments: %w", err)
			}
			tokens, err := c.Issue(ctx, count, opts)
			if err != nil {
				return err
			}
			if bindings == nil {
				bindings = []string{}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, tok := range tokens {
				req, err := tok.RedeemRequest(bindings, nil)
				if err != nil {
					return fmt.Errorf("--bindings: %w", err)
				}
				line := issuedLine{
					Token:    base64.StdEncoding.EncodeToString(tok.Input()),
					N:        base64.StdEncoding.EncodeToString(tok.SignedPoint()),
					Bindings: bindings,
					Redeem:   req,
				}
				if err := enc.Encode(line); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", "http://127.0.0.1:8080"+client.DefaultIssuePath, "issue endpoint (an URL without a path gets "+client.DefaultIssuePath+")")
	f.StringVar(&attesterKey, "attester-key", "", "attester key, sent as Authorization: Bearer <key>")
	f.StringVar(&keyFile, "attester-key-file", "", "file holding the attester key (surrounding whitespace ignored)")
	f.IntVar(&count, "count", 1, "number of tokens to issue in one request")
	f.StringVar(&commitments, "commitments", "", "URL or file of the issuer's commitments (default: "+client.DefaultCommitmentsPath+" on --url's server)")
	f.StringArrayVar(&bindings, "bindings", nil, "a binding of the printed redemption request; repeat for each, in order")
	f.BoolVar(&form, "form", false, "send the form request the browser extension sends (blinded-tokens=...) instead of JSON")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

// issueEndpoints returns the issue URL (raw, or with DefaultIssuePath when
// it has no path) and the redemption endpoint on the same origin.
func issueEndpoints(raw string) (issue, redeem string, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = client.DefaultIssuePath
	}
	issue = u.String()
	u.Path, u.RawPath, u.RawQuery, u.Fragment = client.DefaultPath, "", "", ""
	return issue, u.String(), nil
}

// attesterKeyOf is the key of --attester-key or of the file of
// --attester-key-file, at most one of them.
func attesterKeyOf(key, file string) (string, error) {
	switch {
	case key != "" && file != "":
		return "", errors.New("--attester-key and --attester-key-file exclude each other")
	case file == "":
		return key, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--attester-key-file: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("--attester-key-file %s is empty", file)
	}
	return k, nil
}

// commitmentsOf reads --commitments: an http(s) URL is fetched by Issue,
// anything else is a file read now; empty leaves the default.
func commitmentsOf(arg string) ([]client.Commitment, string, error) {
	if arg == "" {
		return nil, "", nil
	}
	if u, err := url.Parse(arg); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return nil, arg, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCommitmentsFile+1))
	if err != nil {
		return nil, "", err
	}
	if len(b) > maxCommitmentsFile {
		return nil, "", fmt.Errorf("%s is larger than 1 MiB", arg)
	}
	cs, err := client.ParseCommitments(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", arg, err)
	}
	return cs, "", nil
}
