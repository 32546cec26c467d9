// Package attest decides who may get tokens at POST /api/issue: the
// operator's attestation, made before the issuer signs anything.
//
// Two ways in, both configured by the operator:
//
//   - An attester key. The request carries "Authorization: Bearer <key>"
//     (RFC 6750 §2.1; the scheme is matched case-insensitively, RFC 9110
//     §11.1). The operator configures each attester as NAME=SHA256HEX, the
//     lowercase hex SHA-256 of the key, so the server never stores a key.
//     The presented key is hashed and compared with every configured hash
//     in constant time (package keyhash). An attested client is not rate
//     limited: the operator vouches for it, and its tokens are counted (and
//     billed) under its name.
//   - Open issuance (for trials). A request without an Authorization
//     header is admitted as the attester "open", limited per client
//     address by a token bucket (golang.org/x/time/rate) that counts
//     issued tokens, not requests: Rate tokens per second refill up to
//     Burst. A request whose tokens the bucket cannot pay now is refused
//     with the time after which it could (Retry-After), and takes nothing
//     from the bucket.
//
// A request that carries an Authorization header is judged by it alone:
// a wrong key is refused even when open issuance is on, so a client with a
// typo in its key learns it instead of being rate limited as a stranger.
//
// # Client addresses
//
// The client address is the peer address of the connection
// (http.Request.RemoteAddr). IPv6 clients are limited per /64, the
// smallest network a host is usually given, so one host cannot take a new
// budget with each of its addresses. Behind a reverse proxy every client
// has the proxy's address and shares one budget, unless the proxy is
// listed in TrustedProxies: a request from a trusted peer is attributed
// to the rightmost address of its X-Forwarded-For headers that is not a
// trusted proxy itself (the last hop no trusted proxy vouches for;
// addresses to its left may be forged by the client). A malformed entry on
// the way stops the walk at the address before it.
//
// # Limits
//
//   - The buckets of at most MaxClients addresses are kept (default
//     16384, about 4.4 MB of heap: TestBucketsMemory); beyond that the
//     least recently seen address
//     loses its bucket and starts afresh when it comes back. A client with
//     more addresses than that gets more than its share; open issuance is
//     for trials, not for hostile networks.
//   - Buckets live in the process: two servers give a client two budgets,
//     and a restart refills every bucket.
//   - A Gate's settings are fixed when it is made. A reload makes the
//     next Gate with Successor, which shares the client buckets: each
//     keeps the tokens it holds and takes the new rate and burst when it
//     is next used, so a reload refills no bucket.
package attest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"github.com/ppredeem/ppredeem/rpc/keyhash"
)

// OpenAttester is the attester name of open issuance: tokens issued to
// clients without a key are counted under it. No attester key may be
// named so.
const OpenAttester = "open"

// DefaultMaxClients is MaxClients when the Config leaves it zero.
const DefaultMaxClients = 16384

// maxKeyLen bounds the attester key a request may present; longer ones
// are refused without hashing.
const maxKeyLen = 512

// The refusals of Admit and Take. Every error they return is one of these
// or wraps one.
var (
	// ErrNoKey: the request has no Authorization header and open issuance
	// is off.
	ErrNoKey = errors.New("attest: an attester key is required")
	// ErrBadKey: the Authorization header is not "Bearer <key>", or the key
	// is not a configured attester key.
	ErrBadKey = errors.New("attest: the attester key is not valid")
	// ErrRateLimited: open issuance, and the client address's bucket
	// cannot pay for the tokens now. The error is a *RateLimitError.
	ErrRateLimited = errors.New("attest: the client address is over its issuance rate")
)

// RateLimitError is ErrRateLimited with the time after which the same
// request could be admitted (never, for a request of more tokens than the
// bucket holds: RetryAfter is then 0 and Never is true).
type RateLimitError struct {
	RetryAfter time.Duration
	Never      bool
}

func (e *RateLimitError) Error() string {
	if e.Never {
		return ErrRateLimited.Error() + ": more tokens than the bucket holds"
	}
	return fmt.Sprintf("%v: retry after %s", ErrRateLimited, e.RetryAfter)
}

// Unwrap returns ErrRateLimited.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// Key is one attester: its name (the metric label and the usage subject)
// and the SHA-256 of its key.
type Key = keyhash.Key

