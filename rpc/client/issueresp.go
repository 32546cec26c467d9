package client

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"filippo.io/nistec"
)

// batchProofPrefix may precede the JSON of the proof (BATCH_PROOF_PREFIX in
// src/crypto/local.js of privacypass/challenge-bypass-extension v2.0.6).
const batchProofPrefix = "batch-proof="

// issueResponse is an issue response as the extension reads it.
type issueResponse struct {
	sigs       []*nistec.P256Point // Z_i, in request order
	compressed bool                // the Z_i came compressed
	proof      batchProof
	version    string // the key version, "" when the issuer sent none
	prng       string // prngShake or prngHKDF
}

// parseIssueResponse reads the text an issuer answers in its "signatures"
// member (or form field), the way the extension does (validateResponse,
// parseIssueResp, getCurvePoints, getMarshaledBatchProof and
// parseDleqProof in src/ext/issuance.js and src/crypto/local.js, v2.0.6;
// the providers of v3.0.6 read the same fields):
//
//	text  = base64 of either {"sigs":[Z_1,...],"proof":P,"version":v,"prng":g}
//	        or the older array [Z_1, ..., Z_n, P]
//	Z_i   = base64 of a SEC1 point, all compressed or all uncompressed
//	P     = base64 of ["batch-proof="] {"P": base64 of {"R":b64,"C":b64}}
//	g     = "shake" (also when missing or empty) or "hkdf"
//
// Base64 is read as the browser's atob reads it: ASCII whitespace is
// skipped and the '=' padding is optional. Member names are matched
// exactly, the last of repeated members winning, as JSON.parse does;
// other members are ignored.
func parseIssueResponse(text string) (*issueResponse, error) {
	raw, err := decodeBase64(text)
	if err != nil {
		return nil, fmt.Errorf("the signatures are not base64: %w", err)
	}
	var (
		sigs  []string
		proof string
		resp  issueResponse
	)
	switch first(raw) {
	case '[':
		var all []string
		if err := json.Unmarshal(raw, &all); err != nil {
			return nil, errors.New("the signatures array is not an array of strings")
		}
		if len(all) < 2 {
			return nil, errors.New("the signatures array holds no signature and proof")
		}
		sigs, proof = all[:len(all)-1], all[len(all)-1]
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, errors.New("the signatures object is not JSON")
		}
		if err := member(obj, "sigs", &sigs); err != nil {
			return nil, err
		}
		if err := member(obj, "proof", &proof); err != nil {
			return nil, err
		}
		if err := member(obj, "version", &resp.version); err != nil {
			return nil, err
		}
		if err := member(obj, "prng", &resp.prng); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("the signatures are neither a JSON object nor an array")
	}
	switch resp.prng {
	case "":
		resp.prng = prngShake
	case prngShake, prngHKDF:
	default:
		return nil, fmt.Errorf("the issuer's coefficient generator %.32q is neither %q nor %q", resp.prng, prngShake, prngHKDF)
	}
	if len(sigs) == 0 {
		return nil, errors.New("the response holds no signed point")
	}
	if proof == "" {
		return nil, errors.New("the response holds no batch proof")
	}

	resp.sigs = make([]*nistec.P256Point, len(sigs))
	for i, s := range sigs {
		b, err := decodeBase64(s)
		if err != nil {
			return nil, fmt.Errorf("signed point %d is not base64: %w", i+1, err)
		}
		var compressed bool
		switch first(b) {
		case 2, 3:
			compressed = true
		case 4:
		default:
			return nil, fmt.Errorf("signed point %d is not a SEC1 point", i+1)
		}
		if i == 0 {
			resp.compressed = compressed
		} else if compressed != resp.compressed {
			return nil, errors.New("the signed points mix compressed and uncompressed encodings")
		}
		if resp.sigs[i], err = nistec.NewP256Point().SetBytes(b); err != nil {
			return nil, fmt.Errorf("signed point %d is not a point of P-256", i+1)
		}
	}
	if resp.proof, err = parseBatchProof(proof); err != nil {
		return nil, err
	}
	return &resp, nil
}

// parseBatchProof reads P = base64 of ["batch-proof="]{"P": base64 of
// {"R": base64, "C": base64}}.
func parseBatchProof(text string) (batchProof, error) {
	outer, err := decodeBase64(text)
	if err != nil {
		return batchProof{}, fmt.Errorf("the proof is not base64: %w", err)
	}
	outer = bytes.TrimPrefix(outer, []byte(batchProofPrefix))
	var bp map[string]json.RawMessage
	if json.Unmarshal(outer, &bp) != nil || first(outer) != '{' {
		return batchProof{}, errors.New("the proof is not a JSON object")
	}
	var p string
	if err := member(bp, "P", &p); err != nil {
		return batchProof{}, err
	}
	inner, err := decodeBase64(p)
	if err != nil {
		return batchProof{}, fmt.Errorf("the proof's P is not base64: %w", err)
	}
	var dleq map[string]json.RawMessage
	if json.Unmarshal(inner, &dleq) != nil || first(inner) != '{' {
		return batchProof{}, errors.New("the proof's P is not a JSON object")
	}
	var out batchProof
	for _, m := range []struct {
		name string
		dst  *[]byte
	}{{"R", &out.R}, {"C", &out.C}} {
		var s string
		if err := member(dleq, m.name, &s); err != nil {
			return batchProof{}, err
		}
		if s == "" {
			return batchProof{}, fmt.Errorf("the proof has no %s", m.name)
		}
		if *m.dst, err = decodeBase64(s); err != nil {
			return batchProof{}, fmt.Errorf("the proof's %s is not base64: %w", m.name, err)
		}
	}
	return out, nil
}

// member decodes obj[name] into the string or string slice dst. A missing
// member or a JSON null leaves dst alone; any other type is an error.
func member(obj map[string]json.RawMessage, name string, dst any) error {
	raw, ok := obj[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	want := byte('"')
	if _, isSlice := dst.(*[]string); isSlice {
		want = '['
	}
	if first(raw) != want || json.Unmarshal(raw, dst) != nil {
		kind := "a string"
		if want == '[' {
			kind = "an array of strings"
		}
		return fmt.Errorf("the member %q is not %s", name, kind)
	}
	return nil
}

// first is the first byte of b that is not JSON whitespace, 0 if none.
func first(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// decodeBase64 decodes standard base64 the way the browser's atob does
// (the HTML standard's forgiving-base64 decode): ASCII whitespace is
// removed, then one or two '=' are dropped from a length that is a
// multiple of four, and the rest must be unpadded base64 (non-zero bits
// after the last byte are ignored). SJCL's decoder, which the extension
// uses for points and numbers, accepts the same texts.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\f', '\r', ' ':
			return -1
		}
		return r
	}, s)
	if len(s)%4 == 0 {
		s = strings.TrimSuffix(s, "=")
		s = strings.TrimSuffix(s, "=")
	}
	return base64.RawStdEncoding.DecodeString(s)
}
