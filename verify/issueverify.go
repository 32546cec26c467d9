package verify

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"filippo.io/nistec"
)

// ErrBadIssueResponse: an issue response that does not decode, or whose
// proof does not verify (VerifyIssueResponse). Returned wrapped with a fixed
// reason.
var ErrBadIssueResponse = errors.New("issue response does not verify")

type issueResponseError struct{ reason string }

func (e *issueResponseError) Error() string { return ErrBadIssueResponse.Error() + ": " + e.reason }
func (e *issueResponseError) Unwrap() error { return ErrBadIssueResponse }

func badResponse(reason string) error { return &issueResponseError{reason} }

// VerifiedIssue is an issue response that VerifyIssueResponse accepted.
type VerifiedIssue struct {
	// Signatures are the signed points Z_i, in request order, SEC 1 as
	// received: all compressed (33 bytes) or all uncompressed (65 bytes).
	Signatures [][]byte
	// Version is the "version" member, "" when absent.
	Version string
	// PRNG is the coefficient generator the proof used: "shake" or "hkdf".
	PRNG string
}

// VerifyIssueResponse does what the extension does with an issue response
// before it stores the tokens (verify/PROTOCOL.md §7.5; challenge-bypass-
// extension v2.0.6 src/ext/issuance.js parseIssueResp and
// verifyProofAndStoreTokens, src/crypto/local.js getCurvePoints and
// verifyProof; v3.0.6 src/background/voprf.js): it decodes signatures, the
// base64 text of the "signatures" member or form field, and checks the batch
// DLEQ proof against the commitment (G, H) and the blinded points the client
// sent, in order. G, H and the blinded points are SEC 1, either encoding.
//
// It accepts what the extension accepts: the JSON object form (sigs, proof,
// optional version and prng) and the older array form (signed points, then
// the proof); the "batch-proof=" prefix present or not; "prng" "shake"
// (also when absent) or "hkdf"; signed points all compressed or all
// uncompressed, the proof hashed in that encoding; base64 decoded as the
// browser's atob does (ASCII whitespace skipped, padding optional). Like the
// extension it refuses a proof whose C, as a number, has fewer than 32 bytes
// (see Key.SignBatch). Errors wrap ErrBadIssueResponse.
//
// It is the reference a client is checked against in the tests, not a
// constant-time routine: everything it handles is public.
func VerifyIssueResponse(G, H []byte, blinded [][]byte, signatures string) (*VerifiedIssue, error) {
	raw, ok := atob(signatures)
	if !ok {
		return nil, badResponse("signatures is not base64")
	}
	resp, err := decodeIssueResponse(raw)
	if err != nil {
		return nil, err
	}

	var prng proofPRNG
	switch resp.prng {
	case "shake":
		prng = prngShake
	case "hkdf":
		prng = prngHKDF
	default:
		return nil, badResponse(`prng must be "shake" or "hkdf"`)
	}

	Z := make([]*nistec.P256Point, len(resp.sigs))
	sigs := make([][]byte, len(resp.sigs))
	compressed := false
	for i, s := range resp.sigs {
		b, ok := atob(s)
		if !ok || len(b) == 0 {
			return nil, badResponse("a signed point is not base64")
		}
		if b[0] != 2 && b[0] != 3 && b[0] != 4 {
			return nil, badResponse("a signed point is not a SEC 1 encoding")
		}
		if c := b[0] != 4; i == 0 {
			compressed = c
		} else if c != compressed {
			return nil, badResponse("signed points mix compressed and uncompressed encodings")
		}
		p, err := nistec.NewP256Point().SetBytes(b)
		if err != nil {
			return nil, badResponse("a signed point is not on P-256")
		}
		Z[i], sigs[i] = p, b
	}
	if len(Z) != len(blinded) {
		return nil, badResponse("the number of signed points differs from the number of blinded points")
	}
	M := make([]*nistec.P256Point, len(blinded))
	for i, b := range blinded {
		p, err := nistec.NewP256Point().SetBytes(b)
		if err != nil || p.IsInfinity() == 1 {
			return nil, badResponse("a blinded point is not on P-256")
		}
		M[i] = p
	}
	pG, errG := nistec.NewP256Point().SetBytes(G)
	pH, errH := nistec.NewP256Point().SetBytes(H)
	if errG != nil || errH != nil || pG.IsInfinity() == 1 || pH.IsInfinity() == 1 {
		return nil, badResponse("the commitment is not a pair of P-256 points")
	}

	C, R, err := decodeBatchProof(resp.proof)
	if err != nil {
		return nil, err
	}

	seed := batchSeed(encodePoint(pG, compressed), encodePoint(pH, compressed), encodePoints(M, compressed), encodePoints(Z, compressed))
	cs, err := coefficients(&seed, len(M), prng)
	if err != nil {
		return nil, badResponse("the coefficient generator fails")
	}
	compM, err := composite(cs, M)
	if err != nil {
		return nil, err
	}
	compZ, err := composite(cs, Z)
	if err != nil {
		return nil, err
	}

	// A = R·G + C·H, B = R·M + C·Z; C as a scalar is C mod n.
	cs0, _ := reduceScalar(C[:])
	A, err := linear(R, pG, cs0, pH)
	if err != nil {
		return nil, err
	}
	B, err := linear(R, compM, cs0, compZ)
	if err != nil {
		return nil, err
	}
	for _, p := range []*nistec.P256Point{compM, compZ, A, B} {
		if p.IsInfinity() == 1 {
			return nil, badResponse("a composite or proof point is the point at infinity")
		}
	}
	want := challengeHash(compressed, pG, pH, compM, compZ, A, B)
	if subtle.ConstantTimeCompare(want[:], C[:]) != 1 {
		return nil, badResponse("the proof does not verify")
	}
	return &VerifiedIssue{Signatures: sigs, Version: resp.version, PRNG: resp.prng}, nil
}

