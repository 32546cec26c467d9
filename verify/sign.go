package verify

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// IssueResponse is the issuer's answer to one IssueRequest
// (verify/PROTOCOL.md §7): the signed points and one batch DLEQ proof that
// they were signed with the key whose commitment is H = k·G.
type IssueResponse struct {
	// Signatures are Z_i = k·M_i, SEC 1 uncompressed (65 bytes), in
	// request order.
	Signatures [][]byte
	// C is the proof's challenge, a SHA-256 digest; R is its response
	// s - C·k mod n. Both are big-endian, always 32 bytes, and C is never
	// below 2²⁴⁸ (see SignBatch).
	C, R [32]byte
}

// maxNonceTries bounds the nonces SignBatch draws. Each is kept with
// probability about 255/256, so reaching the bound means the random source is
// broken.
const maxNonceTries = 64

var errEmptyIssue = errors.New("verify: nothing to sign: the issue request holds no points")

// SignBatch signs the blinded points of req with k: Z_i = k·M_i, and one
// batch DLEQ proof with the "shake" coefficient generator, exactly as the
// extension verifies it (verify/PROTOCOL.md §7.3). The nonce s is drawn from
// rand (crypto/rand.Reader if nil) by rejection sampling, 32 bytes at a time.
//
// A nonce is also rejected, and another drawn, when its challenge C is below
// 2²⁴⁸ or not below n. The extension compares C, decoded to a number and
// re-encoded without leading zero bytes, with the 32-byte digest, so it
// refuses about one valid proof in 256 (the reference issuer refused the same
// proofs itself, and failed the request). Redrawing s costs two point
// multiplications more in 1 case of 256 and makes every proof acceptable.
//
// The multiplications by k and s are nistec's constant-time ones, and R is
// computed with bigmod's constant-time arithmetic. SignBatch fails only for a
// zero Key, an empty req or a failing random source (and for a batch whose
// composite point vanishes, probability about 2⁻²⁵⁶); it is safe for
// concurrent use.
func (k *Key) SignBatch(rand io.Reader, req *IssueRequest) (*IssueResponse, error) {
	if !k.valid() {
		return nil, errZeroKey
	}
	if req.Len() == 0 {
		return nil, errEmptyIssue
	}
	if rand == nil {
		rand = defaultRand
	}

	m := len(req.blinded)
	Z := make([]*nistec.P256Point, m)
	sigs := make([][]byte, m)
	for i, M := range req.blinded {
		z, err := nistec.NewP256Point().ScalarMult(M, k.scalar[:])
		if err != nil {
			return nil, err // unreachable: the scalar is 32 bytes
		}
		Z[i], sigs[i] = z, z.Bytes()
	}

	G := nistec.NewP256Point().SetGenerator()
	H, err := nistec.NewP256Point().SetBytes(k.commitment[:])
	if err != nil {
		return nil, err // unreachable: NewKey made the commitment
	}
	// The signatures are the encodings of the Z_i in the seed.
	seed := batchSeed(G.Bytes(), k.commitment[:], encodePoints(req.blinded, false), sigs)
	cs, err := coefficients(&seed, m, prngShake)
	if err != nil {
		return nil, err
	}
	compM, err := composite(cs, req.blinded)
	if err != nil {
		return nil, err
	}
	if compM.IsInfinity() == 1 {
		return nil, errDegenerate
	}
	// Z = Σ c_i·Z_i = k·Σ c_i·M_i: one multiplication instead of m.
	compZ, err := nistec.NewP256Point().ScalarMult(compM, k.scalar[:])
	if err != nil {
		return nil, err
	}

	kNat, err := bigmod.NewNat().SetBytes(k.scalar[:], scalarField)
	if err != nil {
		return nil, err // unreachable: 0 < k < n
	}
	A, B := nistec.NewP256Point(), nistec.NewP256Point()
	var sb [32]byte
	defer clear(sb[:])
	for range maxNonceTries {
		if _, err := io.ReadFull(rand, sb[:]); err != nil {
			return nil, fmt.Errorf("verify: drawing a proof nonce: %w", err)
		}
		s, err := bigmod.NewNat().SetBytes(sb[:], scalarField)
		if err != nil || s.IsZero() == 1 {
			continue // s >= n or s = 0
		}
		if _, err := A.ScalarBaseMult(sb[:]); err != nil {
			return nil, err
		}
		if _, err := B.ScalarMult(compM, sb[:]); err != nil {
			return nil, err
		}
		C := challengeHash(false, G, H, compM, compZ, A, B)
		if C[0] == 0 || !belowOrder(&C) {
			continue // see the doc comment
		}
		cNat, err := bigmod.NewNat().SetBytes(C[:], scalarField)
		if err != nil {
			return nil, err // unreachable: C < n
		}
		// R = s - C·k mod n.
		r := s.Sub(cNat.Mul(kNat, scalarField), scalarField)
		resp := &IssueResponse{Signatures: sigs, C: C}
		copy(resp.R[:], r.Bytes(scalarField))
		return resp, nil
	}
	return nil, errors.New("verify: drawing a proof nonce: the random source keeps giving unusable values")
}

