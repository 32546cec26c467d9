package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"

	"filippo.io/nistec"
)

// The two HMAC labels of verify/PROTOCOL.md §6 (challenge-bypass-extension
// v2.0.6 src/crypto/local.js deriveKey and createRequestBinding;
// challenge-bypass-server crypto/voprf.go). Note the roles: "hash_derive_key"
// is the KEY of the first HMAC, "hash_request_binding" is a MESSAGE prefix of
// the second.
const (
	deriveKeyLabel = "hash_derive_key"
	bindingLabel   = "hash_request_binding"
)

// Sizes of the buffers a transcript carries: every request within the
// default Limits' token size and with short bindings fits; longer messages
// are built in buffers allocated for the request.
const (
	deriveBufSize = 256 + 65
	bindBufSize   = len(bindingLabel) + 512
)

// transcript holds the two HMAC messages of verify/PROTOCOL.md §6 for one
// request, and the HMAC state that does not depend on the key:
//
//	derive: t || SEC1(N)                                 (N rewritten per key)
//	bind:   "hash_request_binding" || b1 || … || bm
//
// Bindings are concatenated without separators, as the extension does.
// Building both messages once per request makes each key cost one
// ScalarMult, one point encoding and two crypto/hmac computations.
//
// The HMACs are crypto/hmac (RFC 2104). The first is keyed with the constant
// label, so one hmac.New serves every key of every request after Reset; the
// second is keyed with the derived key dk and needs an hmac.New per key,
// which allocates (about 0.5 KB in five allocations with Go 1.26):
// crypto/hmac has no way to re-key an existing state.
//
// Transcripts are recycled through a sync.Pool (scratchPool) so that the
// per-request state, buffers included, is not allocated per request.
type transcript struct {
	derive []byte // t; SEC1(N) is appended per key
	bind   []byte

	deriveMAC hash.Hash // HMAC-SHA256 keyed with deriveKeyLabel

	dk   [sha256.Size]byte
	out  [sha256.Size]byte
	dbuf [deriveBufSize]byte
	bbuf [bindBufSize]byte
}

// scratchPool recycles transcripts. It is the package's only shared state:
// a cache that holds no request data between uses (release clears it).
var scratchPool = sync.Pool{New: func() any {
	return &transcript{deriveMAC: hmac.New(sha256.New, []byte(deriveKeyLabel))}
}}

// newTranscript returns a transcript of token and bindings, from the pool.
// The caller must release it.
func newTranscript(token []byte, bindings []string) *transcript {
	tr := scratchPool.Get().(*transcript)

	derive := tr.dbuf[:0]
	if need := len(token) + 65; cap(derive) < need {
		derive = make([]byte, 0, need)
	}
	tr.derive = append(derive, token...)

	n := len(bindingLabel)
	for _, b := range bindings {
		n += len(b)
	}
	bind := tr.bbuf[:0]
	if cap(bind) < n {
		bind = make([]byte, 0, n)
	}
	bind = append(bind, bindingLabel...)
	for _, b := range bindings {
		bind = append(bind, b...)
	}
	tr.bind = bind
	return tr
}

// release clears the request data out of tr and returns it to the pool.
func (tr *transcript) release() {
	clear(tr.dbuf[:])
	clear(tr.bbuf[:])
	clear(tr.dk[:])
	clear(tr.out[:])
	tr.derive, tr.bind = nil, nil
	tr.deriveMAC.Reset()
	scratchPool.Put(tr)
}

// tag computes the tag of the request under the scalar k, given T = H2C(t)
// (verify/PROTOCOL.md §6):
//
//	N   = k·T
//	dk  = HMAC-SHA256(key = "hash_derive_key", msg = t || SEC1(N))
//	tag = HMAC-SHA256(key = dk, msg = "hash_request_binding" || b1 || … || bm)
//
// SEC1(N) is the 65-byte uncompressed encoding, or the 33-byte compressed one
// when compressed is set. The result is in tr.out until the next call or
// release. It returns false if N is the point at infinity, which cannot
// happen for 0 < k < n and T ≠ O but is checked anyway.
func (tr *transcript) tag(T *nistec.P256Point, k *[32]byte, compressed bool) bool {
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
	tr.tagOf(enc)

	// N and dk are per-token secrets: whoever holds them can redeem t. (The
	// HMAC states keep values derived from them that crypto/hmac gives no way
	// to clear: deriveMAC is Reset, bindMAC is left to the collector.)
	clear(enc)
	clear(tr.dk[:])
	N.Set(T)
	return true
}

// tagOf sets tr.dk and tr.out to the derived key and the tag for the SEC1
// encoding enc of N (verify/PROTOCOL.md §6).
func (tr *transcript) tagOf(enc []byte) {
	msg := append(tr.derive, enc...) // within capacity: no allocation
	tr.deriveMAC.Reset()
	tr.deriveMAC.Write(msg)
	tr.deriveMAC.Sum(tr.dk[:0])
	tr.deriveMAC.Reset()
	clear(msg[len(tr.derive):])

	bindMAC := hmac.New(sha256.New, tr.dk[:])
	bindMAC.Write(tr.bind)
	bindMAC.Sum(tr.out[:0])
}