// linear returns a·P + b·Q.
func linear(a [32]byte, P *nistec.P256Point, b [32]byte, Q *nistec.P256Point) (*nistec.P256Point, error) {
	aP, err := nistec.NewP256Point().ScalarMult(P, a[:])
	if err != nil {
		return nil, err
	}
	bQ, err := nistec.NewP256Point().ScalarMult(Q, b[:])
	if err != nil {
		return nil, err
	}
	return aP.Add(aP, bQ), nil
}

// issueResponse is the decoded JSON of an issue response.
type issueResponse struct {
	sigs    []string
	proof   string
	version string
	prng    string
}

// decodeIssueResponse reads the JSON of an issue response as the extension's
// parseIssueResp does: an object with sigs, proof, version and prng, or an
// array of strings whose last element is the proof. A missing prng is
// "shake".
func decodeIssueResponse(raw []byte) (*issueResponse, error) {
	var out issueResponse
	switch trimmed := bytes.TrimLeft(raw, " \t\r\n"); {
	case len(trimmed) > 0 && trimmed[0] == '[':
		var arr []string
		if err := json.Unmarshal(raw, &arr); err != nil || len(arr) < 2 {
			return nil, badResponse("the array form must hold signed points and a proof, all strings")
		}
		out.sigs, out.proof = arr[:len(arr)-1], arr[len(arr)-1]
	default:
		var obj struct {
			Sigs    []string `json:"sigs"`
			Proof   string   `json:"proof"`
			Version string   `json:"version"`
			PRNG    string   `json:"prng"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, badResponse("not base64 of a JSON object with sigs, proof, version and prng strings")
		}
		out = issueResponse{sigs: obj.Sigs, proof: obj.Proof, version: obj.Version, prng: obj.PRNG}
	}
	if len(out.sigs) == 0 {
		return nil, badResponse("no signed points")
	}
	if out.proof == "" {
		return nil, badResponse("no batch proof")
	}
	if out.prng == "" {
		out.prng = "shake"
	}
	return &out, nil
}

// decodeBatchProof reads the proof member: base64 of an optional
// "batch-proof=" prefix and {"P":"<b64 of {"R":"<b64>","C":"<b64>"}>"}. C
// must be exactly 32 bytes once leading zero bytes are dropped, as the
// extension's comparison needs; R is any number of at most 32 bytes, used
// mod n.
func decodeBatchProof(proof string) (C, R [32]byte, err error) {
	bp, ok := atob(proof)
	if !ok {
		return C, R, badResponse("the proof is not base64")
	}
	bp = bytes.TrimPrefix(bp, []byte(batchProofPrefix))
	var outer struct {
		P string `json:"P"`
	}
	if json.Unmarshal(bp, &outer) != nil {
		return C, R, badResponse(`the proof is not {"P": ...}`)
	}
	pj, ok := atob(outer.P)
	if !ok {
		return C, R, badResponse("the proof's P is not base64")
	}
	var inner struct {
		R string `json:"R"`
		C string `json:"C"`
	}
	if json.Unmarshal(pj, &inner) != nil {
		return C, R, badResponse(`the proof's P is not {"R": ..., "C": ...}`)
	}
	rb, okR := atob(inner.R)
	cb, okC := atob(inner.C)
	if !okR || !okC {
		return C, R, badResponse("R or C is not base64")
	}
	if R, ok = reduceScalar(rb); !ok {
		return C, R, badResponse("R is longer than 32 bytes")
	}
	if cb = bytes.TrimLeft(cb, "\x00"); len(cb) != 32 {
		return C, R, badResponse("C is not a 32-byte number")
	}
	copy(C[:], cb)
	return C, R, nil
}

// atob decodes base64 as the browser's atob does (the WHATWG
// forgiving-base64 decode): ASCII whitespace is skipped, and the '='
// padding is optional but, when present, must make the length a multiple of
// four. sjcl's base64 decoder, which the extension uses for the points and
// scalars, is at least as lenient.
func atob(s string) ([]byte, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\f' || r == '\r' {
			return -1
		}
		return r
	}, s)
	if len(s)%4 == 0 {
		s = strings.TrimSuffix(s, "=")
		s = strings.TrimSuffix(s, "=")
	}
	if len(s)%4 == 1 {
		return nil, false
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	return b, err == nil
}
