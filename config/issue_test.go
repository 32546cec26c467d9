package config

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"
)

func hashOf(key string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(key))) }

func TestIssueSettings(t *testing.T) {
	aliceHash, bobHash := hashOf("alice-key"), hashOf("bob-key")
	t.Setenv("PPREDEEM_ISSUE_OPEN", "true")
	t.Setenv("PPREDEEM_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,fd00::/8")
	c, err := load(t, []string{"--keys", "k.pem", "--issue-keys", "alice=" + aliceHash + ",bob=" + bobHash,
		"--max-issue-tokens", "30", "--issue-open-burst", "30", "--commitment-expiry", "24h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateServe(); err != nil {
		t.Fatal(err)
	}
	if !c.Issue.Open || c.Issue.MaxTokens != 30 || c.Issue.OpenPerHour != 300 || c.Issue.CommitmentExpiry != 24*time.Hour {
		t.Fatalf("settings not applied: %+v", c.Issue)
	}
	as, err := c.Attesters()
	if err != nil || len(as) != 2 || as[0].Name != "alice" || fmt.Sprintf("%x", as[0].Hash) != aliceHash || as[1].Name != "bob" {
		t.Fatalf("attesters %+v %v", as, err)
	}
	ps, err := c.TrustedProxies()
	if err != nil || fmt.Sprint(ps) != "[10.0.0.0/8 192.0.2.7/32 fd00::/8]" {
		t.Fatalf("trusted proxies %v %v", ps, err)
	}
}

func TestValidateIssue(t *testing.T) {
	h := hashOf("k")
	good := func() *Config {
		c, err := load(t, []string{"--keys", "k.pem"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := map[string]func(c *Config){
		"max_issue_tokens: must be between 1 and 1000, got 0":     func(c *Config) { c.Issue.MaxTokens = 0 },
		"max_issue_tokens: must be between 1 and 1000, got 1001":  func(c *Config) { c.Issue.MaxTokens = 1001 },
		"issue_keys: entry 1 is not NAME=SHA256HEX":               func(c *Config) { c.Issue.Keys = []string{h} },
		"issue_keys: entry 2: the name must be":                   func(c *Config) { c.Issue.Keys = []string{"a=" + h, "b c=" + hashOf("x")} },
		`issue_keys: the name "open" is reserved`:                 func(c *Config) { c.Issue.Keys = []string{"open=" + h} },
		"issue_keys: a: the hash must be 64 lowercase hex":        func(c *Config) { c.Issue.Keys = []string{"a=" + strings.ToUpper(h)} },
		"issue_keys: b: the hash must be":                         func(c *Config) { c.Issue.Keys = []string{"b=" + h[:62] + "zz"} },
		"issue_keys: a is listed twice":                           func(c *Config) { c.Issue.Keys = []string{"a=" + h, "a=" + hashOf("y")} },
		"issue_keys: b has the same key":                          func(c *Config) { c.Issue.Keys = []string{"a=" + h, "b=" + h} },
		"issue_open_per_hour: must be positive":                   func(c *Config) { c.Issue.OpenPerHour = 0 },
		"issue_open_burst: must be positive":                      func(c *Config) { c.Issue.OpenBurst = 0 },
		"issue_open_burst (99) must be at least max_issue_tokens": func(c *Config) { c.Issue.Open, c.Issue.OpenBurst = true, 99 },
		`trusted_proxies: "10.0.0.0/33" is neither`:               func(c *Config) { c.Issue.TrustedProxies = []string{"10.0.0.0/33"} },
		"commitment_expiry: must be at least 1m0s":                func(c *Config) { c.Issue.CommitmentExpiry = time.Second },
	}
	for want, mutate := range cases {
		c := good()
		mutate(c)
		err := c.ValidateServe()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
		if err != nil && strings.Contains(err.Error(), h) {
			t.Errorf("%s: the error quotes a key hash: %v", want, err)
		}
	}
	c := good()
	c.Issue.OpenBurst = 1 // only checked against max_issue_tokens when open issuance is on
	if err := c.ValidateServe(); err != nil {
		t.Errorf("a small burst without open issuance: %v", err)
	}
}
