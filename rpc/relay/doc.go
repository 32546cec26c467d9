// Package relay serves the relay provider API of `ppredeem serve`: relay sessions,
// Privacy Pass challenges, billed blind issuance, verifier reports, and the release of a
// relay's claim against a pass that is spent exactly once. The pass cryptography is
// verify/pass; the storage is spend (spend.RelayStore, on both stores); the routes are
// mounted on the main listener through rpc.Options.Routes. The API is wire-compatible with
// the upstream relay service whose published server SDK must work against it, so paths,
// headers, member names, encodings, statuses and titles are a contract.
//
// rpc/relay/PROTOCOL.md, beside this file, describes the whole design as ppredeem
// implements it: the pass format and its cryptography (§1), the gateway (§2), this API
// (§3), what its users expect around it (§4), and what ppredeem decided where the design
// is silent (§5). Comments cite it as "rpc/relay/PROTOCOL.md §n".
//
// # Endpoints
//
//	POST /api/privacy/v1/relays                   {"claim-type","encryption-key-pem"?,"sandbox"?}
//	  200 {"relay-token","relay-secret","relay-session-access-token"}
//	POST /api/privacy/v1/relays/challenge         {"claim-type"}
//	  200 {"challenge","token-key","token-key-id"}
//	POST /api/v1/privacy-passes                   Authorization: Bearer <api key>, Idempotency-Key?
//	  {"blinded-token","key-id"}  200 {"blind-sig"}
//	POST /api/privacy/v1/relays/{relay-token}/generate-claim
//	  Authorization: PrivateToken token=<pass> (or token="<pass>"), Persona-Relay-Secret,
//	  Idempotency-Key?  {}  200 {"claim-payload","token-consumed"}
//	POST /api/privacy/v1/relay-sessions/claim     Authorization: Bearer <verifier key>
//	  {"relay-session-access-token","claim-result","methodology"?}  200 {}
//
// Requests accept kebab-case and camelCase members (both spellings with different values
// are refused), ignore unknown members, and are bounded by Options.MaxBodyBytes. Answers
// are kebab-case. Without a configuration (no relay keys) every endpoint answers 404.
//
// # Errors
//
// Every refusal is {"errors":[{"title","details"}]}; errors.go holds the one table of
// statuses and titles and classify is the one place that maps an error to it. Details are
// fixed texts of this package (or a verify/pass Reason), never request data or secrets.
//
//	404 Not found                      relay unknown, expired, wrong secret (one answer); no
//	                                   relay keys; another POST below /api/privacy/
//	400 Invalid Privacy Pass           no PrivateToken Authorization, a malformed pass
//	401 Invalid Privacy Pass           unknown key_id, wrong MAC, token_type, bad signature
//	401 Privacy Pass expired           past expires_at + the pass lifetime
//	422 Claim type mismatch            signed by another claim type's key (not consumed)
//	403 Claim not ready                no verifier report yet (not consumed)
//	409 Privacy Pass already redeemed  the pass was spent on another relay
//	409 Relay already redeemed         the relay was redeemed by another pass
//	503 Service unavailable            the store failed; nothing half-done, a retry is safe
//	422 Unknown claim type             relays, challenge: no keys for the claim type
//	400 Invalid encryption key         not an RSA PUBLIC KEY / RSA PUBLIC KEY PEM of 2048-4096 bits
//	422 Sandbox not allowed            sandbox:true without relay_sandbox
//	401 Unauthorized                   missing or unknown API key / verifier key
//	404 Unknown key id                 key-id is not an active issuing key
//	422 Idempotency-Key reused         the key was used with another request
//	401 Invalid session                bad or expired access token, or its relay expired
//	409 Claim already reported         a result is final (also on sandbox relays)
//	400 Invalid claim                  claim-result or methodology malformed
//	400 Claim too large for the encryption key
//	                                   the payload would not fit one RSA-OAEP block of the
//	                                   relay's key (refused at the report, not at redemption)
//	400 Bad request                    not a JSON object, a missing or mistyped member, a bad
//	                                   blinded token or Idempotency-Key
//	413 Request body too large         over Options.MaxBodyBytes
//	405 Method not allowed             GET, PUT, PATCH, DELETE on an endpoint's path
//	500 Internal error                 a fault (logged with its cause, never sent)
//
// # generate-claim
//
// The checks run in the order of rpc/relay/PROTOCOL.md §3.4: relay and secret (the
// secret's SHA-256 compared in constant time with the stored hash), then (with an
// Idempotency-Key) a stored final answer, then the pass (verify/pass: form, key, MAC,
// signature, lifetime), the claim type, the claim's report. A failed claim answers its payload with token-consumed false
// and spends nothing; a passed one calls spend.RelayStore.RedeemRelay, which spends the
// pass (SHA-256 of its nonce, under the key's store ID, in the same spent-token store as
// legacy tokens) and marks the relay redeemed by it in one transaction: PostgreSQL's
// relay_redeem function, or one bbolt write transaction. The first payload answered is
// stored, so every later answer for that relay and pass is the same bytes, also for an
// encrypted payload (RSA-OAEP is randomized). Only final answers (200) are stored for an
// Idempotency-Key, and only after the secret was checked: a replayed 403 would hide the
// verifier's report from a retry.
//
// # Issuance and billing
//
// The bearer key's SHA-256 is compared with every configured hash in constant time
// (package keyhash). The blind signature is deterministic (RSA), and it is counted against
// the API key and the key's claim type (spend usage counter "apikey:NAME", item the claim
// type) durably before it is returned: with an Idempotency-Key, the answer and the count
// commit together (spend.RelayStore.AddUsageOnce), so a retry gets the stored answer and
// counts nothing.
//
// # Relays and access tokens
//
// A relay token is "relay_" and 128 random bits (base64url); the secret a random UUID
// (122 bits). The store knows a relay by SHA-256 of its token and keeps only SHA-256 of
// its secret. The relay-session-access-token is a JWT (RFC 7519) signed with HS256
// (github.com/golang-jwt/jwt/v5) under the store's shared access key, naming the relay's
// ID in sub, with aud "ppredeem-relay-session", valid 30 minutes (at most until the relay
// expires); parsing accepts only HS256, requires exp, and checks iat and aud. Claim
// payloads are {"claim_type","claim_result","methodology"?} in clear, or RSA-OAEP
// (SHA-256, MGF1-SHA-256, empty label) to the relay's key as standard base64.
//
// # Limits
//
// A pass is not bound to a relay: any relay of its claim type can redeem it once. The
// relay token and the access token are bearer secrets of the platform and its frontend.
// The methodology is bounded (32 entries, 128-byte methods) and must fit one RSA-OAEP
// block when the relay has an encryption key. Secrets are compared in constant time; the
// JSON parsing and the relay lookup are not (they handle public data).
package relay
