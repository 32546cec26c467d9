package httpbody

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// request is a server-side request with body and its declared length
// (-1: chunked, no Content-Length).
func request(body io.Reader, length int64) *http.Request {
	r, _ := http.NewRequest("POST", "http://x/", body)
	r.Body = io.NopCloser(body)
	r.ContentLength = length
	return r
}

// failingReader fails the test when anything reads it.
type failingReader struct{ t *testing.T }

func (f failingReader) Read([]byte) (int, error) {
	f.t.Error("the body was read")
	return 0, io.EOF
}

func TestReadSized(t *testing.T) {
	b := NewBudget(1 << 20)
	for _, size := range []int{1, 300, pooledSize, pooledSize + 1, SmallBody, SmallBody + 1, 200 << 10} {
		want := bytes.Repeat([]byte("x"), size)
		body, err := b.Read(request(bytes.NewReader(want), int64(size)), 256<<10)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if !bytes.Equal(body.Bytes(), want) {
			t.Fatalf("%d bytes: read %d different bytes", size, len(body.Bytes()))
		}
		// Sized from the Content-Length: a pooled buffer up to 4 KiB, an
		// exact one beyond, and the charge is what is held.
		wantCharge := int64(size)
		if size <= pooledSize {
			wantCharge = pooledSize
			if body.pooled == nil || cap(body.buf) != pooledSize {
				t.Fatalf("%d bytes: not in a pooled buffer (cap %d)", size, cap(body.buf))
			}
		} else if cap(body.buf) != size {
			t.Fatalf("%d bytes: buffer of cap %d", size, cap(body.buf))
		}
		if b.InUse() != wantCharge {
			t.Fatalf("%d bytes: %d in use, want %d", size, b.InUse(), wantCharge)
		}
		body.Release()
		body.Release() // twice is harmless
		if b.InUse() != 0 {
			t.Fatalf("%d bytes: %d still in use after Release", size, b.InUse())
		}
	}
}

func TestReadRefusesWithoutReading(t *testing.T) {
	b := NewBudget(1 << 20)
	_, err := b.Read(request(failingReader{t}, 1001), 1000)
	var tooBig *TooLargeError
	if !errors.As(err, &tooBig) || tooBig.Limit != 1000 {
		t.Fatalf("Content-Length over the limit: %v", err)
	}
	if b.InUse() != 0 {
		t.Fatalf("%d in use", b.InUse())
	}
	// No body at all.
	r, _ := http.NewRequest("POST", "http://x/", nil)
	body, err := b.Read(r, 1000)
	if err != nil || len(body.Bytes()) != 0 {
		t.Fatalf("no body: %v %q", err, body.Bytes())
	}
	body.Release()
}

func TestReadUnsized(t *testing.T) {
	b := NewBudget(1 << 20)
	const limit = 100 << 10
	for _, size := range []int{0, 1, pooledSize, pooledSize + 1, 3 * pooledSize, limit} {
		want := bytes.Repeat([]byte("y"), size)
		body, err := b.Read(request(bytes.NewReader(want), -1), limit)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		if !bytes.Equal(body.Bytes(), want) {
			t.Fatalf("%d bytes: read %d different bytes", size, len(body.Bytes()))
		}
		// The buffer doubled from 4 KiB, never past the limit, and the
		// final size is what is charged.
		if c := cap(body.buf); c > limit || size > 0 && c >= 2*size && c > pooledSize || b.InUse() != max(int64(c), pooledSize) {
			t.Fatalf("%d bytes: cap %d, in use %d", size, c, b.InUse())
		}
		body.Release()
		if b.InUse() != 0 {
			t.Fatalf("%d bytes: %d in use after Release", size, b.InUse())
		}
	}
	_, err := b.Read(request(bytes.NewReader(make([]byte, limit+1)), -1), limit)
	var tooBig *TooLargeError
	if !errors.As(err, &tooBig) || b.InUse() != 0 {
		t.Fatalf("one byte over the limit: %v, %d in use", err, b.InUse())
	}
}

