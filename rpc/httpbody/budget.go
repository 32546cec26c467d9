package httpbody

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// DefaultLimit is the budget of a Budget made with a limit of zero.
const DefaultLimit = 16 << 20

// SmallBody is the largest body that may use the whole budget; larger
// bodies together use at most half of it. A JSON-RPC batch of a hundred
// redemptions is about 40 KB.
const SmallBody = 64 << 10

// pooledSize is the size of the pooled buffers: a redemption is a few
// hundred bytes, a few KB with bindings.
const pooledSize = 4 << 10

// RetryAfter is how long a client refused with ErrBusy should wait before
// trying again (the Retry-After header, RFC 9110 §10.2.3). Bodies are held
// for milliseconds when their clients send at once, and never longer than
// the server's read timeout plus the time to answer.
const RetryAfter = time.Second

// ErrBusy is returned by Read when the budget has no room for the body now.
// Nothing was read: the client may send the same request again later.
var ErrBusy = errors.New("httpbody: no room for the request body in the memory budget")

// TooLargeError is returned by Read for a body over its limit. Nothing of
// it is kept.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("httpbody: the request body is larger than the limit of %d bytes", e.Limit)
}

// Budget bounds the bytes of request bodies held in memory at once. It is
// safe for concurrent use; share one per listener.
type Budget struct {
	limit   int64
	all     *semaphore.Weighted // every body
	large   *semaphore.Weighted // bodies over SmallBody; half the limit
	inUse   atomic.Int64
	refused atomic.Uint64
	pool    sync.Pool // *[]byte of pooledSize
}

// NewBudget returns a budget of limit bytes (DefaultLimit when limit is
// zero or negative).
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		limit = DefaultLimit
	}
	b := &Budget{
		limit: limit,
		all:   semaphore.NewWeighted(limit),
		large: semaphore.NewWeighted(limit / 2),
	}
	b.pool.New = func() any { buf := make([]byte, pooledSize); return &buf }
	return b
}

// Limit is the budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Largest is the largest body Read can ever admit: a limit passed to Read
// above it would be refused with ErrBusy every time.
func (b *Budget) Largest() int64 { return max(b.limit/2, min(SmallBody, b.limit)) }

// InUse is the number of bytes charged now.
func (b *Budget) InUse() int64 { return b.inUse.Load() }

// Refused is the number of bodies refused with ErrBusy so far.
func (b *Budget) Refused() uint64 { return b.refused.Load() }

// acquire charges n bytes, or reports that they do not fit.
func (b *Budget) acquire(n int64) bool {
	if n > SmallBody {
		if !b.large.TryAcquire(n) {
			return false
		}
		if !b.all.TryAcquire(n) {
			b.large.Release(n)
			return false
		}
	} else if !b.all.TryAcquire(n) {
		return false
	}
	b.inUse.Add(n)
	return true
}

func (b *Budget) release(n int64) {
	b.inUse.Add(-n)
	b.all.Release(n)
	if n > SmallBody {
		b.large.Release(n)
	}
}

// Body is a request body read whole. Its bytes stay charged to the budget
// until Release.
type Body struct {
	budget *Budget
	buf    []byte  // the buffer, buf[:n] the body
	n      int     // body length
	charge int64   // bytes charged; 0 once released
	pooled *[]byte // buf's pool entry, if it came from the pool
}

// Bytes is the body. It is valid until Release: a pooled buffer goes to the
// next request.
func (x *Body) Bytes() []byte { return x.buf[:x.n] }

// Release gives the body's bytes back to the budget. It may be called more
// than once; Bytes must not be used after it.
func (x *Body) Release() {
	if x == nil || x.budget == nil {
		return
	}
	if x.pooled != nil {
		x.budget.pool.Put(x.pooled)
	}
	if x.charge > 0 {
		x.budget.release(x.charge)
	}
	*x = Body{}
}

