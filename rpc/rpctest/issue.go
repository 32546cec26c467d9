package rpctest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"filippo.io/nistec"

	"github.com/ppredeem/ppredeem/rpc/attest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// The client side of issuance, written from verify/PROTOCOL.md §4, §6 and
// §7 for the tests of the server: blind fresh tokens, build the issue
// request, and unblind what the server signed into tokens that redeem.
// It checks nothing of the answer: tests verify proofs with
// verify.VerifyIssueResponse. The independent client is rpc/client.

// BlindToken is a token a client wants signed: the token t, the blinding
// scalar r, and the blinded point M = r·T, T = H2C(t) by try-and-increment.
type BlindToken struct {
	Token []byte
	// Blinded is M, SEC 1 compressed as the extension sends it.
	Blinded []byte
	r       *big.Int
}

// p256N is the order of P-256 (verify/PROTOCOL.md §3).
var p256N, _ = new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)

// NewBlindTokens makes n fresh tokens, blinded.
func NewBlindTokens(t testing.TB, n int) []BlindToken {
	t.Helper()
	out := make([]BlindToken, 0, n)
	for len(out) < n {
		tok := make([]byte, 32)
		rand.Read(tok)
		T, ok := hashAndIncrement(tok)
		if !ok {
			continue // about 2⁻²⁰ of tokens map to no point
		}
		r, err := rand.Int(rand.Reader, new(big.Int).Sub(p256N, big.NewInt(1)))
		if err != nil {
			t.Fatal(err)
		}
		r.Add(r, big.NewInt(1))
		M, err := nistec.NewP256Point().ScalarMult(T, r.FillBytes(make([]byte, 32)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, BlindToken{Token: tok, Blinded: M.BytesCompressed(), r: r})
	}
	return out
}

// BlindWith blinds token with the scalar r (32 bytes big-endian, 0 < r <
// n): a reproducible BlindToken, for examples and vectors.
func BlindWith(token, r []byte) (BlindToken, error) {
	T, ok := hashAndIncrement(token)
	if !ok {
		return BlindToken{}, errors.New("rpctest: the token maps to no point")
	}
	rr := new(big.Int).SetBytes(r)
	if len(r) != 32 || rr.Sign() == 0 || rr.Cmp(p256N) >= 0 {
		return BlindToken{}, errors.New("rpctest: r must be 32 bytes in [1, n-1]")
	}
	M, err := nistec.NewP256Point().ScalarMult(T, r)
	if err != nil {
		return BlindToken{}, err
	}
	return BlindToken{Token: append([]byte(nil), token...), Blinded: M.BytesCompressed(), r: rr}, nil
}

// hashAndIncrement is verify/PROTOCOL.md §4.
func hashAndIncrement(t []byte) (*nistec.P256Point, bool) {
	var ctr [4]byte
	h := sha256.New()
	h.Write([]byte("1.2.840.10045.3.1.7 point generation seed"))
	h.Write(t)
	h.Write(ctr[:])
	d := h.Sum(nil)
	for i := uint32(0); i < 20; i++ {
		if i > 0 {
			binary.LittleEndian.PutUint32(ctr[:], i)
			h.Reset()
			h.Write(d)
			h.Write(ctr[:])
			d = h.Sum(nil)
		}
		if T, err := nistec.NewP256Point().SetBytes(append([]byte{2}, d...)); err == nil {
			return T, true
		}
	}
	return nil, false
}

// Blinded returns the blinded points of toks, in order.
func Blinded(toks []BlindToken) [][]byte {
	out := make([][]byte, len(toks))
	for i, b := range toks {
		out[i] = b.Blinded
	}
	return out
}

// IssueText returns the issue request for the given SEC 1 points: the
// standard base64 of {"type":"Issue","contents":["<b64 point>",...]}
// (verify/PROTOCOL.md §7.1).
func IssueText(points [][]byte) string {
	contents := make([]string, len(points))
	for i, p := range points {
		contents[i] = base64.StdEncoding.EncodeToString(p)
	}
	j, _ := json.Marshal(struct { // strings always marshal
		Type     string   `json:"type"`
		Contents []string `json:"contents"`
	}{"Issue", contents})
	return base64.StdEncoding.EncodeToString(j)
}

// IssueJSON is the JSON body of an issue request: {"bl_sig_req":"<text>"}.
func IssueJSON(text string) string {
	j, _ := json.Marshal(map[string]string{"bl_sig_req": text})
	return string(j)
}

// IssueForm is the form body of an issue request: blinded-tokens=<text>,
// percent-encoded.
func IssueForm(text string) string { return url.Values{"blinded-tokens": {text}}.Encode() }

// Unblind turns the signed point Z = k·M (SEC 1) into the token the
// client keeps, N = r⁻¹·Z = k·T, and returns its redemption bound to
// bindings (verify/PROTOCOL.md §6, §7.5), method increment, uncompressed.
func (b BlindToken) Unblind(Z []byte, bindings []string) (verifytest.Token, error) {
	z, err := nistec.NewP256Point().SetBytes(Z)
	if err != nil {
		return verifytest.Token{}, fmt.Errorf("rpctest: signed point: %w", err)
	}
	rInv := new(big.Int).ModInverse(b.r, p256N)
	N, err := nistec.NewP256Point().ScalarMult(z, rInv.FillBytes(make([]byte, 32)))
	if err != nil {
		return verifytest.Token{}, err
	}
	derive := hmac.New(sha256.New, []byte("hash_derive_key"))
	derive.Write(b.Token)
	derive.Write(N.Bytes())
	mac := hmac.New(sha256.New, derive.Sum(nil))
	mac.Write([]byte("hash_request_binding"))
	for _, s := range bindings {
		mac.Write([]byte(s))
	}
	return verifytest.Token{Token: b.Token, Tag: mac.Sum(nil), Bindings: bindings, Method: verify.Increment}, nil
}

// AttesterKey returns the attest.Key of an attester whose key is key.
func AttesterKey(name, key string) attest.Key {
	return attest.Key{Name: name, Hash: sha256.Sum256([]byte(key))}
}

// IssueAnswer is the answer to POST /api/issue.
type IssueAnswer struct {
	Status int
	Header http.Header
	Body   []byte
	// Signatures is the signatures text of a success, read from the JSON
	// or form answer as the request's encoding says.
	Signatures string
	// Error is the JSON-RPC error of a refusal.
	Error *Error
}

// ErrBadIssueAnswer is wrapped by Issue for an answer that is neither a
// success of the request's encoding nor a JSON-RPC error.
var ErrBadIssueAnswer = errors.New("rpctest: not an answer of POST /api/issue")

// Issue POSTs body to the issue endpoint url with the Content-Type
// contentType and, when attesterKey is not empty, Authorization: Bearer
// attesterKey. A success must be {"signatures":"..."} as JSON for a
// JSON request, signatures=... as a form for a form request; a refusal a
// JSON-RPC error body. It needs no *testing.T.
func Issue(ctx context.Context, url, contentType, attesterKey, body string) (IssueAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return IssueAnswer{}, err
	}
	req.Header.Set("Content-Type", contentType)
	if attesterKey != "" {
		req.Header.Set("Authorization", "Bearer "+attesterKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return IssueAnswer{}, err
	}
	defer resp.Body.Close()
	a := IssueAnswer{Status: resp.StatusCode, Header: resp.Header}
	if a.Body, err = io.ReadAll(resp.Body); err != nil {
		return a, err
	}
	if resp.StatusCode != http.StatusOK {
		r, err := Decode(a.Body)
		if err != nil || r.Error == nil {
			return a, fmt.Errorf("%w: HTTP %d %q", ErrBadIssueAnswer, resp.StatusCode, a.Body)
		}
		a.Error = r.Error
		return a, nil
	}
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		v, err := parseFormAnswer(resp.Header.Get("Content-Type"), a.Body)
		if err != nil {
			return a, err
		}
		a.Signatures = v
		return a, nil
	}
	var answer struct {
		Signatures *string `json:"signatures"`
	}
	if resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(a.Body, &answer) != nil || answer.Signatures == nil {
		return a, fmt.Errorf("%w: %q", ErrBadIssueAnswer, a.Body)
	}
	a.Signatures = *answer.Signatures
	return a, nil
}

