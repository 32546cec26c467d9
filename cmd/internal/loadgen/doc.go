// Package loadgen is the load generator behind `ppredeem bench`: it sends
// Privacy Pass redemptions (JSON-RPC 2.0 over HTTP, PROTOCOL.md §1) to a
// server and reports throughput, latency percentiles and the outcome of every
// request.
//
// # Tokens are minted before the clock starts
//
// The generator holds the redemption key(s), so it mints tokens directly
// (PROTOCOL.md §7): 32 random bytes t, N = k·H2C(t), tag = Key.Tag(t, ...)
// with the bindings ["bench.example", "POST /api/redeem"]. Minting costs
// about 60µs per token, as much as the server spends verifying one, so every
// token is minted, and every request body is serialised, before the
// measurement starts; minting runs on GOMAXPROCS goroutines and reports its
// progress. During the measurement a request costs the client one HTTP round
// trip and a substring scan of the answer, nothing else.
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
// microsecond of CPU it spends per request is taken from the server. With
// net/http's Client it spent about 90µs of CPU per request (0.44 cores at
// 4,700 redemptions/s on a 2-core box), as much as the server's
// elliptic-curve work: about 60 allocations per request, and each request
// handed between the caller and the connection's reader and writer
// goroutines. For http:// URLs the package therefore has its own minimal
// HTTP/1.1 client (h1.go): each worker owns one keep-alive connection
// (so at most Concurrency connections, in both loops), writes the request
// pre-built at minting time (request line, Host, Content-Type,
// Content-Length and body: one write call), and reads the answer from a
// bufio.Reader that lives as long as the connection: the status line, the
// headers it needs (Content-Length, Transfer-Encoding, Connection), then the
// body into a reused buffer, which parseOutcome scans. A round trip
// allocates nothing. Each request has a deadline of Timeout, dialling
// included. Any I/O or protocol error counts the request as "transport" and
// closes the connection; the next request redials, after a backoff (5ms
// doubling to 200ms) if the last dial failed. An answer with "Connection:
// close" (or HTTP/1.0 without keep-alive, or a body delimited by the end of
// the connection) is read and counted, then the connection is redialled. A
// connection idle for more than 500ms is probed (a non-blocking peek, on
// Linux, macOS and the BSDs) before reuse, so one the server closed while idle is redialled instead of failing
// a request. Answers with a chunked body are decoded; any other
// Transfer-Encoding, conflicting lengths, or a malformed status or header
// line is a transport failure. Nothing is retried: a redemption that may
// have reached the server is never sent twice.
//
// Measured against ppredeem on a 2-core VM (closed loop, 64 connections,
// CPU of the bench process during the measurement), the client went from
// 80–100µs to 29–50µs of CPU per request, its user time from 60–70µs to
// 15–22µs, and the server, given that CPU back, answered 12–40% more
// redemptions per second. The rest is kernel and Go-runtime time that any
// client pays: the loopback TCP write (which also runs the server's receive
// processing) and the wake-ups of the network poller's threads. The open
// loop costs more per request (130µs at 2,000/s, 180µs before): each arrival
// also costs a timer wake-up of the scheduler and a hand-over to a worker. The
// benchmarks against a trivial in-process server say the same: a round trip
// costs the process (client and server) about 25µs of CPU and 0 allocations
// (BenchmarkClientRoundTrip, one connection; 22–25µs with 64), against
// 95–100µs and 62 allocations (4.9 kB) through net/http
// (BenchmarkNetHTTPRoundTrip; 50–63µs with 64 connections) and about 20µs for
// a bare write and read (BenchmarkRawRoundTrip): the client itself adds a few
// microseconds.
//
// Its limits: HTTP/1.1 (and 1.0 answers) only, no TLS, no proxy (net/http
// was not given one either), no redirects, no HTTP/2, no compression, no
// pipelining. https:// URLs use net/http as before, with its cost.
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
package loadgen
