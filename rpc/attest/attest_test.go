package attest

import (
	"crypto/sha256"
	"errors"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

func key(name, secret string) Key { return Key{Name: name, Hash: sha256.Sum256([]byte(secret))} }

func TestNewRefuses(t *testing.T) {
	for name, c := range map[string]Config{
		"bad name":       {Keys: []Key{key("a b", "k")}},
		"empty name":     {Keys: []Key{key("", "k")}},
		"long name":      {Keys: []Key{key(strings.Repeat("a", 65), "k")}},
		"reserved name":  {Keys: []Key{key(OpenAttester, "k")}},
		"name twice":     {Keys: []Key{key("a", "k1"), key("a", "k2")}},
		"key twice":      {Keys: []Key{key("a", "k"), key("b", "k")}},
		"open, no rate":  {Open: true, Burst: 1},
		"open, no burst": {Open: true, Rate: 1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	g, err := New(Config{Keys: []Key{key("a.b_c-9", "k")}, Open: true, Rate: 1, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.Names(), ","); got != "a.b_c-9,open" {
		t.Errorf("Names() = %s", got)
	}
}

func TestAdmit(t *testing.T) {
	g, err := New(Config{Keys: []Key{key("alice", "alice-key"), key("bob", "bob-key")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		headers []string
		want    string
		err     error
	}{
		{nil, "", ErrNoKey},
		{[]string{"Bearer alice-key"}, "alice", nil},
		{[]string{"bearer bob-key"}, "bob", nil},
		{[]string{"BEARER   bob-key"}, "bob", nil},
		{[]string{"Bearer alice-key", "Bearer alice-key"}, "", ErrBadKey},
		{[]string{"Bearer alice-key "}, "", ErrBadKey},
		{[]string{"Bearer alice key"}, "", ErrBadKey},
		{[]string{"Bearer"}, "", ErrBadKey},
		{[]string{"Bearer "}, "", ErrBadKey},
		{[]string{"Basic alice-key"}, "", ErrBadKey},
		{[]string{"Bearer carol-key"}, "", ErrBadKey},
		{[]string{"Bearer " + strings.Repeat("a", maxKeyLen+1)}, "", ErrBadKey},
		{[]string{""}, "", ErrBadKey},
	} {
		r := httptest.NewRequest("POST", "/api/issue", nil)
		for _, h := range c.headers {
			r.Header.Add("Authorization", h)
		}
		gr, err := g.Admit(r)
		switch {
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%q: %v, want %v", c.headers, err, c.err)
		case c.err == nil && (err != nil || gr.Attester != c.want):
			t.Errorf("%q: %+v %v, want %s", c.headers, gr, err, c.want)
		case c.err == nil && gr.Take(1_000_000) != nil:
			t.Errorf("%q: an attester key is rate limited", c.headers)
		}
	}
}

func TestClientAddress(t *testing.T) {
	g, err := New(Config{Open: true, Rate: 1, Burst: 1, TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:1234", nil, "192.0.2.1/32"},
		{"192.0.2.1:1234", []string{"198.51.100.1"}, "192.0.2.1/32"}, // an untrusted peer's header is ignored
		{"[::ffff:192.0.2.1]:1", nil, "192.0.2.1/32"},
		{"[2001:db8:1:2:3::4]:1", nil, "2001:db8:1:2::/64"},
		{"10.1.2.3:1", nil, "10.1.2.3/32"},
		{"10.1.2.3:1", []string{"198.51.100.1"}, "198.51.100.1/32"},
		{"10.1.2.3:1", []string{"203.0.113.5, 198.51.100.1, 10.9.9.9"}, "198.51.100.1/32"},
		{"10.1.2.3:1", []string{"203.0.113.5", "198.51.100.1"}, "198.51.100.1/32"},
		{"10.1.2.3:1", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1/32"},
		{"10.1.2.3:1", []string{"198.51.100.1, junk, 10.0.0.2"}, "10.0.0.2/32"},
		{"[fd00::1]:1", []string{"2001:db8::7"}, "2001:db8::/64"},
		{"[fd00::1]:1", []string{"::ffff:198.51.100.9"}, "198.51.100.9/32"},
		{"pipe", nil, "invalid Prefix"},
	} {
		r := httptest.NewRequest("POST", "/api/issue", nil)
		r.RemoteAddr = c.remote
		for _, h := range c.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		if got := g.client(r).String(); got != c.want {
			t.Errorf("%s %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

// TestBuckets: tokens are paid per client; a refused Take takes nothing;
// Refund gives back; at most MaxClients buckets are kept.
func TestBuckets(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g, err := New(Config{Open: true, Rate: 2, Burst: 4, MaxClients: 2, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	admit := func(addr string) *Grant {
		t.Helper()
		r := httptest.NewRequest("POST", "/api/issue", nil)
		r.RemoteAddr = addr + ":1"
		gr, err := g.Admit(r)
		if err != nil || gr.Attester != OpenAttester {
			t.Fatalf("%+v %v", gr, err)
		}
		return gr
	}
	if err := admit("192.0.2.1").Take(3); err != nil {
		t.Fatal(err)
	}
	var limited *RateLimitError
	if err := admit("192.0.2.1").Take(2); !errors.As(err, &limited) || limited.Never || limited.RetryAfter != 500*time.Millisecond {
		t.Fatalf("2 of 1 left: %v", err)
	}
	gr := admit("192.0.2.1")
	if err := gr.Take(1); err != nil {
		t.Fatalf("the 1 left after a refusal: %v", err)
	}
	gr.Refund()
	if err := admit("192.0.2.1").Take(1); err != nil {
		t.Fatalf("the refunded token: %v", err)
	}
	if err := admit("192.0.2.1").Take(5); !errors.As(err, &limited) || !limited.Never || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("more than the burst: %v", err)
	}
	// Two other clients push 192.0.2.1's bucket out: it starts full again.
	admit("192.0.2.2")
	admit("192.0.2.3")
	if err := admit("192.0.2.1").Take(4); err != nil {
		t.Fatalf("an evicted client starts afresh: %v", err)
	}
	now = now.Add(time.Second)
	if err := admit("192.0.2.1").Take(2); err != nil {
		t.Fatalf("after 1 s at 2 tokens/s: %v", err)
	}
}

// TestSuccessor: the successor's keys, open issuance, rate, burst and
// trusted proxies judge the requests it admits; the client buckets keep
// what they hold (a reload refills none) and take the new rate and burst;
// a refused configuration makes no Gate.
func TestSuccessor(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := Config{Keys: []Key{key("alice", "alice-key")}, Open: true, Rate: 1, Burst: 4, Now: func() time.Time { return now }}
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	admit := func(remote, auth string, xff ...string) (*Grant, error) {
		r := httptest.NewRequest("POST", "/api/issue", nil)
		r.RemoteAddr = remote
		if auth != "" {
			r.Header.Set("Authorization", "Bearer "+auth)
		}
		for _, h := range xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		return g.Admit(r)
	}
	open := func(remote string, xff ...string) *Grant {
		t.Helper()
		gr, err := admit(remote, "", xff...)
		if err != nil || gr.Attester != OpenAttester {
			t.Fatalf("open issuance: %+v %v", gr, err)
		}
		return gr
	}
	if err := open("192.0.2.1:1").Take(3); err != nil {
		t.Fatal(err)
	}
	if gr, err := admit("192.0.2.9:1", "alice-key"); err != nil || gr.Attester != "alice" {
		t.Fatalf("alice: %+v %v", gr, err)
	}

	if next, err := g.Successor(Config{Keys: []Key{key("open", "k")}}); err == nil {
		t.Fatalf("a reserved name was taken: %+v", next)
	}
	prev := g

	c.Keys = []Key{key("bob", "bob-key")}
	c.Rate, c.Burst = 2, 8
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if g, err = g.Successor(c); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.Names(), ","); got != "bob,open" {
		t.Errorf("Names() = %s", got)
	}
	if _, err := admit("192.0.2.9:1", "alice-key"); !errors.Is(err, ErrBadKey) {
		t.Errorf("a removed key: %v", err)
	}
	if gr, err := admit("192.0.2.9:1", "bob-key"); err != nil || gr.Attester != "bob" {
		t.Errorf("an added key: %+v %v", gr, err)
	}
	if gr, err := prev.Admit(httptest.NewRequest("POST", "/api/issue", nil)); err != nil || gr.Attester != OpenAttester {
		t.Errorf("the previous Gate changed: %+v %v", gr, err)
	}
	if got := strings.Join(prev.Names(), ","); got != "alice,open" {
		t.Errorf("the previous Gate's Names() = %s", got)
	}
	// 192.0.2.1 kept its bucket: 1 token left of 4, now with room for 8.
	var limited *RateLimitError
	if err := open("192.0.2.1:1").Take(2); !errors.As(err, &limited) || limited.Never || limited.RetryAfter != 500*time.Millisecond {
		t.Fatalf("2 of the 1 left, at the new rate: %v", err)
	}
	if err := open("192.0.2.1:1").Take(1); err != nil {
		t.Fatalf("the 1 left: %v", err)
	}
	now = now.Add(4 * time.Second)
	if err := open("192.0.2.1:1").Take(8); err != nil {
		t.Fatalf("4 s at 2 tokens/s fill the new burst of 8: %v", err)
	}
	// A trusted proxy's X-Forwarded-For names the client now.
	if err := open("10.1.2.3:1", "198.51.100.1").Take(8); err != nil {
		t.Fatal(err)
	}
	if err := open("10.1.2.3:1", "198.51.100.1").Take(1); !errors.As(err, &limited) {
		t.Fatalf("the forwarded client's bucket is empty: %v", err)
	}
	if err := open("10.1.2.3:1").Take(1); err != nil {
		t.Fatalf("the proxy's own bucket: %v", err)
	}

	c.Open = false
	if g, err = g.Successor(c); err != nil {
		t.Fatal(err)
	}
	if _, err := admit("192.0.2.1:1", ""); !errors.Is(err, ErrNoKey) {
		t.Errorf("open issuance turned off: %v", err)
	}
	if got := strings.Join(g.Names(), ","); got != "bob" {
		t.Errorf("Names() = %s", got)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Hour: 3600} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("%s: %d, want %d", d, got, want)
		}
	}
	if got := PerHour(3600); got != 1 {
		t.Errorf("PerHour(3600) = %v", got)
	}
}

// TestBucketsMemory backs the package doc's figure: the buckets of
// DefaultMaxClients addresses take about 4.4 MB of heap (some 270 bytes
// an address: the LRU entry, the prefix and the rate.Limiter).
func TestBucketsMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g, err := New(Config{Open: true, Rate: 1, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/api/issue", nil)
	for i := range DefaultMaxClients {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		r.RemoteAddr = netip.AddrPortFrom(a, 1).String()
		gr, err := g.Admit(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := gr.Take(1); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := g.clients.buckets.Len(); n != DefaultMaxClients {
		t.Fatalf("%d buckets, want %d", n, DefaultMaxClients)
	}
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d bytes of heap for %d addresses (%d each)", heap, DefaultMaxClients, heap/DefaultMaxClients)
	if heap > 6<<20 {
		t.Errorf("the buckets of %d addresses take %d bytes, more than the 6 MiB the package doc allows for", DefaultMaxClients, heap)
	}
	runtime.KeepAlive(g)
}
