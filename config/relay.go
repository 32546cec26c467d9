package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Relay holds the settings of the relay provider API in `ppredeem serve` (rpc/relay).
type Relay struct {
	Keys           []string      `mapstructure:"relay_keys"`
	APIKeys        []string      `mapstructure:"api_keys"`
	VerifierKeys   []string      `mapstructure:"verifier_keys"`
	Sandbox        bool          `mapstructure:"relay_sandbox"`
	IssuerName     string        `mapstructure:"relay_issuer_name"`
	PassLifetime   time.Duration `mapstructure:"relay_pass_lifetime"`
	Lifetime       time.Duration `mapstructure:"relay_lifetime"`
	IdempotencyTTL time.Duration `mapstructure:"relay_idempotency_ttl"`
	PurgeInterval  time.Duration `mapstructure:"relay_purge_interval"`
	MaxBodyBytes   int64         `mapstructure:"relay_max_body_bytes"`
}

// RelaySettings are the keys of the relay provider API's settings, for the serve command.
var RelaySettings = []string{
	"relay_keys", "api_keys", "verifier_keys", "relay_sandbox", "relay_issuer_name", "relay_pass_lifetime",
	"relay_lifetime", "relay_idempotency_ttl", "relay_purge_interval", "relay_max_body_bytes",
}

var relaySettings = []Setting{
	{"relay_keys", NamedPaths{}, "Privacy Pass issuer keys of the relay provider API, CLAIMTYPE=FILE (RSA PEM); the first file of a claim type issues, the others only redeem; empty turns the relay API off"},
	{"api_keys", []string{}, "API keys allowed to issue Privacy Passes, NAME=SHA256HEX (ppredeem apikeys generate)"},
	{"verifier_keys", []string{}, "verifier keys allowed to report claim results, NAME=SHA256HEX (ppredeem apikeys generate)"},
	{"relay_sandbox", false, "allow sandbox relays (their claim is passed without a verifier)"},
	{"relay_issuer_name", "ppredeem", "issuer_name of the Privacy Pass challenges"},
	{"relay_pass_lifetime", 90 * 24 * time.Hour, "how long after its challenge's expires_at a Privacy Pass can be redeemed"},
	{"relay_lifetime", 24 * time.Hour, "how long after creation a relay can be redeemed"},
	{"relay_idempotency_ttl", 24 * time.Hour, "how long the first answer to an Idempotency-Key is replayed"},
	{"relay_purge_interval", 10 * time.Minute, "how often expired relays, idempotency records and the spent records of keys past their last pass lifetime are dropped"},
	{"relay_max_body_bytes", int64(64 << 10), "largest request body the relay provider API accepts"},
}

func init() { settings = append(settings, relaySettings...) }

// RelayKeyFile is one entry of relay_keys.
type RelayKeyFile struct {
	ClaimType, File string
}

// RelayKeyFiles decodes relay_keys, in order.
func (r *Relay) RelayKeyFiles() ([]RelayKeyFile, error) {
	var out []RelayKeyFile
	var errs []error
	for _, e := range splitList(r.Keys) {
		ct, file, ok := strings.Cut(e, "=")
		ct, file = strings.TrimSpace(ct), strings.TrimSpace(file)
		if !ok || !ValidName(ct) || file == "" {
			errs = append(errs, fmt.Errorf("relay_keys: %q is not CLAIMTYPE=FILE (claim type: 1 to 64 of A-Z a-z 0-9 . _ -)", e))
			continue
		}
		out = append(out, RelayKeyFile{ClaimType: ct, File: file})
	}
	return out, errors.Join(errs...)
}

// APIKeyHashes decodes api_keys.
func (r *Relay) APIKeyHashes() ([]NamedHash, error) { return namedHashes("api_keys", r.APIKeys) }

// VerifierKeyHashes decodes verifier_keys.
func (r *Relay) VerifierKeyHashes() ([]NamedHash, error) {
	return namedHashes("verifier_keys", r.VerifierKeys)
}

// Enabled reports whether relay keys are configured (the relay provider API is on).
func (r *Relay) Enabled() bool { return len(splitList(r.Keys)) > 0 }

// validate checks the relay settings for ValidateServe.
func (r *Relay) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := r.RelayKeyFiles(); err != nil {
		errs = append(errs, err)
	}
	apiKeys, err := r.APIKeyHashes()
	if err != nil {
		errs = append(errs, err)
	}
	verifierKeys, err := r.VerifierKeyHashes()
	if err != nil {
		errs = append(errs, err)
	}
	if !r.Enabled() && (len(apiKeys) > 0 || len(verifierKeys) > 0 || r.Sandbox) {
		add("api_keys, verifier_keys and relay_sandbox need relay_keys: without them the relay provider API is off")
	}
	if n := len(r.IssuerName); n == 0 || n > 255 {
		add("relay_issuer_name: must be 1 to 255 bytes")
	}
	if r.PassLifetime <= 0 || r.PassLifetime > 10*365*24*time.Hour {
		add("relay_pass_lifetime: must be positive and at most ten years, got %s", r.PassLifetime)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
		min time.Duration
	}{
		{"relay_lifetime", r.Lifetime, time.Minute},
		{"relay_idempotency_ttl", r.IdempotencyTTL, time.Minute},
		{"relay_purge_interval", r.PurgeInterval, time.Second},
	} {
		if d.v < d.min {
			add("%s: must be at least %s, got %s", d.key, d.min, d.v)
		}
	}
	if r.MaxBodyBytes < 1024 {
		add("relay_max_body_bytes: must be at least 1024, got %d", r.MaxBodyBytes)
	}
	return errs
}
