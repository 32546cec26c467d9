package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ppredeem/ppredeem/verify"
)

// Bindings are the request bindings every minted token is bound to: what a
// browser would send for POST /api/redeem on host bench.example.
var Bindings = []string{"bench.example", "POST /api/redeem"}

// tokenLen is the size of a token t; every known client uses 32 random bytes.
const tokenLen = 32

// mintChunk is how many tokens a minting goroutine claims at a time.
const mintChunk = 64

// mintRetries is how many other random tokens are tried when a token cannot
// be minted (it does not hash to the curve) before minting fails.
const mintRetries = 8

// tokens are the pre-built request bodies of a run.
type tokens struct {
	valid [][]byte // request bodies with good tags
	bad   [][]byte // request bodies with one bit of the tag flipped
}

// bodyTemplate holds the parts of a request body that do not change.
type bodyTemplate struct {
	params   string // base64 of {"curve","hash","method"}
	bindings string // JSON array
}

func newBodyTemplate(m verify.Method) (bodyTemplate, error) {
	params, err := json.Marshal(struct {
		Curve  string `json:"curve"`
		Hash   string `json:"hash"`
		Method string `json:"method"`
	}{"p256", "sha256", m.String()})
	if err != nil {
		return bodyTemplate{}, err
	}
	b, err := json.Marshal(Bindings)
	if err != nil {
		return bodyTemplate{}, err
	}
	return bodyTemplate{
		params:   base64.StdEncoding.EncodeToString(params),
		bindings: string(b),
	}, nil
}

// appendBody appends the JSON-RPC redeem request for (t, tag) to dst.
func (bt *bodyTemplate) appendBody(dst []byte, id int, t, tag []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","method":"redeem","id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, `,"params":{"data":["`...)
	dst = base64.StdEncoding.AppendEncode(dst, t)
	dst = append(dst, `","`...)
	dst = base64.StdEncoding.AppendEncode(dst, tag)
	dst = append(dst, `","`...)
	dst = append(dst, bt.params...)
	dst = append(dst, `"],"bindings":`...)
	dst = append(dst, bt.bindings...)
	dst = append(dst, `,"compressed":false}}`...)
	return dst
}

// bodyLen is the length of a body for a 32-byte token and tag and the id.
func (bt *bodyTemplate) bodyLen(id int) int {
	var digits [20]byte
	return bt.fixedLen() + len(strconv.AppendInt(digits[:0], int64(id), 10))
}

// fixedLen is the length of a body without its id.
func (bt *bodyTemplate) fixedLen() int {
	return len(`{"jsonrpc":"2.0","method":"redeem","id":`) +
		len(`,"params":{"data":["`) + 2*base64.StdEncoding.EncodedLen(tokenLen) + len(`","`) + len(`","`) +
		len(bt.params) + len(`"],"bindings":`) + len(bt.bindings) + len(`,"compressed":false}}`)
}

// mint mints nValid tokens with good tags and nBad with a flipped tag bit
// under c.Keys with c.Method, on GOMAXPROCS goroutines, and builds their
// request bodies; progress goes to c.Progress. Token j is minted under
// c.Keys[j%len(c.Keys)].
func mint(ctx context.Context, c Config, nValid, nBad int) (*tokens, error) {
	keys, m, progress := c.Keys, c.Method, c.Progress
	bt, err := newBodyTemplate(m)
	if err != nil {
		return nil, err
	}
	total := nValid + nBad
	bodies := make([][]byte, total)
	maxLen := bt.bodyLen(total)

	var (
		next     atomic.Int64 // next chunk start
		done     atomic.Int64 // tokens minted
		errOnce  sync.Once
		firstErr error
		failed   atomic.Bool
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		failed.Store(true)
	}
	procs := min(runtime.GOMAXPROCS(0), max(1, (total+mintChunk-1)/mintChunk))

	start := time.Now()
	stopProgress := startTicker(progress, c.ProgressInterval, func(now time.Time) {
		fmt.Fprintf(progress, "bench: minting %d/%d tokens (%.1fs)\n",
			done.Load(), total, now.Sub(start).Seconds())
	})

	var wg sync.WaitGroup
	for range procs {
		wg.Go(func() {
			var rnd [mintChunk * tokenLen]byte
			for !failed.Load() {
				if ctx.Err() != nil {
					fail(ctx.Err())
					return
				}
				lo := int(next.Add(mintChunk)) - mintChunk
				if lo >= total {
					return
				}
				hi := min(lo+mintChunk, total)
				if _, err := rand.Read(rnd[:(hi-lo)*tokenLen]); err != nil {
					fail(err)
					return
				}
				// One allocation per chunk; each body is capped so that it
				// cannot grow into its neighbour.
				arena := make([]byte, 0, (hi-lo)*maxLen)
				for j := lo; j < hi; j++ {
					t := rnd[(j-lo)*tokenLen : (j-lo+1)*tokenLen]
					tag, err := keys[j%len(keys)].Tag(t, m, false, Bindings)
					// Try-and-increment fails for about one token in 2²⁰
					// (no point in its 20 rounds): draw another token.
					for retry := 0; err != nil && retry < mintRetries; retry++ {
						if _, err := rand.Read(t); err != nil {
							fail(err)
							return
						}
						tag, err = keys[j%len(keys)].Tag(t, m, false, Bindings)
					}
					if err != nil {
						fail(fmt.Errorf("loadgen: minting token %d: %w", j, err))
						return
					}
					if len(tag) != tokenLen {
						fail(fmt.Errorf("loadgen: minting token %d: tag is %d bytes, want %d", j, len(tag), tokenLen))
						return
					}
					var tb [tokenLen]byte
					copy(tb[:], tag)
					if j >= nValid {
						tb[(j*7)%len(tb)] ^= 1 << (j % 8) // corrupt one bit
					}
					off := len(arena)
					arena = bt.appendBody(arena, j+1, t, tb[:])
					if n := len(arena) - off; n > maxLen { // bodyLen is out of date
						fail(fmt.Errorf("loadgen: request %d: body is %d bytes, more than the %d reserved", j, n, maxLen))
						return
					}
					bodies[j] = arena[off:len(arena):len(arena)]
				}
				done.Add(int64(hi - lo))
			}
		})
	}
	wg.Wait()
	stopProgress()
	if firstErr != nil {
		return nil, firstErr
	}
	if progress != nil {
		el := time.Since(start)
		fmt.Fprintf(progress, "bench: minted %d tokens in %.2fs on %d goroutines\n", total, el.Seconds(), procs)
	}
	return &tokens{valid: bodies[:nValid:nValid], bad: bodies[nValid:]}, nil
}

// startTicker calls f every interval until the returned stop function is
// called; stop waits for f to return. With w == nil it does nothing.
func startTicker(w io.Writer, interval time.Duration, f func(now time.Time)) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				f(now)
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}
