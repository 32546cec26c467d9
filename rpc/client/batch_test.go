package client

import (
	"bytes"
	"crypto/sha3"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"filippo.io/nistec"

	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// stream is a deterministic random source: SHAKE256 of seed.
func stream(seed string) io.Reader {
	x := sha3.NewSHAKE256()
	x.Write([]byte(seed))
	return x
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func TestNewIssueBatch(t *testing.T) {
	for _, n := range []int{0, -1, MaxIssueTokens + 1} {
		if _, err := NewIssueBatch(nil, n); err == nil {
			t.Errorf("NewIssueBatch(%d) succeeded", n)
		}
	}
	if _, err := NewIssueBatch(failingReader{}, 1); err == nil {
		t.Error("a failing random source gave a batch")
	}
	// 0xff… is ≥ n: no scalar can be drawn, and the draw stops.
	if _, err := NewIssueBatch(constReader(0xff), 1); err == nil {
		t.Error("a random source without valid scalars gave a batch")
	}

	a, err := NewIssueBatch(stream("a"), 5)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := NewIssueBatch(stream("a"), 5)
	b, _ := NewIssueBatch(stream("b"), 5)
	if a.Request(true) != a2.Request(true) || a.Request(true) == b.Request(true) {
		t.Error("the request does not follow the random source")
	}

	// The request is the extension's: base64 of {"type":"Issue","contents"}
	// with 33-byte compressed points, or 65-byte uncompressed ones on
	// request, M_i = r_i·H2C(t_i) in both.
	for _, compressed := range []bool{true, false} {
		raw := unb64(t, a.Request(compressed))
		var req struct {
			Type     string   `json:"type"`
			Contents []string `json:"contents"`
		}
		if err := json.Unmarshal(raw, &req); err != nil || req.Type != "Issue" || len(req.Contents) != 5 {
			t.Fatalf("request %s: %v", raw, err)
		}
		for i, c := range req.Contents {
			b := unb64(t, c)
			if want := map[bool]int{true: 33, false: 65}[compressed]; len(b) != want {
				t.Fatalf("point %d is %d bytes, want %d", i, len(b), want)
			}
			T, err := hashToCurve(a.inputs[i])
			if err != nil {
				t.Fatal(err)
			}
			if point(t, b).Equal(scalarMult(T, a.blinds[i])) != 1 || len(a.inputs[i]) != TokenLen {
				t.Errorf("point %d is not r·H2C(t)", i)
			}
		}
	}
}

// signed answers batch under the test key with verify's signer, the
// server's math used as the counterpart.
func signed(t testing.TB, batch *IssueBatch, version string) string {
	t.Helper()
	req, err := verify.ParseIssueRequest(batch.Request(true), 0)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := verifytest.Key().SignBatch(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Encode(version)
}

// checkTokens fails unless every token's N is k·H2C(t) under the test key:
// what a genuine issuance gives, and what no forged answer may.
func checkTokens(t testing.TB, tokens []*Token) {
	t.Helper()
	var v struct {
		TestKey struct {
			K string `json:"k_hex"`
		} `json:"test_key"`
	}
	loadJSON(t, vectorsFile, &v)
	k := scalar(t, unhex(t, v.TestKey.K))
	for i, tok := range tokens {
		T, err := hashToCurve(tok.input)
		if err != nil {
			t.Fatal(err)
		}
		if tok.n.Equal(scalarMult(T, k)) != 1 {
			t.Fatalf("token %d: N is not k·H2C(t)", i)
		}
	}
}

func TestFinishGenuine(t *testing.T) {
	batch, err := NewIssueBatch(stream("genuine"), 7)
	if err != nil {
		t.Fatal(err)
	}
	cs := []Commitment{{Version: "1.0", H: verifytest.Key().Commitment()}}
	tokens, err := batch.Finish(signed(t, batch, "1.0"), cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 7 {
		t.Fatalf("%d tokens", len(tokens))
	}
	checkTokens(t, tokens)
	for i, tok := range tokens {
		if !bytes.Equal(tok.input, batch.inputs[i]) {
			t.Fatalf("token %d is not in request order", i)
		}
	}
	// Another batch's answer does not fit.
	other, _ := NewIssueBatch(stream("other"), 7)
	if _, err := other.Finish(signed(t, batch, "1.0"), cs); !errors.Is(err, ErrBadProof) {
		t.Errorf("another batch's answer: %v", err)
	}
}

// FuzzParseIssueResponse: any text is parsed or refused, without panic;
// what is parsed has signed points on the curve, a proof and a known
// coefficient generator.
func FuzzParseIssueResponse(f *testing.F) {
	good, bad := loadProofCases(f)
	for _, c := range append(good, bad) {
		f.Add(c.text)
	}
	f.Add("W10=")
	f.Add("e30=")
	f.Fuzz(func(t *testing.T, text string) {
		resp, err := parseIssueResponse(text)
		if err != nil {
			return
		}
		if len(resp.sigs) == 0 || len(resp.proof.C) == 0 || len(resp.proof.R) == 0 {
			t.Fatalf("parsed without points or proof: %+v", resp)
		}
		if resp.prng != prngShake && resp.prng != prngHKDF {
			t.Fatalf("prng %q", resp.prng)
		}
		for _, p := range resp.sigs {
			if p.IsInfinity() == 1 {
				t.Fatal("a signed point is the identity")
			}
			if _, err := nistec.NewP256Point().SetBytes(p.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzFinish: whatever the answer, Finish never panics, and tokens it
// returns are genuine (N = k·H2C(t) under the committed key): a forged
// answer gives none.
func FuzzFinish(f *testing.F) {
	batch, err := NewIssueBatch(stream("fuzz"), 2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed(f, batch, "1.0"))
	f.Add(signed(f, batch, ""))
	good, bad := loadProofCases(f)
	for _, c := range append(good, bad) {
		f.Add(c.text)
	}
	cs := []Commitment{{H: verifytest.Key().Commitment()}}
	f.Fuzz(func(t *testing.T, text string) {
		tokens, err := batch.Finish(text, cs)
		if err != nil {
			if tokens != nil {
				t.Fatal("tokens with an error")
			}
			return
		}
		checkTokens(t, tokens)
	})
}
