package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
)

// maxHealthBody is how much of a failing /readyz answer the healthcheck
// repeats: the server's answers are one short JSON object, and Docker keeps
// only the last 4 KiB of a probe's output anyway.
const maxHealthBody = 512

func newHealthcheckCommand() *cobra.Command {
	var (
		target  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck [--url URL]",
		Short: "GET /readyz of the local server; exit 0 when it answers 200, 1 otherwise",
		Long: `GET /readyz of the local server; exit 0 when it answers 200, 1 otherwise.

Without --url the address is serve's "listen" setting, read the same way serve
reads it (--listen, PPREDEEM_LISTEN, the config file, the default), so a
container's HEALTHCHECK follows the configured port. A wildcard host
(0.0.0.0, [::] or none) is probed on the loopback address of its family.
--url names any other endpoint, e.g. http://127.0.0.1:8081/readyz for the
gateway. Made for images without a shell or curl (Docker HEALTHCHECK exec
form); no proxy is used and redirects are not followed.`,
		Args: cobra.NoArgs,
	}
	loader := config.Bind(cmd.Flags(), "listen")
	cmd.Flags().StringVar(&target, "url", "", "probe this URL instead of /readyz on the listen address")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "give up after this long (keep it below the HEALTHCHECK --timeout)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if timeout <= 0 {
			return fmt.Errorf("--timeout must be positive, got %s", timeout)
		}
		if target == "" {
			cfg, err := loader.Load()
			if err != nil {
				return err
			}
			if target, err = readyURL(cfg.Listen); err != nil {
				return fmt.Errorf("listen: %w", err)
			}
		} else if err := checkProbeURL(target); err != nil {
			return fmt.Errorf("--url: %w", err)
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		status, err := probe(ctx, target)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", target, status)
		return nil
	}
	return cmd
}

// readyURL is the /readyz URL of a server listening on listen (host:port).
func readyURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port", listen)
	}
	if port == "" || port == "0" {
		return "", fmt.Errorf("%q has no fixed port to probe", listen)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

func checkProbeURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return nil
}

// errRedirect stops the client at the first redirect: a probe reports what
// the named endpoint answers, not what another one does.
var errRedirect = errors.New("redirects are not followed")

// probe GETs target and returns its status when it is 200; any other
// answer or failure is an error that says what came back.
func probe(ctx context.Context, target string) (string, error) {
	client := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errRedirect
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("not ready: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody))
	if err != nil {
		return "", fmt.Errorf("not ready: %s: reading the answer: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("not ready: %s answered %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp.Status, nil
}
