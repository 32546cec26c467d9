package verify

import (
	"crypto/sha256"

	"filippo.io/nistec"
)

// The two HMAC labels of PROTOCOL.md §6 (challenge-bypass-extension v2.0.6
// src/crypto/local.js deriveKey and createRequestBinding;
// challenge-bypass-server crypto/voprf.go). Note the roles: "hash_derive_key"
// is the KEY of the first HMAC, "hash_request_binding" is a MESSAGE prefix of
// the second.
const (
	deriveKeyLabel = "hash_derive_key"
	bindingLabel   = "hash_request_binding"
)

// blockSize is the SHA-256 block size, the HMAC pad length.
const blockSize = sha256.BlockSize

// hmacSHA256 sets out to HMAC-SHA256(key, buf[blockSize:]) as defined in
// RFC 2104 §2 (FIPS 198-1):
//
//	H((K ⊕ opad) || H((K ⊕ ipad) || msg))
//
// buf[:blockSize] is scratch: the caller reserves it in front of the message
// so that the inner hash is a single sha256.Sum256 call with no allocation or
// copy of the message. key must be at most blockSize bytes (here it is always
// the 15-byte label or a 32-byte derived key), so it is used unhashed, zero
// padded. Tests check the result against crypto/hmac.
//
// Every step is straight-line code over the key bytes: constant time in the
// key, as crypto/hmac.
func hmacSHA256(out *[sha256.Size]byte, key []byte, buf []byte) {
	if len(key) > blockSize || len(buf) < blockSize {
		panic("verify: hmacSHA256 misuse") // internal callers only
	}
	pad := buf[:blockSize]
	clear(pad)
	copy(pad, key)
	for i := range pad {
		pad[i] ^= 0x36 // ipad
	}
	inner := sha256.Sum256(buf)

	var outer [blockSize + sha256.Size]byte
	copy(outer[:], key)
	for i := range blockSize {
		outer[i] ^= 0x5c // opad
	}
	copy(outer[blockSize:], inner[:])
	*out = sha256.Sum256(outer[:])

	clear(pad)
	clear(outer[:])
}

// transcript holds the two HMAC messages of PROTOCOL.md §6 for one request,
// each with blockSize bytes reserved in front for hmacSHA256:
//
//	derive: [pad] || t || SEC1(N)                       (N rewritten per key)
//	bind:   [pad] || "hash_request_binding" || b1 || … || bm
//
// Bindings are concatenated without separators, as the extension does.
// Building both once per request makes each key cost one ScalarMult, one
// point encoding and four SHA-256 calls, with no allocation.
type transcript struct {
	derive []byte // up to and including t; N is appended per key
	bind   []byte
}

// newTranscript builds the messages into dstack and bstack when they fit
// (they do for every request within DefaultLimits' token size and short
// bindings), on the heap otherwise.
func newTranscript(dstack, bstack []byte, token []byte, bindings []string) transcript {
	need := blockSize + len(token) + 65
	derive := dstack[:0]
	if cap(derive) < need {
		derive = make([]byte, 0, need)
	}
	derive = append(derive[:blockSize], token...)

	n := blockSize + len(bindingLabel)
	for _, b := range bindings {
		n += len(b)
	}
	bind := bstack[:0]
	if cap(bind) < n {
		bind = make([]byte, 0, n)
	}
	bind = append(bind[:blockSize], bindingLabel...)
	for _, b := range bindings {
		bind = append(bind, b...)
	}
	return transcript{derive: derive, bind: bind}
}

// tag sets out to the tag of the request under the scalar k, given T =
// H2C(t) (PROTOCOL.md §6):
//
//	N   = k·T
//	dk  = HMAC-SHA256(key = "hash_derive_key", msg = t || SEC1(N))
//	tag = HMAC-SHA256(key = dk, msg = "hash_request_binding" || b1 || … || bm)
//
// SEC1(N) is the 65-byte uncompressed encoding, or the 33-byte compressed one
// when compressed is set. It returns false if N is the point at infinity,
// which cannot happen for 0 < k < n and T ≠ O but is checked anyway.
func (tr *transcript) tag(out *[sha256.Size]byte, T *nistec.P256Point, k *[32]byte, compressed bool) bool {
	N := nistec.NewP256Point()
	if _, err := N.ScalarMult(T, k[:]); err != nil || N.IsInfinity() == 1 {
		return false
	}
	var enc []byte
	if compressed {
		enc = N.BytesCompressed()
	} else {
		enc = N.Bytes()
	}
	msg := append(tr.derive, enc...) // within capacity: no allocation
	var dk [sha256.Size]byte
	hmacSHA256(&dk, []byte(deriveKeyLabel), msg)
	hmacSHA256(out, dk[:], tr.bind)

	// N and dk are per-token secrets: whoever holds them can redeem t.
	clear(msg[len(tr.derive):])
	clear(enc)
	clear(dk[:])
	N.Set(T)
	return true
}