// Config configures a Gate.
type Config struct {
	// Keys are the attester keys; names and hashes must be unique, and no
	// name may be OpenAttester.
	Keys []Key
	// Open admits requests without an Authorization header, rate limited
	// per client address.
	Open bool
	// Rate is the refill rate of a client address's bucket, in tokens per
	// second, and Burst its size in tokens. Both must be positive when
	// Open is set.
	Rate  rate.Limit
	Burst int
	// TrustedProxies are the peers whose X-Forwarded-For headers name the
	// client (see the package doc).
	TrustedProxies []netip.Prefix
	// MaxClients bounds the client addresses whose buckets are kept
	// (default DefaultMaxClients).
	MaxClients int
	// Now is the clock of the buckets (default time.Now).
	Now func() time.Time
}

// Gate admits or refuses issue requests. It is safe for concurrent use.
type Gate struct {
	keys    []Key
	open    bool
	rate    rate.Limit
	burst   int
	proxies []netip.Prefix
	now     func() time.Time
	clients *clients // shared with the Gate's successors
}

// clients are the buckets of the client addresses, least recently seen
// first out.
type clients struct {
	mu      sync.Mutex
	buckets *simplelru.LRU[netip.Prefix, *rate.Limiter]
}

// New checks c and makes its Gate.
func New(c Config) (*Gate, error) {
	max := c.MaxClients
	if max <= 0 {
		max = DefaultMaxClients
	}
	buckets, err := simplelru.NewLRU[netip.Prefix, *rate.Limiter](max, nil)
	if err != nil {
		return nil, err
	}
	return newGate(c, &clients{buckets: buckets})
}

// Successor checks c and makes the Gate that takes over from g on a
// reload: c's keys, open issuance, rate, burst and trusted proxies, and
// g's client buckets (see the package doc); c.MaxClients is ignored. g
// stays usable, for the requests it already admitted.
func (g *Gate) Successor(c Config) (*Gate, error) { return newGate(c, g.clients) }

