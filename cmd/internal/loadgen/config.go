package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"time"

	"github.com/ppredeem/ppredeem/verify"
)

// Defaults for the zero values of Config.
const (
	DefaultConcurrency = 64
	DefaultTimeout     = 10 * time.Second
	// DefaultIdleConnTimeout is the default of Config.IdleConnTimeout.
	DefaultIdleConnTimeout = 500 * time.Millisecond
	// DefaultProgressInterval is the default of Config.ProgressInterval.
	DefaultProgressInterval = time.Second
	// DefaultPoolCap bounds the tokens minted for a run that Count does not
	// bound (closed loop with Duration only, or Rate×Duration above it).
	DefaultPoolCap = 200_000
	// minPool is the smallest pool minted for a closed-loop Duration-only run.
	minPool = 1_000
	// assumedMaxRate sizes the pool of a closed-loop Duration-only run:
	// redemptions/s that one box is not expected to exceed.
	assumedMaxRate = 20_000
)

// Config describes one benchmark run.
type Config struct {
	URL         string        // e.g. http://127.0.0.1:8080/api/redeem
	Keys        []*verify.Key // tokens are minted round-robin across Keys
	Method      verify.Method // hash-to-curve method; default verify.Increment
	Concurrency int           // closed-loop workers, open-loop bound on in-flight requests (default 64)
	Count       int           // total redemptions, open loop: scheduled arrivals incl. late (0 = unlimited, then Duration must be set)
	Duration    time.Duration // stop after this long (0 = until Count is done)
	// Rate > 0 selects the open loop: requests are scheduled at a fixed
	// arrival rate (redemptions/s), latency is measured from the scheduled
	// time, and a request that is due while Concurrency requests are in
	// flight is dropped and counted as "late".
	Rate        float64
	DoubleSpend float64       // fraction [0,1] re-sending an already redeemed token (expect -32021)
	BadTag      float64       // fraction [0,1] with a corrupted tag (expect -32020)
	Timeout     time.Duration // per request, default 10s
	Progress    io.Writer     // a progress line per second (stderr in the CLI); nil = none
	// PoolSize, if > 0, is the number of tokens to mint when Count does not
	// bound the run (Duration only). 0 = estimate (see the package doc).
	PoolSize int
	// TLSConfig configures https:// connections; nil uses the system's
	// roots and the URL's host as the server name.
	TLSConfig *tls.Config
	// IdleConnTimeout closes a keep-alive connection that has been idle for
	// longer instead of reusing it, so that one the server closed while it
	// was idle does not cost a request a transport failure (a closed loop
	// never idles). Default 500ms, below any usual server idle timeout.
	IdleConnTimeout time.Duration
	// ProgressInterval is how often a progress line is written to Progress
	// (default 1s).
	ProgressInterval time.Duration
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, errors.New("loadgen: no URL")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, fmt.Errorf("loadgen: URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return c, fmt.Errorf("loadgen: URL %q: want http(s)://host/path", c.URL)
	}
	if len(c.Keys) == 0 {
		return c, errors.New("loadgen: no key to mint tokens with")
	}
	for i, k := range c.Keys {
		if k == nil {
			return c, fmt.Errorf("loadgen: key %d is nil", i)
		}
	}
	if c.Method == 0 {
		c.Method = verify.Increment
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Concurrency < 0 {
		return c, fmt.Errorf("loadgen: concurrency %d < 0", c.Concurrency)
	}
	if c.Count < 0 {
		return c, fmt.Errorf("loadgen: count %d < 0", c.Count)
	}
	if c.Duration < 0 {
		return c, fmt.Errorf("loadgen: duration %v < 0", c.Duration)
	}
	if c.Count == 0 && c.Duration == 0 {
		return c, errors.New("loadgen: set a count, a duration, or both")
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return c, fmt.Errorf("loadgen: rate %v: want a finite rate ≥ 0", c.Rate)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"double-spend", c.DoubleSpend}, {"bad-tag", c.BadTag}} {
		if !(f.v >= 0 && f.v <= 1) {
			return c, fmt.Errorf("loadgen: %s fraction %v not in [0,1]", f.name, f.v)
		}
	}
	if c.DoubleSpend+c.BadTag > 1 {
		return c, fmt.Errorf("loadgen: double-spend %v + bad-tag %v > 1", c.DoubleSpend, c.BadTag)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("loadgen: timeout %v < 0", c.Timeout)
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"idle connection timeout", c.IdleConnTimeout}, {"progress interval", c.ProgressInterval}} {
		if d.v < 0 {
			return c, fmt.Errorf("loadgen: %s %v < 0", d.name, d.v)
		}
	}
	if c.PoolSize < 0 {
		return c, fmt.Errorf("loadgen: pool size %d < 0", c.PoolSize)
	}
	return c, nil
}

// plan is how many tokens a run mints.
type plan struct {
	pool       int // requests the tokens are minted for
	valid, bad int // tokens with a good tag, tokens with a flipped bit
}

// newPlan sizes the token pool for c (see the package doc).
func newPlan(c Config) plan {
	var p plan
	switch {
	case c.Count > 0:
		p.pool = c.Count
		if c.Rate > 0 && c.Duration > 0 {
			if n := scheduled(c.Rate, c.Duration); n < p.pool {
				p.pool = n
			}
		}
	case c.Rate > 0:
		p.pool = scheduled(c.Rate, c.Duration)
		limit := DefaultPoolCap
		if c.PoolSize > 0 {
			limit = c.PoolSize
		}
		if p.pool > limit {
			p.pool = limit
		}
	default:
		p.pool = int(min(math.Ceil(c.Duration.Seconds()*assumedMaxRate), DefaultPoolCap))
		p.pool = max(p.pool, minPool)
		if c.PoolSize > 0 {
			p.pool = c.PoolSize
		}
	}
	n := float64(p.pool)
	fresh := 1 - c.DoubleSpend - c.BadTag
	if c.BadTag > 0 {
		p.bad = int(math.Ceil(n*c.BadTag)) + 1
	}
	if fresh > 1e-9 {
		p.valid = int(math.Ceil(n*fresh)) + 1
	}
	if c.DoubleSpend > 0 {
		// Spare fresh tokens for the double spends that come due before the
		// first success has arrived (at most about one per worker).
		p.valid += min(int(math.Ceil(n*c.DoubleSpend)), 2*c.Concurrency+16)
	}
	// Never mint more than the run can send.
	p.bad = min(p.bad, p.pool)
	p.valid = min(p.valid, p.pool)
	return p
}

// scheduled is the number of open-loop arrivals at rate in d, plus one for
// rounding.
func scheduled(rate float64, d time.Duration) int {
	n := math.Ceil(rate*d.Seconds()) + 1
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}
