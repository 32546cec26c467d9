// Package config decodes and validates ppredeem's settings.
//
// Every setting has one name in three spellings, bound together here and
// nowhere else:
//
//	config-file key   database_url
//	flag              --database-url
//	environment       PPREDEEM_DATABASE_URL
//
// One exception: a command may drop a prefix from its own flags
// (BindRenamed): `ppredeem gateway --listen` is gateway_listen.
//
// Precedence is flag, then environment, then config file, then the default;
// Config.IsSet tells a setting given by any of the first three from one left
// at its default. A relative path in the config file (a setting of kind
// Path, Paths or NamedPaths: keys, data_dir, the files of relay_keys) is
// relative to the file's directory; from a flag or the environment it
// stays relative to the working directory.
// The config file (--config or PPREDEEM_CONFIG; YAML, TOML or JSON by
// extension) is decoded strictly: a key this package does not know is an
// error, so a typo never silently falls back to a default; a duration needs a
// unit ("5s", "500ms"), a bare number is an error. Validation happens
// in one place per command (ValidateServe and friends) before anything
// listens or connects.
//
// Reload (reload.go) loads again from the same flags, environment and
// config file, read anew: what SIGHUP does; Changed tells which settings
// differ between two loads.
//
// This package only decodes and validates; it opens no files but the config
// file and no connections.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// MaxTokenBytesLimit is the largest max_token_bytes allowed: the longest
// token the spent-token stores accept (spend.MaxTokenLen; a test in
// cmd/ppredeem keeps the two equal without config importing spend).
const MaxTokenBytesLimit = 1024

// EnvPrefix is the prefix of every environment variable ppredeem reads.
const EnvPrefix = "PPREDEEM_"

// Config is every setting of every command. Each command reads the fields it
// needs; the zero value is not useful, use Load.
type Config struct {
	Listen      string   `mapstructure:"listen"`
	AdminListen string   `mapstructure:"admin_listen"`
	DatabaseURL string   `mapstructure:"database_url"`
	DataDir     string   `mapstructure:"data_dir"`
	Keys        []string `mapstructure:"keys"`

	LogFormat string `mapstructure:"log_format"`
	LogLevel  string `mapstructure:"log_level"`

	DBMaxConns   int           `mapstructure:"db_max_conns"`
	SpendTimeout time.Duration `mapstructure:"spend_timeout"`
	SpendBatch   int           `mapstructure:"spend_batch"`

	MaxBodyBytes     int64 `mapstructure:"max_body_bytes"`
	MaxBatchRequests int   `mapstructure:"max_batch_requests"`
	MaxTokenBytes    int   `mapstructure:"max_token_bytes"`
	MaxBindings      int   `mapstructure:"max_bindings"`
	MaxBindingsBytes int   `mapstructure:"max_bindings_bytes"`
	MaxHeaderBytes   int   `mapstructure:"max_header_bytes"`

	MaxInflightBodyBytes int64 `mapstructure:"max_inflight_body_bytes"`
	MemoryLimitBytes     int64 `mapstructure:"memory_limit_bytes"`

	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	ShutdownTimeout   time.Duration `mapstructure:"shutdown_timeout"`
	DrainDelay        time.Duration `mapstructure:"drain_delay"`

	Gateway Gateway `mapstructure:",squash"` // the gateway_* settings (gateway.go)
	Issue   Issue   `mapstructure:",squash"` // the issuance settings (issue.go)
	Relay   Relay   `mapstructure:",squash"` // the relay provider API's settings (relay.go)

	// loader made this Config (nil for one built by hand): Reload loads
	// again from the same sources (reload.go).
	loader *Loader

	given map[string]bool // the settings given by a flag, the environment or the config file
}

// Setting describes one setting: its config-file key, default and meaning.
// The default's type is the setting's kind: string, []string, int, int64,
// time.Duration, Path (a file or directory), Paths (a list of them) or
// NamedPaths (a list of NAME=PATH).
type Setting struct {
	Key     string
	Default any
	Usage   string
}

// Flag is the command-line spelling of the setting.
func (s Setting) Flag() string { return strings.ReplaceAll(s.Key, "_", "-") }

