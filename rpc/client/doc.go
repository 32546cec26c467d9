// Package client is the Go client of ppredeem, for relay gateways that
// delegate Privacy Pass redemptions to a ppredeem server, and for token
// holders that get tokens from a legacy Privacy Pass issuer (Issue).
//
// It sends one JSON-RPC 2.0 request per redemption (verify/PROTOCOL.md §1):
//
//	POST <endpoint>   Content-Type: application/json
//	{"jsonrpc":"2.0","method":"redeem","id":<n>,"params":{
//	  "data":[<token>,<tag>,<settings>],"bindings":[...],"compressed":<bool>}}
//
// where token and tag are standard padded base64, settings is the standard
// base64 of {"curve":"p256","hash":"sha256","method":"increment"|"swu"},
// and n is a number that increases with every HTTP request of the Client.
// It imports the standard library, rpc/wire (the endpoint, method name and
// error codes it shares with the server; itself import-free) and, for
// issuance, filippo.io/nistec and filippo.io/bigmod (P-256 points and
// scalars): none of the server's packages.
//
// # Outcomes
//
// Redeem returns nil only when the server answered "success": the token is
// spent now, by this call, and the gateway may serve the request. Every
// other outcome is an *Error, which carries the JSON-RPC code and message,
// the HTTP status and the number of attempts, and wraps sentinels for
// errors.Is (the codes are rpc/wire's):
//
//   - ErrBadTag (-32020), ErrAlreadySpent (-32021), ErrUnsupportedCurve
//     (-32022), ErrInvalidParams (-32602), ErrInvalidRequest (-32600,
//     -32601, -32700, -32040, -32041): definite refusals; ppredeem checks
//     everything before spending, so the token was not spent by this call.
//     ErrInvalidParams is also returned, without any network use
//     (Attempts 0), for arguments the server would refuse: an empty token,
//     a tag that is not 32 bytes, a binding that is not valid UTF-8, a
//     method other than "increment" or "swu".
//   - ErrBusy (-32050, HTTP 503): the server had no room for the request
//     body and read nothing; definite, nothing was spent. Redeem does not
//     retry it; the caller may, after the server's Retry-After delay.
//   - ErrInternal (-32603, HTTP 500) ALSO wraps ErrAmbiguous: the server
//     answers -32603 for failures that can come after the spent-token store
//     committed (a lost commit acknowledgement), so the token may be spent.
//   - ErrAmbiguous: the request may have reached the server, and no
//     definite answer came back: a timeout, a lost connection or an ended
//     context once the transport began writing the request (unless it
//     reported the write failed), a response that is not strict JSON-RPC
//     2.0 (a 502 page from a proxy, a redirect, a body over 64 KiB, a wrong
//     id...), or an error code outside the table. The token MAY have been
//     spent. Do not redeem
//     it again (that could only answer ErrAlreadySpent, which would not tell
//     whether this call spent it): treat the redemption as failed, as the
//     gateway's policy says (ask the user agent for a new token).
//   - ErrNotSent: no attempt delivered a complete request (connection
//     refused, DNS or TLS failure, a failed write, or a context that ended
//     before the transport began writing the request). The token was not
//     spent; it may be redeemed later.
//
// When the context ended, the error also wraps ctx.Err()
// (context.Canceled or context.DeadlineExceeded) next to ErrAmbiguous or
// ErrNotSent. Transport failures also wrap the underlying error (a
// *url.Error and what it wraps, such as a *net.OpError).
//
// # Retries
//
// A redemption is not idempotent: repeating one that the server committed
// turns the gateway's own success into ErrAlreadySpent, and the client
// could not tell that answer from a genuine double spend. So an attempt is
// repeated (up to Options.MaxAttempts in all) only when it provably did not
// deliver a complete request, as net/http/httptrace reports it:
//
//   - the transport began getting a connection (GetConn) and none was
//     obtained (no GotConn): connection refused, DNS failure, dial timeout,
//     TLS handshake failure, proxy failure;
//   - a connection was obtained but the transport never began writing the
//     request on it (no WroteHeaderField after the last GotConn), e.g. the
//     server reset a fresh connection; or
//   - the transport reported that writing the request failed
//     (WroteRequest with an error): the request did not reach the server
//     whole. The body has a Content-Length and its last byte is the closing
//     brace of the JSON object, so an incomplete request cannot be parsed,
//     and ppredeem parses nothing before it has read the whole body.
//
// Everything else is final and never repeated: every answer the server
// gave (including -32603 and unreadable answers), and every failure once
// the transport began writing the request without reporting a write error
// (a timeout or a lost connection while waiting for the answer, a context
// that ended during the write or the wait). A context that ends stops at
// once: no further attempt, and the error wraps ctx.Err() with ErrAmbiguous
// if the request may have been delivered, with ErrNotSent otherwise.
//
// Waits between attempts grow exponentially with jitter: the n-th retry
// waits a random duration in [d/2, d], d = Backoff·2ⁿ⁻¹, capped at
// max(Backoff, 2s).
//
// These rules rely on net/http's trace callbacks. A caller-supplied
// Options.HTTPClient must use net/http's Transport, or a RoundTripper that
// hands the request with its context to one; with a RoundTripper that
// reports nothing, every transport failure counts as ambiguous. It must not
// retry on its own (no retrying RoundTripper). The client is copied, and the
// copy never follows redirects.
//
// Keep-alive has one ambiguous race: a request sent on an idle connection
// just as the server closes it gets no answer, which cannot be told from a
// server that crashed after spending. net/http does not replay such a POST
// and neither does this client: the error is ErrAmbiguous. Closing idle
// connections on the client side first avoids the race; the default
// client does (DefaultIdleConnTimeout).
//
// net/http's own replays stay safe: for HTTP/1 its Transport re-sends a POST
// only when a reused keep-alive connection failed before any byte was
// written, and this client never sets an Idempotency-Key header, which
// would allow more. Over HTTP/2 it also replays a request the server
// refused (REFUSED_STREAM, or a GOAWAY that excludes the stream), which the
// server guarantees it did not process, and, as a workaround for some
// servers, one the server reset with PROTOCOL_ERROR (golang/go#47635);
// a Go server sends that for malformed streams, before any handler could
// have read a complete request.
//
// # Issuance
//
// Issue gets tokens from a legacy issuer such as ppredeem's /api/issue,
// doing what the browser extension does (privacypass/challenge-bypass-extension
// v2.0.6 src/ext/issuance.js and src/crypto/local.js, v3.0.6
// src/background/voprf.js and its providers; verify/PROTOCOL.md §4, §6, §7),
// written from that code and the protocol description, not from the
// server's:
//
//  1. for each token, 32 random bytes t, T = H2C(t) by try-and-increment,
//     a random scalar r in [1, n-1] and the blinded point M = r·T;
//  2. POST {"bl_sig_req":"<b64 of {\"type\":\"Issue\",\"contents\":[M...]}>"}
//     (or the extension's form body blinded-tokens=...), with
//     "Authorization: Bearer <attester key>" when one is given;
//  3. read {"signatures":"<b64 of {sigs, proof, version, prng}>"} as the
//     extension reads it (also its older array form), and the commitment
//     H of the key version it names, fetched from /api/commitments or
//     given (Commitment, ParseCommitments);
//  4. verify the batch DLEQ proof that log_G(H) = log_M(Z) for every pair,
//     with composite coefficients from SHAKE256 ("shake") or HKDF-SHA256
//     ("hkdf"), the two generators the extension knows;
//  5. unblind N = r⁻¹·Z.
//
// The proof's challenge C is compared with the digest as a number, so a
// valid proof is accepted also when C < 2²⁴⁸, the one case in 256 that
// the extension refuses (it compares C's shortest encoding with the 32
// bytes of the digest); ppredeem's issuer never sends such a proof. The
// commitments are fetched before the request, so that a failed fetch
// issues nothing; a commitment without a version, given alone, is taken
// for whatever key version the answer names.
//
// A Token holds t and N; Tag, RedeemRequest and Client.RedeemToken redeem
// it. Tokens hash with the method "increment", what every shipped client
// uses; the "swu" map is not implemented for issuance. All tokens of a
// request come back, or none: an answer whose proof fails (ErrBadProof)
// may be signed with a key kept for this client alone, which would tell
// its redemptions apart.
//
// The secrets t, r and N are handled with nistec's and bigmod's
// constant-time arithmetic (r⁻¹ by Fermat's little theorem); the proof is
// public and is checked with the same code.
//
// # Secrets
//
// The package never logs, and no error text holds a token, a tag, the
// bindings, a blinding scalar or an attester key; fmt prints a Token as
// "client.Token{redacted}". Error.Message is either a fixed description or the server's
// message, bounded to 256 bytes with control characters replaced; response
// bodies are never quoted.
package client
