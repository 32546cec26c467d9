// Package gateway is the relay gateway a platform runs (`ppredeem
// gateway`): a stateless HTTP service with three endpoints that does the
// client side of Privacy Pass issuance for the platform and delegates
// everything else to a provider API (ppredeem serve, or any service
// speaking the same API) at an upstream base URL. It holds no keys and no
// database: every call carries its own credentials. The design it
// implements is rpc/relay/PROTOCOL.md §2.
//
// # Endpoints
//
//	POST /relays                          → POST /api/privacy/v1/relays
//	  {"claim-type","encryption-key-pem"?,"sandbox"?}
//	  200 {"relay-token","relay-secret","relay-session-access-token"}
//	POST /relays/privacy-passes           → POST /api/privacy/v1/relays/challenge,
//	  Authorization: Bearer <api key>        then POST /api/v1/privacy-passes
//	  {"claim-type"}
//	  200 {"privacy-pass-token"}
//	POST /relays/{relay-token}/redeem     → POST /api/privacy/v1/relays/{relay-token}/generate-claim
//	  Persona-Relay-Secret: <relay secret>
//	  {"privacy-pass-token"}
//	  200 {"claim-payload","token-consumed"}
//	GET /healthz   200 while the process serves
//	GET /readyz    200 while GET <upstream>/healthz answers below 500
//	               (checked at most once a second) and no shutdown began
//
// Request members are accepted in kebab-case and in camelCase
// (claim-type or claimType; both with different values is refused);
// unknown members are ignored and never forwarded. Answers use
// kebab-case. A request body may be sent without a Content-Type; one that
// is given must be application/json.
//
// Issuance (POST /relays/privacy-passes) runs package passclient: the
// challenge's token-key-id must be the SHA-256 of its token-key before any
// signature is asked for, and the blind signature must unblind to a valid
// signature over the token input before a pass is returned. The signing
// request carries the caller's bearer key and a random Idempotency-Key,
// the same on each of its retries, so the provider signs and bills a
// retried request once.
//
// A redeem carries the pass as "Authorization: PrivateToken token=<pass>",
// the relay secret, and Idempotency-Key RedeemIdempotencyKey(relay token,
// pass): a hash of the two alone, so a platform that repeats a redeem
// (after a network drop, through any gateway instance) sends the provider
// the same key and gets the same claim back rather than a double-spend
// error.
//
// # Errors
//
// Every failure is {"errors":[{"title":"…","details":"…"}]}; titles are a
// contract, details are fixed texts that never hold request values. The
// gateway refuses on its own, without calling the upstream:
//
//	400 Unsupported content type   a Content-Type other than application/json
//	400 Request body too large     a body over MaxBodyBytes
//	400 Malformed request body     not a JSON object, a member of the wrong
//	                               type, kebab and camel spellings that differ
//	400 Missing claim type         no claim-type (POST /relays, /relays/privacy-passes)
//	400 Missing Privacy Pass       no privacy-pass-token (redeem)
//	400 Invalid Privacy Pass       a privacy-pass-token that is not base64url
//	400 Missing relay secret       no Persona-Relay-Secret header (redeem)
//	400 Invalid relay secret       a relay secret that is not visible ASCII,
//	                               or over 256 bytes
//	400 Invalid relay token        a relay token that is not 1-256 letters,
//	                               digits, '-' or '_'
//	401 Unauthorized               no "Authorization: Bearer <api key>"
//	                               (issuance); WWW-Authenticate: Bearer
//	404 Not found                  no such endpoint
//	405 Method not allowed         an endpoint with another HTTP method; Allow
//	503 Service unavailable        no room for the body in the listener's
//	                               body budget now (Options.Bodies, package
//	                               rpc/httpbody); nothing was read;
//	                               Retry-After: 1
//
// The checks run in this order: relay token, headers, content type, body
// size, room for the body, body shape, members. Upstream failures:
//
//	the provider's status          an upstream answer in the errors shape,
//	                               passed through with its body byte for byte
//	502 Bad gateway                any other non-2xx upstream answer (its text
//	                               is not passed on), a redirect, a 2xx answer
//	                               without the members the API promises, an
//	                               answer over 1 MiB
//	502 Network error              no answer from the upstream
//	502 Token key mismatch         token-key-id is not SHA-256(token-key)
//	502 Invalid token key          token-key is not an RSA key of 2048/4096 bits
//	502 Invalid challenge          the challenge is not a token type 2 challenge
//	502 Invalid blind signature    the blind signature does not verify
//	504 Request timed out          RequestTimeout passed, retries included
//	500 Internal error             a fault of the gateway (logged, not sent)
//
// (A request whose client disconnected is logged and counted with status
// 499 "Request canceled"; nobody receives that answer.)
//
// # Retries
//
// Each upstream call is retried up to three times, after 100, 200 and
// 400 ms (Options.Backoff), when it got 429, 500, 502, 503 or 504, when it
// got no answer (network error), and, for generate-claim only, when it got
// 403 (the claim is not ready yet). Retry-After is not read. The request's
// deadline (RequestTimeout, and the caller's connection) bounds the whole:
// a retry whose wait would end past the deadline is not made and the last
// answer stands; a deadline that passes during an attempt or a wait ends
// the request with 504. Retrying is safe for every call: issuance and
// redeem carry Idempotency-Keys; a retried relay creation can at worst
// leave an unused relay that expires. Apart from these retries, net/http's
// transport resends a request on a new connection by itself when a reused
// keep-alive connection fails before any answer and the request may be
// replayed (it carries an Idempotency-Key: signing and generate-claim);
// such a resend is part of one attempt: it is neither counted nor delayed.
//
// # Logs and metrics
//
// One line per request: request ID (X-Request-Id, taken from the caller
// when it is a short token as package requestid says, forwarded
// upstream), endpoint, status, title,
// upstream attempts, elapsed time and, on redeem, a short hash of the
// relay token. Never an API key, relay secret, pass, access token or claim
// payload; error texts only for network and gateway faults, from net/http
// without the request URL. Metrics (Options.Registerer):
// ppredeem_gateway_requests_total{endpoint,code},
// ppredeem_gateway_request_duration_seconds{endpoint},
// ppredeem_gateway_upstream_requests_total{call,result},
// ppredeem_gateway_upstream_request_duration_seconds{call} and
// ppredeem_gateway_upstream_retries_total{call,reason}.
package gateway