// Env is the environment-variable spelling of the setting.
func (s Setting) Env() string { return EnvPrefix + strings.ToUpper(s.Key) }

// settings lists every setting, in the order the docs show them.
var settings = []Setting{
	{"listen", "127.0.0.1:8080", "address of the JSON-RPC listener (POST /api/redeem, /healthz, /readyz)"},
	{"admin_listen", "", "address of the admin listener (/metrics, /debug/pprof); empty disables it"},
	{"database_url", "", "Postgres DSN for spent tokens; empty uses the embedded store in data_dir"},
	{"data_dir", Path("./data"), "directory of the embedded spent-token store (used when database_url is empty)"},
	{"keys", Paths{}, "PEM files holding the redemption keys (comma-separated)"},
	{"log_format", "text", "log format: text or json"},
	{"log_level", "info", "log level: debug, info, warn or error"},
	{"db_max_conns", 16, "most Postgres connections in the pool"},
	{"spend_timeout", 5 * time.Second, "deadline of one spend, independent of the client's connection"},
	{"spend_batch", 256, "most spends written in one database round trip"},
	{"max_body_bytes", int64(1 << 20), "largest request body accepted"},
	{"max_batch_requests", 100, "most requests in one JSON-RPC batch"},
	{"max_token_bytes", 256, "longest token accepted"},
	{"max_bindings", 32, "most bindings in one redemption"},
	{"max_bindings_bytes", 16384, "largest total size of the bindings of one redemption"},
	{"max_header_bytes", 16384, "largest request line and header block accepted, in bytes (at least 8192)"},
	{"max_inflight_body_bytes", int64(16 << 20), "most request-body bytes held in memory at once, all requests together (at least twice the body limit)"},
	{"memory_limit_bytes", int64(0), "soft memory limit of the process (runtime/debug.SetMemoryLimit); 0 keeps GOMEMLIMIT, or none"},
	{"read_header_timeout", 5 * time.Second, "time allowed to read request headers"},
	{"read_timeout", 10 * time.Second, "time allowed to read a whole request"},
	{"write_timeout", 15 * time.Second, "time allowed to write a response"},
	{"idle_timeout", 60 * time.Second, "how long an idle keep-alive connection is kept"},
	{"shutdown_timeout", 20 * time.Second, "how long in-flight requests may take to finish on shutdown"},
	{"drain_delay", time.Duration(0), "on shutdown, how long /readyz fails while requests are still served, before the listener closes"},
	{"max_issue_tokens", 100, "most blinded tokens in one issue request (POST /api/issue)"},
	{"issue_keys", []string{}, "attester keys that may get tokens: NAME=SHA256HEX, the lowercase hex SHA-256 of the key (comma-separated)"},
	{"issue_open", false, "issue tokens to clients without an attester key, rate limited per client address (for trials)"},
	{"issue_open_per_hour", 300, "open issuance: tokens one client address may get per hour"},
	{"issue_open_burst", 100, "open issuance: tokens one client address may get at once (at least max_issue_tokens)"},
	{"trusted_proxies", []string{}, "reverse proxies (CIDR prefixes or addresses, comma-separated) whose X-Forwarded-For names the client of open issuance"},
	{"commitment_expiry", 7 * 24 * time.Hour, "how far after it is served the expiry of a commitment at GET /api/commitments lies"},
	{"gateway_listen", "127.0.0.1:8081", "address of the relay gateway's listener (POST /relays..., /healthz, /readyz)"},
	{"gateway_admin_listen", "", "address of the relay gateway's admin listener (/metrics); empty disables it"},
	{"gateway_upstream", "http://127.0.0.1:8080", "base URL of the provider API the relay gateway calls"},
	{"gateway_request_timeout", 10 * time.Second, "the most time one relay gateway request may take, upstream retries included"},
	{"gateway_max_body_bytes", int64(64 << 10), "largest request body the relay gateway accepts"},
}

