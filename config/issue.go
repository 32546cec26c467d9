package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Issue holds the settings of token issuance (POST /api/issue, GET
// /api/commitments) that `ppredeem serve` reads.
type Issue struct {
	MaxTokens        int           `mapstructure:"max_issue_tokens"`
	Keys             []string      `mapstructure:"issue_keys"`
	Open             bool          `mapstructure:"issue_open"`
	OpenPerHour      int           `mapstructure:"issue_open_per_hour"`
	OpenBurst        int           `mapstructure:"issue_open_burst"`
	TrustedProxies   []string      `mapstructure:"trusted_proxies"`
	CommitmentExpiry time.Duration `mapstructure:"commitment_expiry"`
}

// Bounds of the issuance settings. A request of MaxIssueTokensLimit
// uncompressed points is about 120 KiB and 100 ms of signing on one core.
const (
	MaxIssueTokensLimit = 1000
	minCommitmentExpiry = time.Minute
)

// OpenAttester is the attester name open issuance counts under; no
// attester key may take it (rpc/attest.OpenAttester).
const OpenAttester = "open"

// Attester is one entry of issue_keys: NAME=SHA256HEX.
type Attester struct {
	Name    string
	KeyHash [32]byte // SHA-256 of the attester's key
}

// Attesters parses issue_keys: each entry NAME=SHA256HEX, the name 1 to 64
// letters, digits, '.', '_' or '-' (not "open"), the hash the lowercase hex
// SHA-256 of the key (`printf %s "$KEY" | sha256sum`); no name and no hash
// twice. Errors quote the name, never the hash.
func (c *Config) Attesters() ([]Attester, error) {
	var out []Attester
	names, hashes := map[string]bool{}, map[[32]byte]bool{}
	for i, entry := range c.Issue.Keys {
		name, hexHash, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("issue_keys: entry %d is not NAME=SHA256HEX", i+1)
		}
		if !validAttesterName(name) {
			return nil, fmt.Errorf("issue_keys: entry %d: the name must be 1 to 64 letters, digits, '.', '_' or '-'", i+1)
		}
		if name == OpenAttester {
			return nil, fmt.Errorf("issue_keys: the name %q is reserved for open issuance", OpenAttester)
		}
		var a Attester
		a.Name = name
		if len(hexHash) != 64 || strings.ToLower(hexHash) != hexHash {
			return nil, fmt.Errorf("issue_keys: %s: the hash must be 64 lowercase hex digits (the SHA-256 of the key)", name)
		}
		if _, err := hex.Decode(a.KeyHash[:], []byte(hexHash)); err != nil {
			return nil, fmt.Errorf("issue_keys: %s: the hash must be 64 lowercase hex digits (the SHA-256 of the key)", name)
		}
		if names[name] {
			return nil, fmt.Errorf("issue_keys: %s is listed twice", name)
		}
		if hashes[a.KeyHash] {
			return nil, fmt.Errorf("issue_keys: %s has the same key as another attester", name)
		}
		names[name], hashes[a.KeyHash] = true, true
		out = append(out, a)
	}
	return out, nil
}

func validAttesterName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '.' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// TrustedProxies parses trusted_proxies: each entry a CIDR prefix
// ("10.0.0.0/8") or one address.
func (c *Config) TrustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range c.Issue.TrustedProxies {
		if p, err := netip.ParsePrefix(entry); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %q is neither a CIDR prefix nor an address", entry)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// validateIssue adds the issuance settings' errors (ValidateServe).
func (c *Config) validateIssue(add func(format string, args ...any)) {
	is := c.Issue
	if is.MaxTokens <= 0 || is.MaxTokens > MaxIssueTokensLimit {
		add("max_issue_tokens: must be between 1 and %d, got %d", MaxIssueTokensLimit, is.MaxTokens)
	}
	if _, err := c.Attesters(); err != nil {
		add("%v", err)
	}
	if is.OpenPerHour <= 0 {
		add("issue_open_per_hour: must be positive, got %d", is.OpenPerHour)
	}
	switch {
	case is.OpenBurst <= 0:
		add("issue_open_burst: must be positive, got %d", is.OpenBurst)
	case is.Open && is.OpenBurst < is.MaxTokens:
		add("issue_open_burst (%d) must be at least max_issue_tokens (%d), or a full request could never be served", is.OpenBurst, is.MaxTokens)
	}
	if _, err := c.TrustedProxies(); err != nil {
		add("%v", err)
	}
	if is.CommitmentExpiry < minCommitmentExpiry {
		add("commitment_expiry: must be at least %s, got %s", minCommitmentExpiry, is.CommitmentExpiry)
	}
}
