// Package loadgen is the load generator behind `ppredeem bench`: it sends
// Privacy Pass redemptions (JSON-RPC 2.0 requests POSTed to the redeem
// endpoint, as package rpc serves them) to a server and reports throughput,
// latency percentiles and the outcome of every request.
//
// # Tokens are minted before the clock starts
//
// The generator holds the redemption key(s), so it mints tokens directly,
// without issuance: 32 random bytes t, N = k·H2C(t), tag = Key.Tag(t, ...)
// (package verify) with the bindings ["bench.example", "POST /api/redeem"]. Minting costs
// about 60µs per token, as much as the server spends verifying one, so every
// token is minted, and every request body is serialised, before the
// measurement starts; minting runs on GOMAXPROCS goroutines and reports its
// progress. During the measurement a request costs the client one HTTP round
// trip and the decoding of the answer, nothing else.
//
// How many tokens are minted:
//
//   - Count > 0: Count tokens (fewer if Rate×Duration is smaller).
//   - Rate > 0 and Duration only: ⌈Rate×Duration⌉+1 tokens, the exact
//     number of arrivals the schedule holds.
//   - closed loop with Duration only: the pool is sized for an assumed
//     ceiling of 20,000 redemptions/s (far above what one 2-core box
//     sustains), clamped to [1,000, DefaultPoolCap = 200,000]; Config.PoolSize
//     overrides it. If the server is faster than that, the run ends early when
//     the pool is used up, and the report says so in Notes. A token is never
//     reused to stretch the pool: that would be a double spend the mix did not
//     ask for.
//
// # The HTTP client
//
// The generator runs on the machine of the server it measures, so every
// microsecond of CPU it spends per request is taken from the server.
// net/http's Client costs 70–100µs of CPU and 62 allocations per round
// trip, each request handed between the caller and the connection's reader
// and writer goroutines. The client here is valyala/fasthttp's HostClient
// (https://github.com/valyala/fasthttp), which writes and reads on the
// caller's goroutine with buffers it reuses, for http:// and https:// URLs
// alike (over its own use of crypto/tls, configured by Config.TLSConfig).
// What it is told:
//
//   - at most Concurrency keep-alive connections, one per request in flight;
//     one idle for longer than Config.IdleConnTimeout (default 500ms) is
//     closed rather than reused, so that one the server closed while it was
//     idle does not cost a request (a closed loop never idles);
//   - each request has a deadline of Timeout, dialling included (a dial
//     alone at most 5s);
//   - nothing is retried (fasthttp retries idempotent methods only, and is
//     told not to retry at all): a redemption that may have reached the
//     server is never sent twice;
//   - an answer's body is read whole up to 64 KiB; a longer one is a
//     transport failure (the server's answers are about 100 bytes);
//   - the path and query go out as given (no normalisation), with
//     Content-Type: application/json, no User-Agent, and credentials in the
//     URL as Basic authorization.
//
// Each worker owns a fasthttp Request and Response, reused for every
// request: the request's body is the body built at minting time (not
// copied), and the answer is decoded where it lies by valyala/fastjson
// (https://github.com/valyala/fastjson) with a Parser the worker reuses. A
// round trip, decoding included, allocates nothing. Any error counts the
// request as "transport"; fasthttp closes the connection it happened on, and
// the next request takes another or dials. After a failed dial the worker
// waits before its next request (5ms, doubling up to 200ms, until a request
// gets a connection), so a server that is down does not use up the token
// pool. fasthttp takes no context, so connections are dialled by a dialer
// that keeps track of them: when the run's context is cancelled it closes
// them all, which aborts the requests in flight at once, and dials no more.
//
// Against an in-process server that answers without allocating, a round trip
// costs the process (client and that server) about 30µs of CPU and 0
// allocations (BenchmarkRoundTrip: 30µs with one connection, 37µs with 64),
// against 24–26µs for a bare write and read of the same bytes
// (BenchmarkRawRoundTrip): the client adds 6–10µs, the decoding of the
// answer included (BenchmarkParseOutcome: about 0.3µs; encoding/json takes
// 3–4µs and 8–10 allocations for the same answers). In the same runs, the
// hand-written HTTP/1.1 client this replaced cost 1.20× (one connection) and
// 1.25× (64) less, and against the real server its bench process spent 38µs
// of CPU per redemption where this one spends 46µs (1.19×).
//
// Its limits: HTTP/1.1 only (fasthttp speaks no HTTP/2), no proxy (the
// server is measured, not a proxy), no redirects, no compression, no
// pipelining.
//
// # Closed loop (Rate == 0)
//
// Concurrency workers each send a request, wait for the answer, and send the
// next one. This finds the peak throughput at that concurrency. Its latency
// numbers suffer from coordinated omission: when the server stalls, the
// workers stall with it and stop sending, so a one-second stall shows up as
// Concurrency slow requests rather than as the thousands of requests that a
// real population of clients would have sent (and seen delayed) during that
// second. Closed-loop percentiles therefore understate the tail.
//
// # Open loop (Rate > 0)
//
// Request i is scheduled at start + i/Rate, whatever the server does. Its
// latency is measured from that scheduled time, not from the moment it was
// actually sent, so any delay before sending (waiting for a worker, a timer
// firing late, a stalled connection) is charged to the request: this is the
// usual correction for coordinated omission. Concurrency bounds the requests
// in flight: when request i comes due and Concurrency requests are already in
// flight, it is not queued without bound but dropped and counted under
// Codes["late"]. Late requests consume no token and are not in the latency
// percentiles, so a non-zero late count means the server did not sustain Rate
// at that concurrency and the percentiles are a lower bound. The scheduler
// sends every request that is due at once after a coarse timer wake-up, so
// timer granularity (well under a millisecond on Linux) is included in the
// latency rather than hidden.
//
// # The mix, Expected and Unexpected
//
// Each request is built to get one answer: a fresh token (success), a
// DoubleSpend fraction that re-sends a token whose earlier redemption already
// succeeded (-32021), and a BadTag fraction that sends a fresh token with one
// bit of its tag flipped (-32020; such a token is never marked spent). Kinds
// are interleaved evenly (largest-deficit order), not in blocks. A double
// spend re-sends the body of a completed success, so the original's answer has
// arrived before its copy leaves. Until the first success has arrived there is
// nothing to re-send; such a request is sent as a fresh token instead and a
// later fresh slot becomes a double spend, so the overall mix is kept (a few
// spare tokens are minted for this).
//
// Report.Expected counts, for the requests actually sent, the answer each was
// built to get; Report.Codes counts what came back. Report.Unexpected counts
// answers whose code differs from what that request was built to get.
// Transport failures (connection errors, timeouts, non-JSON-RPC answers) are
// counted under Codes["transport"] and not in Unexpected: they are not
// answers. So sum(Expected) = sum(Codes) − Codes["late"].
//
// # What is counted
//
// Redemptions is the number of JSON-RPC answers received, whatever their code;
// RedemptionsPerSecond divides it by the measured time, which runs from the
// first request to the last answer (in-flight requests are allowed to finish
// when Count or Duration is reached). The latency percentiles (nearest rank
// over every recorded latency, no histogram approximation) cover the same
// answered requests; transport failures are excluded, since a refused
// connection answers in microseconds and a timeout says only "≥ Timeout".
// Cancelling the context stops the run: requests aborted by the cancellation
// are not counted at all, and Run returns the report of what completed with a
// note that the run was interrupted. If there were transport failures, a note
// quotes one of their errors.
//
// # Failure
//
// Report.Err is not nil when any request got an unexpected answer
// (Unexpected > 0) or a transport failure (Codes["transport"] > 0); the
// answers the mix asks for, late requests and an early stop are not
// failures. `ppredeem bench` writes the report, then exits 1 if Err is not
// nil, so that scripts notice.
package loadgen
