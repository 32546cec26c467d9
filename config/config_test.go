package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func allKeys() []string {
	keys := make([]string, len(settings))
	for i, s := range settings {
		keys[i] = s.Key
	}
	return keys
}

func load(t *testing.T, args []string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	l := Bind(fs, allKeys()...)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return l.Load()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "./data" || c.SpendTimeout != 5*time.Second || c.MaxBodyBytes != 1<<20 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if err := c.ValidateServe(); err == nil || !strings.Contains(err.Error(), "keys") {
		t.Fatalf("defaults without keys must fail validation naming keys, got %v", err)
	}
}

func TestPrecedenceFlagEnvFile(t *testing.T) {
	file := writeFile(t, "c.yaml", "listen: 127.0.0.1:1001\ndatabase_url: postgres://file\nkeys: [f1.pem, f2.pem]\nspend_timeout: 7s\n")
	t.Setenv("PPREDEEM_CONFIG", file)

	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1001" || c.DatabaseURL != "postgres://file" || c.SpendTimeout != 7*time.Second {
		t.Fatalf("file values not applied: %+v", c)
	}
	// Relative to the file's directory (TestPathsInConfigFile).
	if dir := filepath.Dir(file); strings.Join(c.Keys, "|") != filepath.Join(dir, "f1.pem")+"|"+filepath.Join(dir, "f2.pem") {
		t.Fatalf("keys from file = %q", c.Keys)
	}

	t.Setenv("PPREDEEM_LISTEN", "127.0.0.1:1002")
	t.Setenv("PPREDEEM_KEYS", "e1.pem, e2.pem")
	c, err = load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1002" || strings.Join(c.Keys, "|") != "e1.pem|e2.pem" {
		t.Fatalf("env must beat file: %+v", c)
	}

	c, err = load(t, []string{"--listen", "127.0.0.1:1003", "--keys", "a.pem,b.pem", "--keys", "c.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1003" || strings.Join(c.Keys, "|") != "a.pem|b.pem|c.pem" {
		t.Fatalf("flag must beat env: %+v", c)
	}
	if c.DatabaseURL != "postgres://file" {
		t.Fatalf("unset flag must not hide the file value: %q", c.DatabaseURL)
	}
}

func TestEveryEnvVariableIsRead(t *testing.T) {
	for _, s := range settings {
		if s.Env() != "PPREDEEM_"+strings.ToUpper(s.Key) || s.Flag() != strings.ReplaceAll(s.Key, "_", "-") {
			t.Fatalf("setting %s spelled inconsistently", s.Key)
		}
	}
	t.Setenv("PPREDEEM_DATABASE_URL", "postgres://env")
	t.Setenv("PPREDEEM_MAX_BINDINGS", "7")
	t.Setenv("PPREDEEM_IDLE_TIMEOUT", "3s")
	t.Setenv("PPREDEEM_ADMIN_LISTEN", "127.0.0.1:9090")
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://env" || c.MaxBindings != 7 || c.IdleTimeout != 3*time.Second || c.AdminListen != "127.0.0.1:9090" {
		t.Fatalf("env not applied: %+v", c)
	}
}

func TestUnknownFileKeyIsAnError(t *testing.T) {
	file := writeFile(t, "c.yaml", "listen: 127.0.0.1:1001\ndatabse_url: postgres://typo\n")
	_, err := load(t, []string{"--config", file})
	if err == nil || !strings.Contains(err.Error(), "databse_url") {
		t.Fatalf("want an error naming the unknown key, got %v", err)
	}
}

func TestWrongTypeInFileIsAnError(t *testing.T) {
	file := writeFile(t, "c.yaml", "max_bindings: lots\n")
	if _, err := load(t, []string{"--config", file}); err == nil {
		t.Fatal("want an error for a non-integer max_bindings")
	}
}

func TestMissingConfigFileIsAnError(t *testing.T) {
	if _, err := load(t, []string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}); err == nil {
		t.Fatal("want an error for a missing config file")
	}
}

