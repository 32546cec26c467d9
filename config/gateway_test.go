package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

var gatewayFlags = map[string]string{
	"gateway_listen":          "listen",
	"gateway_upstream":        "upstream",
	"gateway_request_timeout": "request-timeout",
}

func loadGateway(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("gateway", pflag.ContinueOnError)
	l := BindRenamed(fs, gatewayFlags, "gateway_listen", "gateway_upstream", "gateway_request_timeout", "write_timeout")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return l.Load()
}

func TestGatewayDefaults(t *testing.T) {
	c, err := loadGateway(t)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gateway
	if g.Listen != "127.0.0.1:8081" || g.Upstream != "http://127.0.0.1:8080" || g.AdminListen != "" ||
		g.RequestTimeout != 10*time.Second || g.MaxBodyBytes != 64<<10 {
		t.Fatalf("unexpected gateway defaults: %+v", g)
	}
	if err := c.ValidateGateway(); err != nil {
		t.Fatalf("the defaults must validate: %v", err)
	}
}

// TestBindRenamed: the renamed flag sets the gateway_ key; the environment
// variable and the config file keep the key's own spelling, with the usual
// precedence.
func TestBindRenamed(t *testing.T) {
	file := writeFile(t, "g.yaml", "gateway_listen: 127.0.0.1:2001\ngateway_upstream: http://file:1\nlisten: 127.0.0.1:9999\n")
	c, err := loadGateway(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Listen != "127.0.0.1:2001" || c.Gateway.Upstream != "http://file:1" || c.Listen != "127.0.0.1:9999" {
		t.Fatalf("file values: %+v", c)
	}
	t.Setenv("PPREDEEM_GATEWAY_LISTEN", "127.0.0.1:2002")
	t.Setenv("PPREDEEM_GATEWAY_UPSTREAM", "http://env:2")
	c, err = loadGateway(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Listen != "127.0.0.1:2002" || c.Gateway.Upstream != "http://env:2" {
		t.Fatalf("env must beat file: %+v", c.Gateway)
	}
	c, err = loadGateway(t, "--config", file, "--listen", "127.0.0.1:2003", "--upstream", "https://flag:3/base", "--request-timeout", "3s")
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway.Listen != "127.0.0.1:2003" || c.Gateway.Upstream != "https://flag:3/base" || c.Gateway.RequestTimeout != 3*time.Second {
		t.Fatalf("flag must beat env: %+v", c.Gateway)
	}
	if c.Listen != "127.0.0.1:9999" {
		t.Fatalf("--listen on the gateway must not touch serve's listen: %q", c.Listen)
	}

	fs := pflag.NewFlagSet("gateway", pflag.ContinueOnError)
	BindRenamed(fs, map[string]string{"gateway_listen": "listen"}, "gateway_listen", "gateway_upstream")
	if fs.Lookup("gateway-listen") != nil || fs.Lookup("listen") == nil {
		t.Fatal("the renamed flag must replace the default spelling")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("renaming a setting that is not bound must panic")
		}
	}()
	BindRenamed(pflag.NewFlagSet("x", pflag.ContinueOnError), map[string]string{"gateway_listen": "listen"}, "gateway_upstream")
}

func TestValidateGateway(t *testing.T) {
	good := func() *Config {
		c, err := loadGateway(t)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := map[string]func(c *Config){
		"gateway_listen":               func(c *Config) { c.Gateway.Listen = "nope" },
		"gateway_admin_listen must":    func(c *Config) { c.Gateway.AdminListen = c.Gateway.Listen },
		"gateway_admin_listen: ":       func(c *Config) { c.Gateway.AdminListen = "x" },
		"gateway_upstream: \"ftp":      func(c *Config) { c.Gateway.Upstream = "ftp://x" },
		"gateway_upstream: \"http:///": func(c *Config) { c.Gateway.Upstream = "http:///path" },
		"must not hold credentials":    func(c *Config) { c.Gateway.Upstream = "http://user:pw@host" },
		"no query or fragment":         func(c *Config) { c.Gateway.Upstream = "http://host/?a=b" },
		"gateway_upstream: not a URL":  func(c *Config) { c.Gateway.Upstream = "http://[::1" },
		"gateway_max_body_bytes":       func(c *Config) { c.Gateway.MaxBodyBytes = 0 },
		"between 1 and":                func(c *Config) { c.Gateway.MaxBodyBytes = MaxGatewayBodyBytes + 1 },
		"gateway_request_timeout:":     func(c *Config) { c.Gateway.RequestTimeout = 0 },
		"shorter than write_timeout":   func(c *Config) { c.Gateway.RequestTimeout = c.WriteTimeout },
		"shorter than shutdown":        func(c *Config) { c.WriteTimeout, c.ShutdownTimeout = time.Minute, c.Gateway.RequestTimeout },
		"log_format":                   func(c *Config) { c.LogFormat = "xml" },
		"log_level":                    func(c *Config) { c.LogLevel = "loud" },
		"max_header_bytes":             func(c *Config) { c.MaxHeaderBytes = 0 },
		"max_inflight_body_bytes: must be at least twice gateway_max_body_bytes (131072)": func(c *Config) {
			c.MaxInflightBodyBytes = 2*c.Gateway.MaxBodyBytes - 1
		},
		"memory_limit_bytes": func(c *Config) { c.MemoryLimitBytes = 1 },
		"idle_timeout":       func(c *Config) { c.IdleTimeout = 0 },
		"drain_delay":        func(c *Config) { c.DrainDelay = -time.Second },
	}
	for want, mutate := range cases {
		c := good()
		mutate(c)
		err := c.ValidateGateway()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: the error repeats a credential: %v", want, err)
		}
	}
	// The gateway does not need serve's keys.
	if err := good().ValidateGateway(); err != nil {
		t.Fatal(err)
	}
}
