package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"filippo.io/nistec"
)

// knownIssueReasons is every Reason ParseIssueRequest gives with the
// default limit. A reason outside this set could be carrying request data.
func knownIssueReasons() map[string]bool {
	m := map[string]bool{"at most " + strconv.Itoa(DefaultMaxIssueTokens) + " points": true}
	for _, r := range []string{
		reasonIssueBase64, reasonIssueObject, reasonIssueType, reasonIssueContents, reasonIssueEmpty,
		reasonPointBase64, reasonPointLength, reasonPointInfinity, reasonPointCurve, reasonDuplicate,
	} {
		m[r] = true
	}
	return m
}

func TestParseIssueRequest(t *testing.T) {
	G := nistec.NewP256Point().SetGenerator()
	P := mustPoint(t, nistecMul(t, G.Bytes(), bytes.Repeat([]byte{3}, 32)))
	negP := nistec.NewP256Point().Negate(P)
	b64 := base64.StdEncoding.EncodeToString
	pt := func(b []byte) string { return `"` + b64(b) + `"` }
	doc := func(contents ...string) string {
		return b64([]byte(`{"type":"Issue","contents":[` + strings.Join(contents, ",") + `]}`))
	}
	offCurve := G.Bytes()
	offCurve[64] ^= 1
	noRoot := make([]byte, 33) // 02||x for the first x where x³-3x+b is not a square
	for noRoot[0], noRoot[32] = 2, 1; ; noRoot[32]++ {
		if _, err := nistec.NewP256Point().SetBytes(noRoot); err != nil {
			break
		}
	}
	xTooBig := append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...)
	badPrefix := G.Bytes()
	badPrefix[0] = 5
	hybrid := G.Bytes()
	hybrid[0] = 6
	// padded is a valid request whose base64 ends in '='.
	padded := func() string {
		j := `{"type":"Issue","contents":[` + pt(P.Bytes()) + `]}`
		for len(j)%3 == 0 {
			j += " "
		}
		return b64([]byte(j))
	}()
	many := func(n int) string {
		var c []string
		w := newPointWalk(t, 9)
		for range n {
			c = append(c, pt(w.next().BytesCompressed()))
		}
		return doc(c...)
	}

	type want struct {
		kind   error
		reason string
		index  int
	}
	bad := func(reason string) want { return want{ErrBadIssueRequest, reason, -1} }
	point := func(reason string, i int) want { return want{ErrBadPoint, reason, i} }
	cases := []struct {
		name string
		text string
		max  int
		n    int // points, when it parses
		want want
	}{
		{"compressed", doc(pt(P.BytesCompressed())), 0, 1, want{}},
		{"uncompressed", doc(pt(P.Bytes())), 0, 1, want{}},
		{"mixed encodings", doc(pt(P.Bytes()), pt(G.BytesCompressed()), pt(negP.BytesCompressed())), 0, 3, want{}},
		{"P and -P are two points", doc(pt(P.Bytes()), pt(negP.Bytes())), 0, 2, want{}},
		{"unknown members ignored", b64([]byte(`{"type":"Issue","contents":[` + pt(P.Bytes()) + `],"x":1}`)), 0, 1, want{}},
		{"member names as encoding/json", b64([]byte(`{"TYPE":"Issue","Contents":[` + pt(P.Bytes()) + `]}`)), 0, 1, want{}},
		{"white space", b64([]byte(" {\"type\" : \"Issue\",\n\"contents\":[ " + pt(P.Bytes()) + " ] } ")), 0, 1, want{}},
		{"exactly max", many(3), 3, 3, want{}},
		{"default max", many(DefaultMaxIssueTokens), 0, DefaultMaxIssueTokens, want{}},

		{"padded", padded, 0, 1, want{}},
		{"empty text", "", 0, 0, bad(reasonIssueObject)},
		{"not base64", "{not base64}", 0, 0, bad(reasonIssueBase64)},
		{"unpadded base64", strings.TrimRight(padded, "="), 0, 0, bad(reasonIssueBase64)},
		{"url-safe base64", strings.NewReplacer("+", "-", "/", "_").Replace(b64([]byte(`{"type":"Issue","contents":["` + strings.Repeat("?", 30) + `"]}`))), 0, 0, bad(reasonIssueBase64)},
		{"line break", doc(pt(P.Bytes()))[:8] + "\n" + doc(pt(P.Bytes()))[8:], 0, 0, bad(reasonIssueBase64)},
		{"not JSON", b64([]byte("type=Issue")), 0, 0, bad(reasonIssueObject)},
		{"JSON array", b64([]byte(`[` + pt(P.Bytes()) + `]`)), 0, 0, bad(reasonIssueObject)},
		{"JSON null", b64([]byte(`null`)), 0, 0, bad(reasonIssueObject)},
		{"truncated JSON", b64([]byte(`{"type":"Issue","contents":[`)), 0, 0, bad(reasonIssueObject)},
		{"no type", b64([]byte(`{"contents":[` + pt(P.Bytes()) + `]}`)), 0, 0, bad(reasonIssueType)},
		{"type Redeem", b64([]byte(`{"type":"Redeem","contents":[` + pt(P.Bytes()) + `]}`)), 0, 0, bad(reasonIssueType)},
		{"type lower case", b64([]byte(`{"type":"issue","contents":[` + pt(P.Bytes()) + `]}`)), 0, 0, bad(reasonIssueType)},
		{"type null", b64([]byte(`{"type":null,"contents":[` + pt(P.Bytes()) + `]}`)), 0, 0, bad(reasonIssueType)},
		{"type number", b64([]byte(`{"type":1,"contents":[` + pt(P.Bytes()) + `]}`)), 0, 0, bad(reasonIssueType)},
		{"no contents", b64([]byte(`{"type":"Issue"}`)), 0, 0, bad(reasonIssueContents)},
		{"contents null", b64([]byte(`{"type":"Issue","contents":null}`)), 0, 0, bad(reasonIssueContents)},
		{"contents string", b64([]byte(`{"type":"Issue","contents":` + pt(P.Bytes()) + `}`)), 0, 0, bad(reasonIssueContents)},
		{"contents object", b64([]byte(`{"type":"Issue","contents":{}}`)), 0, 0, bad(reasonIssueContents)},
		{"contents number", b64([]byte(`{"type":"Issue","contents":[1]}`)), 0, 0, bad(reasonIssueContents)},
		{"contents null element", b64([]byte(`{"type":"Issue","contents":[null]}`)), 0, 0, bad(reasonIssueContents)},
		{"contents empty", doc(), 0, 0, bad(reasonIssueEmpty)},

		{"too many", many(4), 3, 0, want{ErrTooManyTokens, "at most 3 points", -1}},
		{"too many by default", many(DefaultMaxIssueTokens + 1), 0, 0, want{ErrTooManyTokens, "at most 100 points", -1}},
		{"too many before bad points", doc(`"x"`, `"y"`), 1, 0, want{ErrTooManyTokens, "at most 1 points", -1}},

		{"point not base64", doc(pt(P.Bytes()), `"@@@@"`), 0, 0, point(reasonPointBase64, 1)},
		{"point unpadded", doc(`"` + strings.TrimRight(b64(P.Bytes()), "=") + `"`), 0, 0, point(reasonPointBase64, 0)},
		{"point empty", doc(`""`), 0, 0, point(reasonPointLength, 0)},
		{"point at infinity", doc(pt([]byte{0})), 0, 0, point(reasonPointInfinity, 0)},
		{"32 bytes", doc(pt(P.BytesCompressed()[1:])), 0, 0, point(reasonPointLength, 0)},
		{"34 bytes", doc(pt(append(P.BytesCompressed(), 0))), 0, 0, point(reasonPointLength, 0)},
		{"64 bytes", doc(pt(P.Bytes()[1:])), 0, 0, point(reasonPointLength, 0)},
		{"66 bytes", doc(pt(append(P.Bytes(), 0))), 0, 0, point(reasonPointLength, 0)},
		{"long base64", doc(pt(bytes.Repeat([]byte{4}, 300))), 0, 0, point(reasonPointLength, 0)},
		{"off the curve", doc(pt(P.Bytes()), pt(offCurve)), 0, 0, point(reasonPointCurve, 1)},
		{"x without a root", doc(pt(noRoot)), 0, 0, point(reasonPointCurve, 0)},
		{"x >= p", doc(pt(xTooBig)), 0, 0, point(reasonPointCurve, 0)},
		{"prefix 05", doc(pt(badPrefix)), 0, 0, point(reasonPointCurve, 0)},
		{"hybrid encoding", doc(pt(hybrid)), 0, 0, point(reasonPointCurve, 0)},
		{"33 zero bytes", doc(pt(make([]byte, 33))), 0, 0, point(reasonPointCurve, 0)},

		{"duplicate", doc(pt(P.Bytes()), pt(G.Bytes()), pt(P.Bytes())), 0, 0, want{ErrDuplicatePoint, reasonDuplicate, 2}},
		{"duplicate across encodings", doc(pt(P.BytesCompressed()), pt(P.Bytes())), 0, 0, want{ErrDuplicatePoint, reasonDuplicate, 1}},
		{"bad point before a later duplicate", doc(pt(P.Bytes()), pt(offCurve), pt(P.Bytes())), 0, 0, point(reasonPointCurve, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := ParseIssueRequest(c.text, c.max)
			if c.want.kind == nil {
				if err != nil || req.Len() != c.n {
					t.Fatalf("got %d points, %v; want %d", req.Len(), err, c.n)
				}
				return
			}
			if req != nil {
				t.Fatal("a request with an error: nothing may be signed")
			}
			var ie *IssueError
			if !errors.As(err, &ie) || !errors.Is(err, c.want.kind) || ie.Reason != c.want.reason || ie.Index != c.want.index {
				t.Fatalf("error %v, want %v: %q at %d", err, c.want.kind, c.want.reason, c.want.index)
			}
		})
	}
}

