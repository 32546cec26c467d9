// Package verify is the protocol math of legacy Privacy Pass: a VOPRF over
// NIST P-256 with SHA-256, as spoken by the Privacy Pass browser extension
// (v1 to v3) and the original Go issuer. It verifies redemptions and signs
// issue requests. Bytes go in, a verdict or signed bytes come out. The
// package does no I/O, keeps no global state but a pool of scratch buffers,
// takes no context and logs nothing; the double-spend check, who may get
// tokens, and the wire codes of its errors belong to the caller.
//
// verify/PROTOCOL.md, beside this file, describes the protocol byte by byte
// with its public sources; the section numbers below (§n) are its sections.
//
// # The request
//
// ParseParams reads the "params" member of a JSON-RPC "redeem" call (§1):
//
//	{"data": ["<b64 t>", "<b64 tag>", "<b64 {\"curve\":\"p256\",\"hash\":\"sha256\",\"method\":\"increment\"}>"],
//	 "bindings": ["www.example.com", "GET /"],
//	 "compressed": false}
//
// The members:
//
//   - data[0] is the token t, an opaque octet string: every known client sends
//     32 random bytes, chosen at issuance. The token holder also keeps
//     N = k·H2C(t), the unblinded signature, and proves knowledge of it with
//     the tag; N itself never travels at redemption.
//   - data[1] is the tag, 32 bytes of HMAC-SHA256.
//   - data[2], optional, is base64 of a JSON object naming the curve, hash and
//     hash-to-curve method. It is parsed as JSON, never compared as bytes.
//     Without it the settings are p256/sha256/increment.
//   - All three are standard, padded, canonical base64 (base64.StdEncoding
//     with Strict, and no line breaks), so one token has one encoding.
//   - bindings are strings hashed as their UTF-8 bytes, in order, without
//     separators: ["ab","c"] and ["a","bc"] give the same tag. The caller must
//     compare them with its own context (host, "METHOD /path", ...).
//   - compressed selects the 33-byte SEC 1 encoding of N in the key
//     derivation instead of the 65-byte uncompressed one.
//
// Structure errors are *ParamsError (ErrBadParams, wire -32602), whose Reason
// is a fixed text that never quotes the request; wrong curve settings are
// ErrUnsupportedCurve (-32022). All structure checks, including the base64 and
// JSON of data[2], come before the settings are looked at (§2). Limits bounds
// the token and bindings; the caller bounds the body size. Member names are
// matched as encoding/json does it: case-insensitively, the last repeated
// member winning; unknown members are ignored. JSON null is never taken for
// an empty string or false, and strings must be valid UTF-8.
//
// # Hash to curve
//
// Method Increment, try-and-increment (§4; hashAndInc in the extension's
// src/ext/h2c.js, crypto/h2c.go in challenge-bypass-server):
//
//	d₀ = SHA256("1.2.840.10045.3.1.7 point generation seed" || t || LE32(0))
//	dᵢ = SHA256(dᵢ₋₁ || LE32(i)),  i = 1..19        (the seed only in round 0)
//	T  = the first dᵢ that decodes as the compressed point 02||dᵢ
//
// About 2⁻²⁰ of tokens fail all 20 rounds; they can never be redeemed and
// Verify reports ErrBadTag.
//
// Method SWU is the extension's simplified SWU (§5; computeSWUCoordinates in
// src/ext/h2c.js, after draft-irtf-cfrg-hash-to-curve-03), not the
// incompatible map of the Go reference server:
//
//	u  = SHA256("h2b" || "H2C-P256-SHA256-SSWU-" || BE32(len(t)) || t) mod p
//	t1 = -u²;  x1 = (inv0(t1² + t1) + 1)·(-b/a);  x2 = t1·x1
//	T  = (x1 or x2, whichever has g(x) square; y = the root <= (p-1)/2)
//
// # Verification
//
// For each key k of a KeySet, in order (§6):
//
//	N   = k·T
//	dk  = HMAC-SHA256(key = "hash_derive_key", msg = t || SEC1(N))
//	tag = HMAC-SHA256(key = dk, msg = "hash_request_binding" || b1 || ... || bm)
//
// Note the roles, which public documents get wrong: the label
// "hash_derive_key" is the key of the first HMAC, while in the second dk is
// the key and "hash_request_binding" only a message prefix. Verify hashes the
// token to the curve once per request, not once per key, and lays out both
// HMAC messages once per request. The HMACs are crypto/hmac (RFC 2104). The
// request's scratch state comes from a sync.Pool, the package's only shared
// state; what is left is crypto/hmac's state for the binding HMAC, whose key
// dk changes per key: five allocations per key with Go 1.26.
//
// # Issuance
//
// ParseIssueRequest reads the blinded points M_i of an issue request (§7.1):
// the base64 of {"type":"Issue","contents":["<b64 SEC1 M_i>",...]}, each
// point compressed or uncompressed, on the curve, none twice, at most a
// given number. Its errors are *IssueError, of four kinds for the caller to
// map: ErrBadIssueRequest, ErrBadPoint, ErrDuplicatePoint, ErrTooManyTokens.
// A request that fails parsing yields nothing to sign.
//
// Key.SignBatch signs them, Z_i = k·M_i, and adds one batch DLEQ proof (§7.3)
// that the Z_i use the k of the commitment H = k·G, exactly as the extension
// verifies it: the seed over G, H and the interleaved (M_i, Z_i), coefficients
// from SHAKE256 ("prng": "shake"), R and C 32 bytes each. A nonce is redrawn
// when C would start with a zero byte, which the extension (and the
// reference issuer's own check) would refuse: about 1 issuance in 256.
// IssueResponse.Encode(version) is the text the HTTP layer sends as
// "signatures" (§7.4), made of letters and digits only.
//
// VerifyIssueResponse is the client's side (§7.5): it decodes a response and
// checks its proof as the extension does, "shake" or "hkdf", points
// compressed or not. The tests hold SignBatch to it, to the extension's
// published responses and to an independent implementation.
//
// # Constant time
//
// Constant time with respect to secrets:
//   - N = k·T is nistec's P256Point.ScalarMult (filippo.io/nistec, the
//     assembly-backed code of crypto/internal/fips140/nistec);
//   - the HMACs are crypto/hmac; N and dk are cleared after use (crypto/hmac
//     keeps values derived from them in its states, which it gives no way to
//     clear);
//   - the tag comparison is hmac.Equal;
//   - NewKey's range check 0 < k < n, by crypto/ecdh;
//   - in SignBatch, Z_i = k·M_i, Z = k·M, s·G and s·M are nistec's, and
//     R = s - C·k mod n is filippo.io/bigmod's constant-time arithmetic.
//
// Not constant time, and why that is acceptable:
//   - hashing to the curve branches on which round succeeds (Increment) and
//     uses math/big (SWU). Its only input is the token, which the client has
//     just sent in clear: there is nothing secret to leak.
//   - Verify returns at the first matching key, so timing tells which
//     position in the KeySet matched. Which commitment a token was issued
//     under is known to its holder.
//   - ParseParams and ParseIssueRequest are ordinary JSON and base64
//     parsing of public input.
//   - SignBatch's coefficients c_i·M_i, its rejection sampling of s and its
//     redraw on a short C involve only public values or discarded nonces.
//   - VerifyIssueResponse handles public values only.
//   - ParseKeysPEM uses encoding/asn1 and crypto/x509; it runs at start-up,
//     not per request.
//
// Secrets are never printed: Key's String, GoString and Format show only the
// key ID, and errors never contain key material or request data.
//
// # Keys
//
// A Key is a P-256 scalar 0 < k < n with commitment H = k·G (§8). Its ID, the
// first 8 bytes of SHA-256(SEC1 uncompressed H) in hex, names it in logs and
// spend records. ParseKeysPEM reads SEC 1 "EC PRIVATE KEY" blocks (with or
// without the "EC PARAMETERS" block that openssl ecparam -genkey writes) and
// PKCS #8 "PRIVATE KEY" blocks, several per file.
//
// # Sources
//
// Listed in verify/PROTOCOL.md: the extension (privacypass/challenge-bypass-
// extension v2.0.6 and v3.0.6), the reference server
// (privacypass/challenge-bypass-server), the privacypass/api-redeem README,
// SEC 1, RFC 2104, RFC 5869, FIPS 202, RFC 5915, RFC 5208 and
// draft-irtf-cfrg-hash-to-curve-03. The published vectors are in
// testdata/vectors.json and testdata/issuance.json.
package verify
