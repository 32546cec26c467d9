package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Gateway holds the settings only `ppredeem gateway` reads. Their keys all
// start with gateway_, so one config file can serve both commands; the
// gateway's command line drops the prefix (--listen for gateway_listen, see
// BindRenamed). The gateway also reads the shared settings log_format,
// log_level, max_header_bytes, max_inflight_body_bytes, memory_limit_bytes,
// the read/write/idle/shutdown timeouts and drain_delay.
type Gateway struct {
	Listen         string        `mapstructure:"gateway_listen"`
	AdminListen    string        `mapstructure:"gateway_admin_listen"`
	Upstream       string        `mapstructure:"gateway_upstream"`
	RequestTimeout time.Duration `mapstructure:"gateway_request_timeout"`
	MaxBodyBytes   int64         `mapstructure:"gateway_max_body_bytes"`
}

// MaxGatewayBodyBytes bounds gateway_max_body_bytes: the gateway's largest
// legitimate request (a 4096-bit PEM key, or a pass signed by one) is a few
// KiB, and every body is read into memory before anything else happens.
const MaxGatewayBodyBytes = 1 << 20

// ValidateGateway checks everything `ppredeem gateway` needs, so that a bad
// setting stops it before it listens.
func (c *Config) ValidateGateway() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	g := c.Gateway
	checkListeners(add, "gateway_listen", g.Listen, "gateway_admin_listen", g.AdminListen)
	if err := checkUpstream(g.Upstream); err != nil {
		add("gateway_upstream: %v", err)
	}
	c.validateLogging(add)
	if g.MaxBodyBytes <= 0 || g.MaxBodyBytes > MaxGatewayBodyBytes {
		add("gateway_max_body_bytes: must be between 1 and %d, got %d", MaxGatewayBodyBytes, g.MaxBodyBytes)
	}
	c.validateMemory(add, "gateway_max_body_bytes", g.MaxBodyBytes)
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"gateway_request_timeout", g.RequestTimeout},
		{"read_header_timeout", c.ReadHeaderTimeout},
		{"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout},
		{"idle_timeout", c.IdleTimeout},
		{"shutdown_timeout", c.ShutdownTimeout},
	} {
		if d.val <= 0 {
			add("%s: must be a positive duration, got %s", d.key, d.val)
		}
	}
	// A request that may outlive the time to write its answer would end
	// with the platform told nothing, or be cut off by shutdown.
	if g.RequestTimeout > 0 && c.WriteTimeout > 0 && g.RequestTimeout >= c.WriteTimeout {
		add("gateway_request_timeout (%s) must be shorter than write_timeout (%s)", g.RequestTimeout, c.WriteTimeout)
	}
	if g.RequestTimeout > 0 && c.ShutdownTimeout > 0 && g.RequestTimeout >= c.ShutdownTimeout {
		add("gateway_request_timeout (%s) must be shorter than shutdown_timeout (%s)", g.RequestTimeout, c.ShutdownTimeout)
	}
	if c.DrainDelay < 0 {
		add("drain_delay: must not be negative, got %s", c.DrainDelay)
	}
	return errors.Join(errs...)
}

// checkUpstream accepts an http or https base URL with a host and nothing
// that would be lost or leaked when paths are appended to it: no user
// information (it would end up in logs), query or fragment.
func checkUpstream(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: the scheme must be http or https", raw)
	case u.Host == "":
		return fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return errors.New("the URL must not hold credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("%q: a base URL takes no query or fragment", raw)
	}
	return nil
}