func TestIssueErrorText(t *testing.T) {
	e := &IssueError{Kind: ErrBadPoint, Reason: reasonPointCurve, Index: 3}
	if got := e.Error(); got != "invalid blinded point: not a point on P-256 (contents[3])" {
		t.Errorf("Error() = %q", got)
	}
	e = &IssueError{Kind: ErrBadIssueRequest, Reason: reasonIssueEmpty, Index: -1}
	if got := e.Error(); got != "invalid issue request: contents must not be empty" {
		t.Errorf("Error() = %q", got)
	}
}

// TestVectorReferenceServerRequest: the extension's issue request from the
// reference server's test data parses (10 uncompressed points), and signing
// it with the test key, its key, gives a proof that verifies.
func TestVectorReferenceServerRequest(t *testing.T) {
	text := loadIssuanceVectors(t).Reference.BlSigReq
	req, err := ParseIssueRequest(text, 0)
	if err != nil || req.Len() != 10 {
		t.Fatalf("%d points, %v", req.Len(), err)
	}
	k := testKey(t)
	resp, err := k.SignBatch(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	var blinded [][]byte
	for _, M := range req.blinded {
		blinded = append(blinded, M.Bytes())
	}
	if _, err := VerifyIssueResponse(BasePoint(), k.Commitment(), blinded, resp.Encode("1.0")); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseIssueRequest fuzzes the JSON inside the base64 (and, through
// the first byte, the base64 itself). Errors come with no request and a
// known reason; a request re-encodes to one that parses to the same points.
func FuzzParseIssueRequest(f *testing.F) {
	f.Add([]byte(`{"type":"Issue","contents":["`+base64.StdEncoding.EncodeToString(BasePoint())+`"]}`), false)
	f.Add([]byte(`{"type":"Issue","contents":[]}`), false)
	f.Add([]byte(`{"type":"Issue","contents":["AA=="]}`), true)
	if raw, err := base64.StdEncoding.DecodeString(loadIssuanceVectors(f).Reference.BlSigReq); err == nil {
		f.Add(raw, false)
	}
	reasons := knownIssueReasons()
	f.Fuzz(func(t *testing.T, doc []byte, rawText bool) {
		text := base64.StdEncoding.EncodeToString(doc)
		if rawText {
			text = string(doc)
		}
		req, err := ParseIssueRequest(text, 0)
		if err != nil {
			var ie *IssueError
			if req != nil || !errors.As(err, &ie) || !reasons[ie.Reason] {
				t.Fatalf("error %v with request %v", err, req)
			}
			kinds := 0
			for _, k := range []error{ErrBadIssueRequest, ErrBadPoint, ErrDuplicatePoint, ErrTooManyTokens} {
				if errors.Is(err, k) {
					kinds++
				}
			}
			if kinds != 1 || (ie.Index >= 0) != (ie.Kind == ErrBadPoint || ie.Kind == ErrDuplicatePoint) {
				t.Fatalf("error %v: %d kinds, index %d", err, kinds, ie.Index)
			}
			return
		}
		if req.Len() < 1 || req.Len() > DefaultMaxIssueTokens {
			t.Fatalf("%d points", req.Len())
		}
		enc := make([][]byte, req.Len())
		for i, M := range req.blinded {
			enc[i] = M.Bytes()
		}
		again, err := ParseIssueRequest(issueText(t, enc), 0)
		if err != nil {
			t.Fatalf("re-encoded request does not parse: %v", err)
		}
		for i := range enc {
			if !bytes.Equal(again.blinded[i].Bytes(), enc[i]) {
				t.Fatalf("point %d changed", i)
			}
		}
	})
}