func lookup(key string) (Setting, bool) {
	for _, s := range settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

// Loader binds flags, environment and config file for one command.
type Loader struct {
	v     *viper.Viper
	flags *pflag.FlagSet
	bound map[string]string // setting key → the name of its flag on this command
}

// Bind registers on flags a flag for each of the named settings and a
// --config flag, and binds every setting (named or not) to its environment
// variable and config-file key. It panics on an unknown name: that is a
// programming error, not an input error.
func Bind(flags *pflag.FlagSet, keys ...string) *Loader {
	return BindRenamed(flags, nil, keys...)
}

// BindRenamed is Bind for a command that names some settings' flags its own
// way: renamed maps a setting's key to the flag name on this command. Only
// the flag changes; the environment variable and the config-file key keep
// the setting's name. ppredeem gateway binds gateway_listen to --listen, so
// its listener is --listen, PPREDEEM_GATEWAY_LISTEN and gateway_listen. A
// renamed key that is not among keys panics, like an unknown key.
func BindRenamed(flags *pflag.FlagSet, renamed map[string]string, keys ...string) *Loader {
	for key := range renamed {
		if !slices.Contains(keys, key) {
			panic("config: renamed setting " + key + " is not bound")
		}
	}
	bound := make(map[string]string, len(keys))
	for _, key := range keys {
		s, ok := lookup(key)
		if !ok {
			panic("config: unknown setting " + key)
		}
		usage := fmt.Sprintf("%s (env %s)", s.Usage, s.Env())
		name := s.Flag()
		if n, ok := renamed[key]; ok {
			name = n
		}
		switch d := s.Default.(type) {
		case string:
			flags.String(name, d, usage)
		case bool:
			flags.Bool(name, d, usage)
		case Path:
			flags.String(name, string(d), usage)
		case []string:
			flags.StringSlice(name, d, usage)
		case Paths:
			flags.StringSlice(name, d, usage)
		case NamedPaths:
			flags.StringSlice(name, d, usage)
		case int:
			flags.Int(name, d, usage)
		case int64:
			flags.Int64(name, d, usage)
		case time.Duration:
			flags.Duration(name, d, usage)
		default:
			panic(fmt.Sprintf("config: setting %s has unsupported type %T", key, d))
		}
		bound[key] = name
	}
	flags.String("config", "", "config file (YAML, TOML or JSON; env "+EnvPrefix+"CONFIG)")
	return newLoader(flags, bound)
}

// newLoader binds a new viper instance to every setting's default and
// environment variable and to the flags in bound, already on flags.
func newLoader(flags *pflag.FlagSet, bound map[string]string) *Loader {
	v := viper.New()
	for _, s := range settings {
		v.SetDefault(s.Key, plainDefault(s.Default))
		if err := v.BindEnv(s.Key, s.Env()); err != nil {
			panic(err)
		}
	}
	for key, name := range bound {
		if err := v.BindPFlag(key, flags.Lookup(name)); err != nil {
			panic(err)
		}
	}
	return &Loader{v: v, flags: flags, bound: bound}
}

// Load reads the config file if one is named, then decodes every setting.
// Unknown config-file keys and values of the wrong type are errors.
func (l *Loader) Load() (*Config, error) {
	path, _ := l.flags.GetString("config")
	if path == "" {
		path = os.Getenv(EnvPrefix + "CONFIG")
	}
	if path != "" {
		l.v.SetConfigFile(path)
		if err := l.v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		l.resolvePaths(filepath.Dir(path))
	}
	var c Config
	// viper's default hooks minus its duration hook, which lets a bare number through.
	hooks := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(decodeDuration, mapstructure.StringToSliceHookFunc(",")))
	if err := l.v.UnmarshalExact(&c, hooks); err != nil {
		if path != "" {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Keys = splitList(c.Keys)
	c.loader = l
	c.Issue.Keys, c.Issue.TrustedProxies = splitList(c.Issue.Keys), splitList(c.Issue.TrustedProxies)
	c.given = l.given()
	c.Relay.Keys, c.Relay.APIKeys, c.Relay.VerifierKeys = splitList(c.Relay.Keys), splitList(c.Relay.APIKeys), splitList(c.Relay.VerifierKeys)
	return &c, nil
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeDuration decodes every time.Duration setting, from any source. A
// default or a flag is already a Duration; text (the environment, a quoted
// value in a file) must be a Go duration with a unit (time.ParseDuration).
// A bare number is an error: mapstructure would turn `spend_timeout: 5` into
// 5 nanoseconds. mapstructure prefixes the error with the setting's key.
func decodeDuration(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		text := strings.TrimSpace(data.(string))
		if d, err := time.ParseDuration(text); err == nil {
			return d, nil
		}
		if _, err := strconv.ParseFloat(text, 64); err == nil {
			return nil, fmt.Errorf(`must be a duration with a unit, such as "%[1]ss" or "%[1]sms", not the bare number %[1]s`, text)
		}
		return nil, fmt.Errorf(`must be a duration with a unit, such as "5s" or "500ms", not %q`, text)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf(`must be a duration with a unit, such as "%[1]vs" or "%[1]vms", not the bare number %[1]v`, data)
	}
	return nil, fmt.Errorf(`must be a duration with a unit, such as "5s" or "500ms", not %v`, data)
}

// splitList flattens comma-separated entries and drops empty ones, so that
// "--keys a.pem,b.pem", PPREDEEM_KEYS="a.pem, b.pem" and a YAML list agree.
func splitList(in []string) []string {
	var out []string
	for _, item := range in {
		for _, part := range strings.Split(item, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// minDuration is the least value of each timeout ValidateServe accepts. Below
// these the server cannot do its work, and such a value is most likely a unit
// left out or mistyped ("5ms" for "5s"): a spend under 100ms fails on an
// ordinary fsync or database round trip; HTTP timeouts under a second cut off
// ordinary clients and cannot finish a graceful shutdown.
var minDuration = map[string]time.Duration{
	"spend_timeout":       100 * time.Millisecond,
	"read_header_timeout": time.Second,
	"read_timeout":        time.Second,
	"write_timeout":       time.Second,
	"idle_timeout":        time.Second,
	"shutdown_timeout":    time.Second,
}

// MinHeaderBytes is the least max_header_bytes accepted: a browser's or a
// proxy's ordinary headers (cookies, forwarding headers) need a few KB,
// and net/http cannot enforce a limit under its own 4 KiB read-ahead
// exactly (cmd/ppredeem sets http.Server.MaxHeaderBytes to the limit minus
// that read-ahead).
const MinHeaderBytes = 8 << 10

// validateMemory checks the settings every serving command shares that
// bound memory: the header limit, the body budget against the command's
// body limit (bodyKey, body), and the memory limit.
func (c *Config) validateMemory(add func(string, ...any), bodyKey string, body int64) {
	if c.MaxHeaderBytes < MinHeaderBytes {
		add("max_header_bytes: must be at least %d, got %d", MinHeaderBytes, c.MaxHeaderBytes)
	}
	// Bodies over 64 KiB share half the budget (rpc/httpbody): one body at
	// the limit must fit in that half.
	if c.MaxInflightBodyBytes <= 0 || body > 0 && c.MaxInflightBodyBytes < 2*body {
		add("max_inflight_body_bytes: must be at least twice %s (%d), got %d", bodyKey, 2*body, c.MaxInflightBodyBytes)
	}
	// Below four times the body budget, the bodies, their decoding and the
	// rest of the server would not fit: the collector would run without
	// pause.
	if c.MemoryLimitBytes < 0 || c.MemoryLimitBytes > 0 && c.MemoryLimitBytes < 4*c.MaxInflightBodyBytes {
		add("memory_limit_bytes: must be 0 (no limit) or at least four times max_inflight_body_bytes (%d), got %d",
			4*c.MaxInflightBodyBytes, c.MemoryLimitBytes)
	}
}

// ValidateServe checks everything `ppredeem serve` needs, so that a bad
// setting stops the server before it listens.
func (c *Config) ValidateServe() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkListeners(add, "listen", c.Listen, "admin_listen", c.AdminListen)
	if len(c.Keys) == 0 && !c.Relay.Enabled() {
		add("keys: at least one key file is required (--keys, %sKEYS), unless relay_keys are set", EnvPrefix)
	}
	errs = append(errs, c.Relay.validate()...)
	if c.DatabaseURL == "" && strings.TrimSpace(c.DataDir) == "" {
		add("data_dir: required when database_url is empty")
	}
	c.validateLogging(add)
	positive := map[string]int64{
		"db_max_conns":       int64(c.DBMaxConns),
		"spend_batch":        int64(c.SpendBatch),
		"max_body_bytes":     c.MaxBodyBytes,
		"max_batch_requests": int64(c.MaxBatchRequests),
		"max_token_bytes":    int64(c.MaxTokenBytes),
		"max_bindings":       int64(c.MaxBindings),
		"max_bindings_bytes": int64(c.MaxBindingsBytes),
	}
	for _, s := range settings { // stable order for messages
		if n, ok := positive[s.Key]; ok && n <= 0 {
			add("%s: must be positive, got %d", s.Key, n)
		}
	}
	durations := map[string]time.Duration{
		"spend_timeout":       c.SpendTimeout,
		"read_header_timeout": c.ReadHeaderTimeout,
		"read_timeout":        c.ReadTimeout,
		"write_timeout":       c.WriteTimeout,
		"idle_timeout":        c.IdleTimeout,
		"shutdown_timeout":    c.ShutdownTimeout,
	}
	for _, s := range settings {
		if d, ok := durations[s.Key]; ok && d < minDuration[s.Key] {
			add("%s: must be at least %s, got %s", s.Key, minDuration[s.Key], d)
		}
	}
	// A spend that outlives the time to write its answer would commit with
	// nobody told: the token is gone and the client saw an error.
	if c.SpendTimeout > 0 && c.WriteTimeout > 0 && c.SpendTimeout >= c.WriteTimeout {
		add("spend_timeout (%s) must be shorter than write_timeout (%s)", c.SpendTimeout, c.WriteTimeout)
	}
	if c.SpendTimeout > 0 && c.ShutdownTimeout > 0 && c.SpendTimeout >= c.ShutdownTimeout {
		add("spend_timeout (%s) must be shorter than shutdown_timeout (%s)", c.SpendTimeout, c.ShutdownTimeout)
	}
	if c.MaxTokenBytes > MaxTokenBytesLimit {
		add("max_token_bytes: %d is more than the stores accept (%d)", c.MaxTokenBytes, MaxTokenBytesLimit)
	}
	if c.DrainDelay < 0 {
		add("drain_delay: must not be negative, got %s", c.DrainDelay)
	}
	if c.DBMaxConns > 1000 {
		add("db_max_conns: %d is more than 1000", c.DBMaxConns)
	}
	if c.MaxBatchRequests > 10000 {
		add("max_batch_requests: %d is more than 10000", c.MaxBatchRequests)
	}
	c.validateIssue(add)
	c.validateMemory(add, "max_body_bytes", c.MaxBodyBytes)
	return errors.Join(errs...)
}

// ValidateDatabase checks that a database URL is set, for commands that
// only make sense against Postgres.
func (c *Config) ValidateDatabase() error {
	if strings.TrimSpace(c.DatabaseURL) == "" {
		return fmt.Errorf("database_url: required (--database-url, %sDATABASE_URL)", EnvPrefix)
	}
	return nil
}

// checkListeners adds the errors of a listener's address and of its
// admin listener's, which may be empty (off) and must differ from it.
func checkListeners(add func(string, ...any), listenKey, listen, adminKey, admin string) {
	if err := checkAddr(listen); err != nil {
		add("%s: %v", listenKey, err)
	}
	if admin == "" {
		return
	}
	if err := checkAddr(admin); err != nil {
		add("%s: %v", adminKey, err)
	} else if admin == listen && !strings.HasSuffix(listen, ":0") {
		add("%s must differ from %s", adminKey, listenKey)
	}
}

// validateLogging adds the errors of log_format and log_level.
func (c *Config) validateLogging(add func(string, ...any)) {
	switch c.LogFormat {
	case "text", "json":
	default:
		add("log_format: %q is not text or json", c.LogFormat)
	}
	if _, err := c.SlogLevel(); err != nil {
		add("log_level: %v", err)
	}
}

func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("address is empty")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	return nil
}
