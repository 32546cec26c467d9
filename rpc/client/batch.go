package client

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// MaxIssueTokens bounds the tokens of one issue request on the client's
// side; ppredeem's own bound (max_issue_tokens) is lower by default.
const MaxIssueTokens = 10000

// maxTokenDraws bounds the tokens drawn for one slot of a batch: a random
// token fails to hash to the curve with probability about 2⁻²⁰.
const maxTokenDraws = 8

// IssueBatch is the client's half of one issuance (verify/PROTOCOL.md §7;
// the Token class of src/background/token.ts and blindPoint, unblindPoint
// and verifyProof in src/background/voprf.js of
// privacypass/challenge-bypass-extension v3.0.6): for each token a random
// t, its point T = H2C(t), a random blinding scalar r and the blinded point
// M = r·T that the issuer signs without learning T. It holds secrets (t and
// r): keep it no longer than the issuance. Issue makes and finishes one;
// NewIssueBatch, Request and Finish are its steps, for callers that carry
// the request themselves.
type IssueBatch struct {
	inputs  [][]byte
	blinds  []*bigmod.Nat
	blinded []*nistec.P256Point
}

// NewIssueBatch draws n tokens and their blinding scalars from rand
// (crypto/rand.Reader when nil), 1 ≤ n ≤ MaxIssueTokens.
func NewIssueBatch(rnd io.Reader, n int) (*IssueBatch, error) {
	if n < 1 || n > MaxIssueTokens {
		return nil, fmt.Errorf("ppredeem client: %d tokens: a batch has 1 to %d", n, MaxIssueTokens)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	b := &IssueBatch{
		inputs:  make([][]byte, n),
		blinds:  make([]*bigmod.Nat, n),
		blinded: make([]*nistec.P256Point, n),
	}
	for i := range n {
		T, err := b.drawToken(rnd, i)
		if err != nil {
			return nil, err
		}
		r, err := randomScalar(rnd)
		if err != nil {
			return nil, fmt.Errorf("ppredeem client: drawing a blinding scalar: %w", err)
		}
		b.blinds[i] = r
		b.blinded[i] = scalarMult(T, r)
	}
	return b, nil
}

// drawToken draws token i and returns its point.
func (b *IssueBatch) drawToken(rnd io.Reader, i int) (*nistec.P256Point, error) {
	for range maxTokenDraws {
		t := make([]byte, TokenLen)
		if _, err := io.ReadFull(rnd, t); err != nil {
			return nil, fmt.Errorf("ppredeem client: drawing a token: %w", err)
		}
		T, err := hashToCurve(t)
		if errors.Is(err, errNoCurvePoint) {
			continue
		}
		b.inputs[i] = t
		return T, nil
	}
	return nil, errors.New("ppredeem client: the random source gives no token that hashes to the curve")
}

// Len is the number of tokens of the batch.
func (b *IssueBatch) Len() int { return len(b.inputs) }

// issueRequestJSON is the blinded-token request (BuildIssueRequest in
// src/ext/issuance.js, v2.0.6).
type issueRequestJSON struct {
	Type     string   `json:"type"`
	Contents []string `json:"contents"`
}

// Request returns the blinded-token request of the batch, the value of
// the "bl_sig_req" JSON member or of the "blinded-tokens" form field:
// standard base64 of {"type":"Issue","contents":["<b64 SEC1 M_i>",...]}.
// The points are compressed (33 bytes) as the extension sends them, or
// uncompressed (65 bytes) when compressed is false.
func (b *IssueBatch) Request(compressed bool) string {
	req := issueRequestJSON{Type: "Issue", Contents: make([]string, len(b.blinded))}
	for i, M := range b.blinded {
		req.Contents[i] = base64.StdEncoding.EncodeToString(encodePoint(M, compressed))
	}
	j, err := json.Marshal(req)
	if err != nil { // strings only
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(j)
}

// Finish reads the issuer's answer to the batch's request (the text of its
// "signatures" member or form field), checks it and unblinds the tokens:
//
//  1. parse the response as the extension does (sigs, proof, version, prng);
//  2. take the commitment H of the key version it names from commitments;
//  3. verify the batch DLEQ proof over G, H, the batch's M_i and the Z_i,
//     with the coefficient generator it names ("shake" or "hkdf");
//  4. unblind: N_i = r_i⁻¹·Z_i.
//
// It returns the tokens in request order, or an *Error wrapping
// ErrBadIssueResponse (unreadable, or not one signature per token),
// ErrNoCommitment (no unexpired commitment of that version) or ErrBadProof
// (the proof does not verify: the points may not be signed with the
// committed key, and no token is returned).
func (b *IssueBatch) Finish(signatures string, commitments []Commitment) ([]*Token, error) {
	tokens, e := b.finish(signatures, commitments)
	if e != nil {
		return nil, e
	}
	return tokens, nil
}

func (b *IssueBatch) finish(signatures string, commitments []Commitment) ([]*Token, *Error) {
	resp, err := parseIssueResponse(signatures)
	if err != nil {
		return nil, issueError(ErrBadIssueResponse, err.Error())
	}
	if len(resp.sigs) != b.Len() {
		return nil, issueError(ErrBadIssueResponse, fmt.Sprintf("%d signed points for %d tokens", len(resp.sigs), b.Len()))
	}
	H, err := commitmentFor(commitments, resp.version, time.Now())
	if err != nil {
		return nil, issueError(ErrNoCommitment, err.Error())
	}
	G := nistec.NewP256Point().SetGenerator()
	if err := verifyBatchProof(G, H, b.blinded, resp.sigs, resp.compressed, resp.prng, resp.proof); err != nil {
		return nil, issueError(ErrBadProof, err.Error())
	}
	tokens := make([]*Token, b.Len())
	for i, Z := range resp.sigs {
		N := scalarMult(Z, invertScalar(b.blinds[i]))
		if N.IsInfinity() == 1 { // Z_i = identity: cannot pass the proof
			return nil, issueError(ErrBadProof, "a signed point is the identity")
		}
		tokens[i] = &Token{input: b.inputs[i], n: N}
	}
	return tokens, nil
}

// issueError is an issuance failure of kind, described by msg (which
// never holds a secret: the batch's are not put in any message).
func issueError(kind error, msg string) *Error {
	return &Error{Message: msg, kinds: []error{kind}, issuing: true}
}
