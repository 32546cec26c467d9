package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"

	"filippo.io/nistec"
)

// DefaultMaxIssueTokens is the number of blinded points ParseIssueRequest
// accepts in one request when the caller passes no limit. The extension asks
// for 30 at a time (challenge-bypass-extension v2.0.6 src/ext/config.js,
// "tokens-per-request" of the Cloudflare configuration).
const DefaultMaxIssueTokens = 100

// The sentinels of ParseIssueRequest. Every error it returns is an
// *IssueError that errors.Is exactly one of them; nothing in verify knows
// how they travel on the wire.
var (
	// ErrBadIssueRequest: the request text is not canonical standard base64
	// of a JSON object {"type":"Issue","contents":[...]} with at least one
	// string in contents (verify/PROTOCOL.md §7.1).
	ErrBadIssueRequest = errors.New("invalid issue request")
	// ErrBadPoint: an element of contents is not canonical standard base64
	// of a 33-byte (compressed) or 65-byte (uncompressed) SEC 1 encoding of
	// a P-256 point. The point at infinity has no such encoding.
	ErrBadPoint = errors.New("invalid blinded point")
	// ErrDuplicatePoint: two elements of contents are the same point (in
	// the same or different encodings).
	ErrDuplicatePoint = errors.New("duplicate blinded point")
	// ErrTooManyTokens: contents holds more points than the limit.
	ErrTooManyTokens = errors.New("too many tokens in issue request")
)

// IssueError says which rule an issue request broke. Reason is a fixed text
// that never quotes the request; Index is the position in contents of the
// element at fault, or -1. errors.Is(e, e.Kind) is true.
type IssueError struct {
	Kind   error // ErrBadIssueRequest, ErrBadPoint, ErrDuplicatePoint or ErrTooManyTokens
	Reason string
	Index  int
}

// Error returns Kind, Reason and, when set, the index: "invalid blinded
// point: not a point on P-256 (contents[3])".
func (e *IssueError) Error() string {
	s := e.Kind.Error() + ": " + e.Reason
	if e.Index >= 0 {
		s += " (contents[" + strconv.Itoa(e.Index) + "])"
	}
	return s
}

// Unwrap returns Kind.
func (e *IssueError) Unwrap() error { return e.Kind }

func badIssue(reason string) error {
	return &IssueError{Kind: ErrBadIssueRequest, Reason: reason, Index: -1}
}

// Fixed reasons of ParseIssueRequest. None of them may include request data.
const (
	reasonIssueBase64   = "not canonical standard base64"
	reasonIssueObject   = "not base64 of a JSON object"
	reasonIssueType     = `type must be "Issue"`
	reasonIssueContents = "contents must be an array of strings"
	reasonIssueEmpty    = "contents must not be empty"
	reasonPointBase64   = "not canonical standard base64"
	reasonPointLength   = "not a 33- or 65-byte SEC 1 point encoding"
	reasonPointInfinity = "the point at infinity"
	reasonPointCurve    = "not a point on P-256"
	reasonDuplicate     = "the same point as an earlier element"
)

// IssueRequest is a parsed issue request: the blinded points M_i, in request
// order, each on P-256, none the point at infinity, no two equal. It is
// immutable; sign it with Key.SignBatch.
type IssueRequest struct {
	blinded []*nistec.P256Point
}

// Len returns the number of blinded points, which is the number of tokens
// signing it issues.
func (r *IssueRequest) Len() int {
	if r == nil {
		return 0
	}
	return len(r.blinded)
}

// wireIssue is the decoded JSON of an issue request (verify/PROTOCOL.md
// §7.1). Member names are matched by encoding/json: case-insensitively, the
// last repeated member winning; unknown members are ignored.
type wireIssue struct {
	Type     json.RawMessage `json:"type"`
	Contents []issueString   `json:"contents"`
}

// issueString is a JSON string of an issue request; null and other values
// are refused.
type issueString string

