// Package httpbody reads HTTP request bodies whole under a memory budget
// that every request of a listener shares, and lingers after an answer so
// that a client still sending its body can read the answer. It knows no
// API: each API maps its errors to its own wire shape.
//
// # Reading a body
//
// One Budget per listener, shared by every endpoint on it:
//
//	body, err := budget.Read(r, maxBodyBytes)
//	switch {
//	case errors.Is(err, httpbody.ErrBusy):           // 503, Retry-After: httpbody.RetryAfter
//	case errors.As(err, new(*httpbody.TooLargeError)): // 413 (or the API's own status)
//	case err != nil:                                 // the body could not be read: 400
//	}
//	defer body.Release()
//	use(body.Bytes()) // valid until Release
//
// A body with a Content-Length is checked against the limit before a byte
// is read, charged to the budget for its length, and read into a buffer of
// exactly that size: bodies up to 4 KiB into pooled buffers, larger ones
// into one allocation each, never a buffer that grows by doubling. A
// chunked body (no Content-Length) starts in a pooled buffer and doubles,
// each new size charged before it is allocated, up to the limit.
//
// The budget holds the bytes of the buffers of every body being read or
// used, from Read to Release. Bodies up to SmallBody (64 KiB: a batch of a
// hundred redemptions) may use all of it; larger bodies together use at
// most half, so a flood of large uploads always leaves half the budget to
// the small bodies legitimate requests are. A body that does not fit is
// refused at once with ErrBusy; nothing waits for room. The largest body a
// Budget can ever take is Largest(): a limit above it would be refused for
// ever, so callers check their limit against it when they start.
//
// # What the budget does not bound
//
// Only the buffers are counted. Decoding a body (JSON, then the params)
// allocates again, up to a few times its size for the largest ones, and the
// garbage collector lets the heap grow past the live bytes (GOGC) before it
// runs; an operator caps the whole process with a memory limit
// (runtime/debug.SetMemoryLimit, GOMEMLIMIT). Each connection also costs
// net/http's own buffers (about 8 KiB) whatever its body, and a flood of
// connections each sending a small body slowly can still fill the budget:
// limits per client address belong in front of the server.
//
// # Lingering
//
// Linger wraps a listener's handler. When the handler has answered without
// reading the request body to its end (a body over the limit, a refusal
// for want of room, a POST to a wrong path), Linger sends the answer, then
// reads and discards the rest of the body, at most LingerLimits.Bytes bytes,
// for at most LingerLimits.Total, waiting at most LingerLimits.Idle for
// each read, before the handler returns and net/http closes the
// connection. A client that writes its whole body before it reads (Python's
// urllib, many simple clients) would otherwise be reset while still writing
// and never see the answer. This is nginx's lingering close
// (https://nginx.org/en/docs/http/ngx_http_core_module.html#lingering_close,
// #lingering_time, #lingering_timeout) and the staged close of RFC 9112
// §9.6. A body whose declared rest is over the byte bound is not read at
// all (the client would be reset anyway), nor is one whose client asked for
// "Expect: 100-continue" and was never told to send it. Linger must be the
// outermost handler: it needs net/http's own ResponseWriter to flush the
// answer and set read deadlines (http.ResponseController).
//
// Go's server answers some malformed requests itself before any handler
// runs (431 for headers over the limit, 400 for a malformed request) and
// closes without lingering; see README "Limits".
package httpbody