func TestValidateServe(t *testing.T) {
	good := func() *Config {
		c, err := load(t, []string{"--keys", "k.pem"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := good().ValidateServe(); err != nil {
		t.Fatalf("good config rejected: %v", err)
	}
	cases := map[string]func(c *Config){
		"listen":             func(c *Config) { c.Listen = "nope" },
		"admin_listen must":  func(c *Config) { c.AdminListen = c.Listen },
		"log_format":         func(c *Config) { c.LogFormat = "xml" },
		"log_level":          func(c *Config) { c.LogLevel = "loud" },
		"spend_timeout":      func(c *Config) { c.SpendTimeout = 0 },
		"max_body_bytes":     func(c *Config) { c.MaxBodyBytes = -1 },
		"data_dir":           func(c *Config) { c.DataDir = " " },
		"db_max_conns":       func(c *Config) { c.DBMaxConns = 0 },
		"max_batch_requests": func(c *Config) { c.MaxBatchRequests = 0 },
		"write_timeout":      func(c *Config) { c.SpendTimeout = c.WriteTimeout },
		"shutdown_timeout":   func(c *Config) { c.SpendTimeout, c.WriteTimeout = c.ShutdownTimeout, 2*c.ShutdownTimeout },
		"max_token_bytes":    func(c *Config) { c.MaxTokenBytes = 2048 },
		"max_header_bytes: must be at least 8192, got 8191": func(c *Config) { c.MaxHeaderBytes = MinHeaderBytes - 1 },
		"max_inflight_body_bytes: must be at least twice max_body_bytes (2097152), got 2097151": func(c *Config) {
			c.MaxInflightBodyBytes = 2*c.MaxBodyBytes - 1
		},
		"max_inflight_body_bytes: must be at least twice max_body_bytes (2097152), got 0": func(c *Config) { c.MaxInflightBodyBytes = 0 },
		"memory_limit_bytes: must be 0 (no limit) or at least four times max_inflight_body_bytes (67108864), got 67108863": func(c *Config) {
			c.MemoryLimitBytes = 4*c.MaxInflightBodyBytes - 1
		},
		"memory_limit_bytes: must be 0 (no limit) or at least four times max_inflight_body_bytes (67108864), got -1": func(c *Config) {
			c.MemoryLimitBytes = -1
		},
	}
	// The least values accepted.
	least := good()
	least.MaxHeaderBytes, least.MaxInflightBodyBytes = MinHeaderBytes, 2*least.MaxBodyBytes
	least.MemoryLimitBytes = 4 * least.MaxInflightBodyBytes
	if err := least.ValidateServe(); err != nil {
		t.Fatalf("the least values rejected: %v", err)
	}
	for want, mutate := range cases {
		c := good()
		mutate(c)
		err := c.ValidateServe()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

func TestValidateDatabase(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateDatabase(); err == nil {
		t.Fatal("empty database_url must be rejected")
	}
	c.DatabaseURL = "postgres://x"
	if err := c.ValidateDatabase(); err != nil {
		t.Fatal(err)
	}
}

// TestBareNumberIsNotADuration: `spend_timeout: 5` once decoded to 5ns and
// every spend failed. A bare number, in any file format or in the
// environment, is an error naming the key and the expected form.
func TestBareNumberIsNotADuration(t *testing.T) {
	for name, body := range map[string]string{
		"c.yaml": "spend_timeout: 5\n",
		"c.toml": "spend_timeout = 5\n",
		"c.json": `{"spend_timeout": 5}`,
	} {
		_, err := load(t, []string{"--config", writeFile(t, name, body)})
		if err == nil || !strings.Contains(err.Error(), "'spend_timeout' must be a duration") || !strings.Contains(err.Error(), `"5s"`) {
			t.Errorf("%s: got %v, want an error naming spend_timeout and the form \"5s\"", name, err)
		}
	}
	for _, body := range []string{"read_timeout: 1.5\n", "idle_timeout: '30'\n", "drain_delay: soon\n"} {
		if _, err := load(t, []string{"--config", writeFile(t, "c.yaml", body)}); err == nil || !strings.Contains(err.Error(), "must be a duration with a unit") {
			t.Errorf("%q: got %v, want a duration error", body, err)
		}
	}
	t.Setenv("PPREDEEM_SHUTDOWN_TIMEOUT", "30")
	if _, err := load(t, nil); err == nil || !strings.Contains(err.Error(), "'shutdown_timeout' must be a duration") || !strings.Contains(err.Error(), `"30s"`) {
		t.Errorf("env 30: got %v, want an error naming shutdown_timeout", err)
	}

	t.Setenv("PPREDEEM_SHUTDOWN_TIMEOUT", "30s")
	file := writeFile(t, "c.yaml", "spend_timeout: 250ms\nread_timeout: \"1m\"\n")
	c, err := load(t, []string{"--config", file, "--idle-timeout", "2m"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SpendTimeout != 250*time.Millisecond || c.ReadTimeout != time.Minute || c.IdleTimeout != 2*time.Minute || c.ShutdownTimeout != 30*time.Second {
		t.Fatalf("durations with units decoded as %v %v %v %v", c.SpendTimeout, c.ReadTimeout, c.IdleTimeout, c.ShutdownTimeout)
	}
}

// TestDurationMinimums: each timeout has a floor, so a unit mistyped ("5ms"
// for "5s") stops the server instead of failing every request.
func TestDurationMinimums(t *testing.T) {
	c, err := load(t, []string{"--keys", "k.pem", "--spend-timeout", "100ms", "--read-header-timeout", "1s",
		"--read-timeout", "1s", "--write-timeout", "1s", "--idle-timeout", "1s", "--shutdown-timeout", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateServe(); err != nil {
		t.Fatalf("timeouts at their minimums rejected: %v", err)
	}
	for flag, want := range map[string]string{
		"--spend-timeout":       "spend_timeout: must be at least 100ms, got 99ms",
		"--read-header-timeout": "read_header_timeout: must be at least 1s, got 99ms",
		"--read-timeout":        "read_timeout: must be at least 1s, got 99ms",
		"--write-timeout":       "write_timeout: must be at least 1s, got 99ms",
		"--idle-timeout":        "idle_timeout: must be at least 1s, got 99ms",
		"--shutdown-timeout":    "shutdown_timeout: must be at least 1s, got 99ms",
	} {
		c, err := load(t, []string{"--keys", "k.pem", flag, "99ms"})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ValidateServe(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s 99ms: got %v, want %q", flag, err, want)
		}
	}
}