func parseFormAnswer(contentType string, body []byte) (string, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil || contentType != "application/x-www-form-urlencoded" || len(v) != 1 || len(v["signatures"]) != 1 {
		return "", fmt.Errorf("%w: %q", ErrBadIssueAnswer, body)
	}
	return v["signatures"][0], nil
}

// Commitment is one entry of GET /api/commitments.
type Commitment struct {
	G, H    []byte
	Expiry  string
	Version string
}

// Commitments GETs the commitments endpoint url and decodes it strictly:
// an object of version → {"G","H","expiry","version"}, in document order.
func Commitments(ctx context.Context, url string) ([]Commitment, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d %q", url, resp.StatusCode, body)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("commitments: not an object: %q", body)
	}
	var out []Commitment
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var c struct {
			G, H    string
			Expiry  string `json:"expiry"`
			Version string `json:"version"`
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		strict := json.NewDecoder(strings.NewReader(string(raw)))
		strict.DisallowUnknownFields()
		if err := strict.Decode(&c); err != nil {
			return nil, fmt.Errorf("commitments: %s: %w", tok, err)
		}
		G, errG := base64.StdEncoding.Strict().DecodeString(c.G)
		H, errH := base64.StdEncoding.Strict().DecodeString(c.H)
		if errG != nil || errH != nil || c.Version != tok {
			return nil, fmt.Errorf("commitments: malformed entry %s: %s", tok, raw)
		}
		out = append(out, Commitment{G: G, H: H, Expiry: c.Expiry, Version: c.Version})
	}
	return out, nil
}