func newGate(c Config, cl *clients) (*Gate, error) {
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	for _, k := range c.Keys {
		switch {
		case !ValidName(k.Name):
			return nil, fmt.Errorf("attest: %q is not an attester name: 1 to 64 letters, digits, '.', '_' or '-'", k.Name)
		case k.Name == OpenAttester:
			return nil, fmt.Errorf("attest: the attester name %q is reserved for open issuance", OpenAttester)
		case names[k.Name]:
			return nil, fmt.Errorf("attest: attester %s is configured twice", k.Name)
		case hashes[k.Hash]:
			return nil, fmt.Errorf("attest: attester %s has the same key as another attester", k.Name)
		}
		names[k.Name], hashes[k.Hash] = true, true
	}
	if c.Open && (c.Rate <= 0 || c.Burst <= 0) {
		return nil, errors.New("attest: open issuance needs a positive rate and burst")
	}
	g := &Gate{
		keys: slices.Clone(c.Keys), open: c.Open, rate: c.Rate, burst: c.Burst,
		proxies: slices.Clone(c.TrustedProxies), now: c.Now, clients: cl,
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g, nil
}

// ValidName reports whether name can name an attester: 1 to 64 ASCII
// letters, digits, '.', '_' or '-'.
func ValidName(name string) bool {
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

// Open reports whether the Gate admits requests without a key.
func (g *Gate) Open() bool { return g.open }

// Names returns the attester names, configured ones first, then
// OpenAttester when open issuance is on: every value Grant.Attester takes.
func (g *Gate) Names() []string {
	var out []string
	for _, k := range g.keys {
		out = append(out, k.Name)
	}
	if g.open {
		out = append(out, OpenAttester)
	}
	return out
}

// Grant is an admitted request: who it is, and for open issuance the
// bucket that pays for its tokens.
type Grant struct {
	// Attester is the name of the attester key, or OpenAttester.
	Attester string

	bucket      *rate.Limiter // open issuance only
	now         func() time.Time
	reservation *rate.Reservation
	taken       time.Time
}

// Admit decides from the request's headers alone, before its body is
// read: an attester key admits under its name; no Authorization header
// admits under OpenAttester when open issuance is on. It returns ErrNoKey
// or ErrBadKey otherwise.
func (g *Gate) Admit(r *http.Request) (*Grant, error) {
	auth := r.Header.Values("Authorization")
	switch {
	case len(auth) > 1:
		return nil, ErrBadKey
	case len(auth) == 1:
		key, ok := bearer(auth[0])
		if !ok {
			return nil, ErrBadKey
		}
		k, ok := keyhash.Match(g.keys, key)
		if !ok {
			return nil, ErrBadKey
		}
		return &Grant{Attester: k.Name}, nil
	case g.open:
		return &Grant{Attester: OpenAttester, bucket: g.bucket(g.client(r)), now: g.now}, nil
	default:
		return nil, ErrNoKey
	}
}

// bearer returns the key of "Bearer <key>": the scheme in any case, one
// or more spaces, then a non-empty b64token (RFC 6750 §2.1) of at most
// maxKeyLen characters.
func bearer(h string) (string, bool) {
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	key = strings.TrimLeft(key, " ")
	if key == "" || len(key) > maxKeyLen {
		return "", false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/=", c) >= 0) {
			return "", false
		}
	}
	return key, true
}

// Take pays for n tokens. For an attester key it always succeeds. For
// open issuance it takes n tokens from the client address's bucket, or
// returns a *RateLimitError and takes nothing.
func (gr *Grant) Take(n int) error {
	if gr.bucket == nil {
		return nil
	}
	now := gr.now()
	res := gr.bucket.ReserveN(now, n)
	if !res.OK() {
		return &RateLimitError{Never: true}
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return &RateLimitError{RetryAfter: d}
	}
	gr.reservation, gr.taken = res, now
	return nil
}

// Refund gives back what Take took, for an issuance that failed after it
// (as far as tokens taken since by others allow: rate.Reservation.CancelAt).
func (gr *Grant) Refund() {
	if gr.reservation != nil {
		gr.reservation.CancelAt(gr.taken)
		gr.reservation = nil
	}
}

// bucket returns the client's bucket, making it on first sight; a bucket
// made by another Gate (before a reload) takes g's rate and burst,
// keeping the tokens it holds.
func (g *Gate) bucket(client netip.Prefix) *rate.Limiter {
	g.clients.mu.Lock()
	defer g.clients.mu.Unlock()
	b, ok := g.clients.buckets.Get(client)
	if !ok {
		b = rate.NewLimiter(g.rate, g.burst)
		g.clients.buckets.Add(client, b)
		return b
	}
	if b.Limit() != g.rate || b.Burst() != g.burst {
		now := g.now()
		b.SetLimitAt(now, g.rate)
		b.SetBurstAt(now, g.burst)
	}
	return b
}

// client returns the network a request is limited as: the client address
// (see the package doc), as a /32 for IPv4 and a /64 for IPv6. A peer
// address that does not parse (not a TCP connection) is the zero prefix,
// one bucket for all such peers.
func (g *Gate) client(r *http.Request) netip.Prefix {
	addr, ok := peer(r.RemoteAddr)
	if !ok {
		return netip.Prefix{}
	}
	if g.trusted(addr) {
		addr = g.forwardedFor(r, addr)
	}
	return network(addr)
}

func peer(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func (g *Gate) trusted(a netip.Addr) bool {
	for _, p := range g.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor walks the X-Forwarded-For entries of a trusted peer from
// the right and returns the first address that is not a trusted proxy, or
// the last address it could read.
func (g *Gate) forwardedFor(r *http.Request, from netip.Addr) netip.Addr {
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return from
		}
		a = a.Unmap()
		if !g.trusted(a) {
			return a
		}
		from = a
	}
	return from
}

func network(a netip.Addr) netip.Prefix {
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits) // cannot fail: bits fits the family
	return p
}

// PerHour converts tokens per hour into a rate.
func PerHour(n int) rate.Limit { return rate.Limit(float64(n) / 3600) }

// RetryAfterSeconds is d rounded up to whole seconds, at least 1: the value
// of a Retry-After header (RFC 9110 §10.2.3).
func RetryAfterSeconds(d time.Duration) int64 {
	s := math.Ceil(d.Seconds())
	if s < 1 {
		return 1
	}
	return int64(s)
}
