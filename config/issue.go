package config

import (
	"fmt"
	"net/netip"
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
// uncompressed points is about 120 KiB, and signing it about 2,200 scalar
// multiplications, 100 to 200 ms on one core (BENCHMARKS.md, Issuance).
const (
	MaxIssueTokensLimit = 1000
	minCommitmentExpiry = time.Minute
)

// OpenAttester is the attester name open issuance counts under; no
// attester key may take it (rpc/attest.OpenAttester).
const OpenAttester = "open"

// Attesters parses issue_keys, a NAME=SHA256HEX list (namedHashes); no
// attester may be named "open" (OpenAttester).
func (c *Config) Attesters() ([]NamedHash, error) {
	out, err := namedHashes("issue_keys", c.Issue.Keys)
	for _, a := range out {
		if a.Name == OpenAttester {
			return nil, fmt.Errorf("issue_keys: the name %q is reserved for open issuance", OpenAttester)
		}
	}
	return out, err
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