// errIssueString reports a JSON value that is not a string.
var errIssueString = errors.New("not a string")

func (s *issueString) UnmarshalJSON(b []byte) error {
	v, ok := jsonString(b)
	if !ok {
		return errIssueString
	}
	*s = issueString(v)
	return nil
}

// ParseIssueRequest parses the blinded-token request of a client asking for
// signatures (verify/PROTOCOL.md §7.1): text is the value of the
// "bl_sig_req" JSON member or the "blinded-tokens" form field, the standard
// base64 of
//
//	{"type":"Issue","contents":["<b64 SEC1 M_1>", "<b64 SEC1 M_2>", ...]}
//
// Every M_i may be compressed (33 bytes) or uncompressed (65 bytes), and must
// be on the curve; the point at infinity cannot be encoded so. At most
// maxTokens points are accepted (DefaultMaxIssueTokens when maxTokens <= 0),
// and no point twice.
//
// Errors are *IssueError, checked in this order: the structure
// (ErrBadIssueRequest), the count (ErrTooManyTokens), then each point in
// order (ErrBadPoint, ErrDuplicatePoint). The caller bounds the size of text
// (the body limit of the HTTP server).
func ParseIssueRequest(text string, maxTokens int) (*IssueRequest, error) {
	if maxTokens <= 0 {
		maxTokens = DefaultMaxIssueTokens
	}
	raw, err := decodeBase64(text, base64.StdEncoding.DecodedLen(len(text)))
	if err != nil {
		return nil, badIssue(reasonIssueBase64)
	}
	if trimmed := bytes.TrimLeft(raw, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, badIssue(reasonIssueObject)
	}
	var w wireIssue
	if err := json.Unmarshal(raw, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.Is(err, errIssueString) || errors.As(err, &te) && te.Field == "contents" {
			return nil, badIssue(reasonIssueContents)
		}
		return nil, badIssue(reasonIssueObject)
	}
	if t, ok := jsonString(w.Type); !ok || t != "Issue" {
		return nil, badIssue(reasonIssueType)
	}
	if w.Contents == nil {
		return nil, badIssue(reasonIssueContents)
	}
	if len(w.Contents) == 0 {
		return nil, badIssue(reasonIssueEmpty)
	}
	if len(w.Contents) > maxTokens {
		return nil, &IssueError{Kind: ErrTooManyTokens, Reason: "at most " + strconv.Itoa(maxTokens) + " points", Index: -1}
	}

	blinded := make([]*nistec.P256Point, len(w.Contents))
	seen := make(map[[33]byte]struct{}, len(w.Contents))
	for i, s := range w.Contents {
		M, reason := parseBlindedPoint(string(s))
		if M == nil {
			return nil, &IssueError{Kind: ErrBadPoint, Reason: reason, Index: i}
		}
		var key [33]byte
		copy(key[:], M.BytesCompressed())
		if _, dup := seen[key]; dup {
			return nil, &IssueError{Kind: ErrDuplicatePoint, Reason: reasonDuplicate, Index: i}
		}
		seen[key] = struct{}{}
		blinded[i] = M
	}
	return &IssueRequest{blinded: blinded}, nil
}

// parseBlindedPoint decodes one element of contents. On failure it returns
// nil and the reason.
func parseBlindedPoint(s string) (*nistec.P256Point, string) {
	b, err := decodeBase64(s, 65)
	switch {
	case errors.Is(err, errTooLong):
		return nil, reasonPointLength
	case err != nil:
		return nil, reasonPointBase64
	case len(b) == 1 && b[0] == 0:
		return nil, reasonPointInfinity
	case len(b) != 33 && len(b) != 65:
		return nil, reasonPointLength
	}
	M, err := nistec.NewP256Point().SetBytes(b)
	if err != nil {
		return nil, reasonPointCurve
	}
	return M, ""
}