// batchProofPrefix starts the decoded "proof" member (challenge-bypass-server
// crypto/batch.go BATCH_PROOF_RESP_STR; the extension strips it if present).
const batchProofPrefix = "batch-proof="

// Encode returns the issue response as the extension reads it
// (verify/PROTOCOL.md §7.4): the standard base64 of
//
//	{"sigs":["<b64 Z_1>",...],"proof":"<b64 P>","version":"<version>","prng":"shake"}
//	P = "batch-proof=" || {"P":"<b64 of {"R":"<b64 R>","C":"<b64 C>"}>"}
//
// The HTTP layer sends it as the "signatures" member of a JSON object, or as
// the form body signatures=<it>.
//
// The text is made of ASCII letters and digits only, so percent-encoding it
// changes nothing and a form decoder cannot turn a '+' into a space: the
// extension v2.0.6 base64-decodes the form value without percent-decoding it,
// v3.0.6 percent-decodes it first (qs.parse), and both read this text the
// same. To get there, the JSON is padded with spaces to a multiple of three
// bytes (no '=' padding), and the version string is escaped so that the
// JSON holds no byte that would produce a '+' or '/' (any character outside
// printable ASCII, '>', '?', '~').
func (r *IssueResponse) Encode(version string) string {
	b64 := base64.StdEncoding
	var inner []byte
	inner = append(inner, `{"R":"`...)
	inner = b64.AppendEncode(inner, r.R[:])
	inner = append(inner, `","C":"`...)
	inner = b64.AppendEncode(inner, r.C[:])
	inner = append(inner, `"}`...)

	proof := []byte(batchProofPrefix + `{"P":"`)
	proof = b64.AppendEncode(proof, inner)
	proof = append(proof, `"}`...)

	j := []byte(`{"sigs":[`)
	for i, z := range r.Signatures {
		if i > 0 {
			j = append(j, ',')
		}
		j = append(j, '"')
		j = b64.AppendEncode(j, z)
		j = append(j, '"')
	}
	j = append(j, `],"proof":"`...)
	j = b64.AppendEncode(j, proof)
	j = append(j, `","version":`...)
	j = appendASCIIJSONString(j, version)
	j = append(j, `,"prng":"shake"}`...)
	for len(j)%3 != 0 {
		j = append(j, ' ')
	}
	return b64.EncodeToString(j)
}

// appendASCIIJSONString appends s as a JSON string literal made of printable
// ASCII other than '>', '?' and '~': those, control characters and every
// non-ASCII character are written as \u escapes (UTF-16 surrogate pairs
// above U+FFFF). Invalid UTF-8 becomes U+FFFD, as encoding/json does it.
//
// Base64 turns three bytes into four characters, and only the third byte's
// low six bits can make a '+' or '/' (62 or 63) when every byte is below
// 0x80; of those bytes, exactly '>' (0x3e), '?' (0x3f), '~' (0x7e) and DEL
// (0x7f) end in six 1 bits or 111110.
func appendASCIIJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	u := func(dst []byte, r rune) []byte {
		return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
	}
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r >= 0x20 && r < 0x7e && r != '>' && r != '?':
			dst = append(dst, byte(r))
		case r > 0xffff:
			r -= 0x10000
			dst = u(dst, 0xd800+(r>>10))
			dst = u(dst, 0xdc00+(r&0x3ff))
		default:
			dst = u(dst, r)
		}
	}
	return append(dst, '"')
}
