// Package pass is the cryptography of the Privacy Passes of the relay
// provider API: issuer keys per claim type, the challenge and its MAC, blind
// RSA signing, and the strict parsing and verification of a pass. Bytes go in,
// a verdict comes out: the package does no I/O, reads no clock (every
// function that needs the time takes it as an argument), keeps no mutable
// state, and logs nothing. Recording the spend, the HTTP mapping of the
// verdicts and the claim-type check against a relay belong to the caller.
// The format, with the rest of the relay design, is described in
// rpc/relay/PROTOCOL.md §1.
//
// # Keys
//
// An issuer key is RSA, 2048 or 4096 bits, public exponent 65537, two
// primes, read from PEM (PKCS #1 "RSA PRIVATE KEY" or PKCS #8 "PRIVATE KEY",
// one key per file) or generated, and written as PKCS #8. A KeySet gives each
// claim type an ordered list of keys: the first issues, the others only
// redeem, so that passes signed before a rotation stay valid. Each key has
// three names:
//
//	token-key     base64url (no padding) of the DER SubjectPublicKeyInfo
//	              (x509.MarshalPKIXPublicKey), sent to clients with a challenge
//	token-key-id  lowercase hex SHA-256 of that DER, 64 characters; the
//	              key_id of a pass
//	ID            the first 8 bytes of the token-key-id as 16 lowercase hex
//	              characters; the key's name in the spent-token store, logs
//	              and metrics (the length of the legacy VOPRF key IDs)
//
// # Challenge
//
// A challenge is base64url (no padding) of the JSON object
//
//	{"token_type":2,"issuer_name":"<name>","origin_info":"/api/privacy/v1/relays",
//	 "expires_at":"2026-03-14T17:00:00Z","mac":"<43 characters of base64url>"}
//
// issued for the active key of a claim type. expires_at is the first whole
// hour (UTC) at least one hour after the time of issue, so a challenge is
// valid for one to two hours and all challenges of one hour share it. mac is
// HMAC-SHA256 (RFC 2104) under a secret MAC key of 32 to 64 bytes over
//
//	lp("ppredeem relay challenge mac v1") || BE16(token_type) ||
//	lp(issuer_name) || lp(origin_info) || lp(expires_at) || lp(token_key_id)
//
// with lp(x) = BE32(len(x)) || x, strings as UTF-8, expires_at as its text,
// and token_key_id the 64 hex characters of the key the challenge is for.
// The label separates this MAC from any other use of the key; the length
// prefixes make every field boundary explicit, so a change to any field, or
// to the key, changes the MAC. Clients treat mac as opaque. Several MAC keys
// can be configured: the first MACs new challenges, all are tried when
// verifying, so the MAC key can be rotated.
//
// # Pass
//
// The client picks a nonce, 32 random bytes as 64 lowercase hex characters,
// and builds the 98-byte token input
//
//	0x00 0x02 || SHA256(nonce) || SHA256(mac) || SHA256(token_key_id)
//
// each hash over the UTF-8 bytes of the string: the 64 hex characters of the
// nonce, the 43 characters of mac, the 64 hex characters of the
// token-key-id. This deliberately departs from the token_input of RFC 9578
// §6.1 (token_type || nonce || SHA256(TokenChallenge) || token_key_id, with
// the raw 32-byte nonce and key ID), which has the same length: hashing the
// strings lets clients build it from the JSON without knowing the
// challenge's byte layout. The upstream relay service documents the same
// deviation.
//
// The client then runs RFC 9474 (RSA blind signatures) with circl's
// blindsign/blindrsa: NewClient(SHA384PSSRandomized, pk), Blind(rand,
// tokenInput) WITHOUT Prepare, the issuer's BlindSign (Issuer.BlindSign),
// Finalize. In circl only Client.Prepare adds the 32-byte random prefix of
// the "Randomized" variants (brsa.go: prefixLen is used in Prepare alone);
// Blind, Finalize and Verifier.Verify take the prepared message as given, and
// NewVerifier gives both SHA384PSS variants SHA-384 and salt length 48. So
// the final signature is a plain RSASSA-PSS signature (RFC 8017 §8.1;
// SHA-384, MGF1-SHA-384, salt length 48) over the token input itself, which
// crypto/rsa.VerifyPSS checks; on the wire this is RFC 9474's
// RSABSSA-SHA384-PSS-Deterministic, the variant RFC 9578 §6.1 itself uses
// (PrepareIdentity). The missing prefix costs nothing here: the nonce already
// makes every message unpredictable.
//
// The privacy-pass-token is base64url (no padding) of
//
//	{"token_nonce":"<nonce>","signature":"<base64url>","key_id":"<token-key-id>","challenge":<the challenge object>}
//
// with the challenge object embedded as JSON, verbatim (Challenge.Raw keeps
// it). Its double-spend identity is SHA256(nonce) (the same 32 bytes as in
// the token input) under the key's ID; the caller inserts it into the
// spent-token store. A pass stays redeemable until expires_at plus the pass
// lifetime (90 days by default); after that Verify says ErrExpired and the
// store may forget it.
//
// # Strict parsing
//
// ParsePass refuses, before any cryptography and with ErrMalformed:
//
//   - strings over MaxTokenLen, and base64url that is not canonical: padding,
//     the standard alphabet, line breaks, non-zero trailing bits (the
//     input must be exactly as long as the canonical encoding of what it
//     decodes to, which is re-encoding and comparing without the copy);
//   - JSON that is invalid, not valid UTF-8, not an object, or has data
//     after it;
//   - a missing, repeated or unknown member, or a member name in another
//     case (encoding/json would accept all of these), in the pass and in the
//     challenge; members may come in any order with any whitespace, since
//     that is the same JSON object;
//   - a member of the wrong JSON type (null included);
//   - token_nonce or key_id other than 64 lowercase hex characters;
//   - a signature that is not canonical base64url of 256 or 512 bytes, and
//     (in Verify) not exactly the modulus length of the key named by key_id;
//   - token_type not a JSON integer from 0 to 65535 (no fraction, exponent
//     or quotes); issuer_name not 1 to 255 bytes; origin_info over 255 bytes;
//   - expires_at not exactly "YYYY-MM-DDTHH:MM:SSZ" (RFC 3339, UTC, upper-case
//     "T" and "Z", no fraction, no offset): one instant, one spelling;
//   - mac not canonical base64url of 32 bytes.
//
// Values that are well-formed but were never issued are ErrInvalid rather
// than ErrMalformed: token_type other than 2, origin_info other than
// "/api/privacy/v1/relays", an unknown key_id. issuer_name is not compared
// with the configured name: the MAC decides whether it is genuine, so a
// renamed issuer still redeems the passes it issued.
//
// # Verdicts
//
// Issuer.Verify checks in this order, the first failure deciding: form
// (ErrMalformed); key_id known (ErrInvalid); signature length (ErrMalformed);
// token_type and origin_info (ErrInvalid); the MAC (ErrInvalid); the
// signature below the modulus and valid (ErrInvalid); the lifetime
// (ErrExpired). A forged pass is thus never reported as merely expired. The
// provider API answers them as 400 "Invalid Privacy Pass", 401 "Invalid
// Privacy Pass" and 401 "Privacy Pass expired"; after them comes the
// caller's claim-type check (Verdict.CheckClaimType, ErrClaimTypeMismatch,
// 422 "Claim type mismatch", the pass not consumed). Refusals are *Error
// values with a fixed Reason that never contains request data or secrets.
//
// # Constant time
//
// The MAC comparison is hmac.Equal, and every configured MAC key is tried,
// so timing says neither how much of a MAC matched nor which key did. Keys
// and MAC keys are never printed: Key, Issuer and Config print only names.
// Not constant time, and why that is acceptable:
//
//   - parsing, key lookup and signature verification handle public data:
//     the pass, which the client sends in clear, and the public key;
//   - BlindSign computes blinded^d mod n with circl's Signer, which uses
//     math/big with the full private exponent (no CRT): math/big is not
//     constant time in the exponent. circl multiplies the input by r^e for a
//     fresh random r first, so the attacker does not control the base of the
//     exponentiation, and checks s^e = input afterwards against faults.
//     Without CRT, a 2048-bit blind signature costs about 4.3 ms of CPU,
//     2.5 to 3 times a crypto/rsa PSS signature (BenchmarkBlindSign,
//     BenchmarkSignPSSStdlib).
//
// # Limits
//
// The challenge's expires_at is not checked when a blinded token is signed:
// the issuer cannot see the challenge behind a blinded token, which is the
// point of blind signatures. A pass is bound to its key and, through the
// MAC, to the issuer name and to origin_info, not to a relay: any relay of
// its claim type can redeem it once. A pass whose expires_at lies in the
// future is accepted if its MAC is right (only this issuer can make one).
//
// # Sources
//
//   - RFC 9474, RSA Blind Signatures: §4 (the protocol: Blind, BlindSign,
//     Finalize), §5 (the RSABSSA-SHA384-PSS variants).
//   - RFC 9578, Privacy Pass Issuance Protocols, §6 (token type 0x0002,
//     Blind RSA; §6.1 the token_input this format varies), and RFC 9577 §2.2
//     (the token structure).
//   - RFC 8017 §8.1 and §9.1 (RSASSA-PSS, EMSA-PSS), RFC 2104 (HMAC),
//     RFC 4648 §5 (base64url), RFC 3339 (timestamps), RFC 8259 (JSON).
//   - github.com/cloudflare/circl v1.6.5, blindsign/blindrsa/brsa.go (Client,
//     Signer, Verifier) and internal/common (the PSS encoding and the
//     private-key operation).
package pass