func TestReadErrors(t *testing.T) {
	b := NewBudget(1 << 20)
	for name, r := range map[string]*http.Request{
		"shorter than its Content-Length": request(strings.NewReader("abc"), 10),
		"longer than its Content-Length":  request(strings.NewReader("abcdef"), 3),
		"a read error":                    request(io.MultiReader(strings.NewReader("ab"), errReader{}), -1),
	} {
		if _, err := b.Read(r, 1000); err == nil || errors.Is(err, ErrBusy) || errors.As(err, new(*TooLargeError)) {
			t.Errorf("%s: %v", name, err)
		}
		if b.InUse() != 0 {
			t.Errorf("%s: %d in use", name, b.InUse())
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestBudgetTiers: large bodies share half the budget, so when they fill
// it small ones still get in; a body that finds no room is refused at once
// and counted, and fits again once room is given back.
func TestBudgetTiers(t *testing.T) {
	const limit = 1 << 20
	b := NewBudget(limit)
	if b.Largest() != limit/2 {
		t.Fatalf("Largest = %d", b.Largest())
	}
	read := func(size int) (*Body, error) {
		return b.Read(request(bytes.NewReader(make([]byte, size)), int64(size)), limit)
	}
	var held []*Body
	for range 2 {
		body, err := read(limit / 4)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, body)
	}
	if _, err := read(SmallBody + 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third large body: %v", err)
	}
	if b.Refused() != 1 {
		t.Fatalf("Refused = %d", b.Refused())
	}
	// Small bodies fill the other half, and no more.
	for range (limit / 2) / SmallBody {
		body, err := read(SmallBody)
		if err != nil {
			t.Fatalf("a small body with large ones holding their half: %v", err)
		}
		held = append(held, body)
	}
	if _, err := read(1); !errors.Is(err, ErrBusy) || b.InUse() != limit {
		t.Fatalf("a full budget: %v, %d in use", err, b.InUse())
	}
	for _, body := range held {
		body.Release()
	}
	if b.InUse() != 0 {
		t.Fatalf("%d in use", b.InUse())
	}
	body, err := read(limit / 2)
	if err != nil {
		t.Fatalf("the largest body in an empty budget: %v", err)
	}
	body.Release()
	if _, err := read(limit/2 + 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("a body over Largest: %v", err)
	}
	// A chunked body that outgrows the room: busy, and its charges given
	// back.
	half, err := read(limit / 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(request(bytes.NewReader(make([]byte, 100<<10)), -1), limit); !errors.Is(err, ErrBusy) {
		t.Fatalf("a chunked body growing past the room: %v", err)
	}
	half.Release()
	if b.InUse() != 0 {
		t.Fatalf("%d in use", b.InUse())
	}
	if _, err := b.Read(request(bytes.NewReader(nil), -1), 0); err == nil {
		t.Fatal("a limit of 0 accepted")
	}
	// A small budget: Largest is the small-body share.
	if got := NewBudget(16 << 10).Largest(); got != 16<<10 {
		t.Fatalf("Largest of 16 KiB = %d", got)
	}
	if NewBudget(0).Limit() != DefaultLimit {
		t.Fatal("NewBudget(0) is not DefaultLimit")
	}
}

// TestBudgetConcurrent: whatever the interleaving, the bytes charged never
// exceed the budget and all come back.
func TestBudgetConcurrent(t *testing.T) {
	const limit = 512 << 10
	b := NewBudget(limit)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				size := (g*7919 + i*104729) % (limit / 2)
				length := int64(size)
				if i%3 == 0 {
					length = -1
				}
				body, err := b.Read(request(bytes.NewReader(make([]byte, size)), length), limit/2)
				if errors.Is(err, ErrBusy) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if n := b.InUse(); n > limit {
					t.Errorf("%d bytes in use, budget %d", n, limit)
				}
				if len(body.Bytes()) != size {
					t.Errorf("read %d of %d bytes", len(body.Bytes()), size)
				}
				body.Release()
			}
		})
	}
	wg.Wait()
	if b.InUse() != 0 {
		t.Fatalf("%d in use at the end", b.InUse())
	}
}