// buffer charges size bytes and returns a buffer of that length, pooled
// when size is at most pooledSize. false: no room.
func (b *Budget) buffer(size int64) (buf []byte, pooled *[]byte, charge int64, ok bool) {
	charge = size
	if size <= pooledSize {
		charge = pooledSize
	}
	if !b.acquire(charge) {
		b.refused.Add(1)
		return nil, nil, 0, false
	}
	if size <= pooledSize {
		pooled = b.pool.Get().(*[]byte)
		return (*pooled)[:size], pooled, charge, true
	}
	return make([]byte, size), nil, charge, true
}

// Read reads r's body whole; max (positive) bounds its length. It returns
// ErrBusy when the budget has no room for it (nothing was read, but for a
// chunked body that outgrew the room: what was read is thrown away), a
// *TooLargeError for a body over max (a Content-Length over max is refused
// before anything is read), and an error wrapping the cause when the body
// could not be read (the client left, a read timeout, malformed chunking,
// a body shorter than its Content-Length). On success the caller must
// Release the Body. A request without a body gives an empty Body.
func (b *Budget) Read(r *http.Request, max int64) (*Body, error) {
	switch {
	case max <= 0:
		return nil, fmt.Errorf("httpbody: the body limit must be positive, not %d", max)
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		return &Body{}, nil
	case r.ContentLength > max:
		return nil, &TooLargeError{Limit: max}
	case r.ContentLength > 0:
		return b.readSized(r.Body, r.ContentLength)
	default:
		return b.readUnsized(r.Body, max)
	}
}

// readSized reads a body of known length into a buffer of that length.
func (b *Budget) readSized(body io.Reader, length int64) (*Body, error) {
	buf, pooled, charge, ok := b.buffer(length)
	if !ok {
		return nil, ErrBusy
	}
	x := &Body{budget: b, buf: buf, n: len(buf), charge: charge, pooled: pooled}
	if _, err := io.ReadFull(body, buf); err != nil {
		x.Release()
		return nil, readError(err)
	}
	// Read on to the end, so the server sees the body finished; net/http
	// never gives more than the Content-Length.
	var one [1]byte
	switch _, err := io.ReadFull(body, one[:]); err {
	case io.EOF:
		return x, nil
	case nil:
		x.Release()
		return nil, errors.New("httpbody: the request body is longer than its Content-Length")
	default:
		x.Release()
		return nil, readError(err)
	}
}

// readUnsized reads a body of unknown length (chunked) into a buffer that
// doubles, charging each size before it is allocated, up to max bytes.
func (b *Budget) readUnsized(body io.Reader, max int64) (*Body, error) {
	buf, pooled, charge, ok := b.buffer(min(int64(pooledSize), max))
	if !ok {
		return nil, ErrBusy
	}
	x := &Body{budget: b, buf: buf, charge: charge, pooled: pooled}
	fail := func(err error) (*Body, error) {
		x.Release()
		return nil, err
	}
	for {
		if x.n == len(x.buf) {
			// Full: grow only if there is more to come.
			var one [1]byte
			switch _, err := io.ReadFull(body, one[:]); {
			case err == io.EOF:
				return x, nil
			case err != nil:
				return fail(readError(err))
			case int64(x.n) == max:
				return fail(&TooLargeError{Limit: max})
			case !x.grow(min(2*int64(len(x.buf)), max)):
				return fail(ErrBusy)
			}
			x.buf[x.n] = one[0]
			x.n++
		}
		n, err := body.Read(x.buf[x.n:])
		x.n += n
		switch {
		case err == io.EOF:
			return x, nil
		case err != nil:
			return fail(readError(err))
		}
	}
}

// grow moves the body to a buffer of size bytes, charged before it is
// allocated; the old buffer's charge is given back once it is copied.
func (x *Body) grow(size int64) bool {
	b := x.budget
	buf, pooled, charge, ok := b.buffer(size)
	if !ok {
		return false
	}
	copy(buf, x.buf[:x.n])
	n := x.n
	x.Release() // the old buffer: its pool entry and its charge
	*x = Body{budget: b, buf: buf, n: n, charge: charge, pooled: pooled}
	return true
}

func readError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("httpbody: reading the request body: %w", err)
}
