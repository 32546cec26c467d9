package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The default paths of ppredeem's issuance endpoints, on the origin of the
// client's redemption endpoint.
const (
	DefaultIssuePath       = "/api/issue"
	DefaultCommitmentsPath = "/api/commitments"
)

const (
	// maxCommitmentsBytes bounds the commitments document read.
	maxCommitmentsBytes = 1 << 20
	// issueResponseBytesPerToken bounds an issue answer's growth per
	// token: one signed point is 88 characters of base64, about 130 once
	// the response is base64-encoded again and quoted.
	issueResponseBytesPerToken = 1 << 10
)

// IssueOptions configures one issuance. A nil *IssueOptions selects every
// default.
type IssueOptions struct {
	// Endpoint is the URL issue requests are POSTed to. Default: the
	// client's endpoint with the path DefaultIssuePath.
	Endpoint string
	// AttesterKey, when not empty, is sent as "Authorization: Bearer
	// <AttesterKey>": the key the issuer's operator gave this client.
	// It must be printable ASCII without spaces.
	AttesterKey string
	// Commitments check the issuer's proof. When empty, Issue first GETs
	// them from CommitmentsURL (Commitments), before anything is issued.
	Commitments []Commitment
	// CommitmentsURL is where the commitments are fetched when
	// Commitments is nil. Default: the client's endpoint with the path
	// DefaultCommitmentsPath.
	CommitmentsURL string
	// Form sends the request as the browser extension does, the form
	// body blinded-tokens=<request>, and reads the form answer
	// signatures=<text>. The default is JSON both ways:
	// {"bl_sig_req":"<request>"} and {"signatures":"<text>"}.
	Form bool
	// Uncompressed sends the blinded points uncompressed (65 bytes)
	// instead of compressed (33 bytes, what the extension sends).
	Uncompressed bool
	// Rand is the source of the tokens and blinding scalars.
	// Default: crypto/rand.Reader.
	Rand io.Reader
}

// Issue gets n new tokens from the issuer (1 ≤ n ≤ MaxIssueTokens): it
// draws n tokens and blinds them (IssueBatch), POSTs the blinded points,
// checks the batch DLEQ proof of the answer against the commitment of the
// key version the answer names, and unblinds the signed points. The
// tokens come in one request and are all good, or none is returned.
//
// Delivery follows Redeem's rules: a request is repeated (up to
// Options.MaxAttempts in all) only when it provably never reached the
// issuer. Errors are *Error wrapping ErrNotSent (nothing reached the
// issuer), ErrAmbiguous (no answer after the request was sent; the
// issuer may have counted the tokens), ErrIssueRefused (the issuer
// answered an error: Code, Message and HTTPStatus say which),
// ErrBadIssueResponse, ErrNoCommitment or ErrBadProof (see
// IssueBatch.Finish). Invalid arguments and options give a plain error
// before any network use.
func (c *Client) Issue(ctx context.Context, n int, opts *IssueOptions) ([]*Token, error) {
	var o IssueOptions
	if opts != nil {
		o = *opts
	}
	if n < 1 || n > MaxIssueTokens {
		return nil, fmt.Errorf("ppredeem client: %d tokens: an issuance has 1 to %d", n, MaxIssueTokens)
	}
	endpoint, err := c.sibling(o.Endpoint, DefaultIssuePath)
	if err != nil {
		return nil, fmt.Errorf("ppredeem client: the issue endpoint: %w", err)
	}
	if !validAttesterKey(o.AttesterKey) {
		return nil, errors.New("ppredeem client: the attester key must be printable ASCII without spaces")
	}
	commitments := o.Commitments
	if len(commitments) == 0 {
		cu, err := c.sibling(o.CommitmentsURL, DefaultCommitmentsPath)
		if err != nil {
			return nil, fmt.Errorf("ppredeem client: the commitments URL: %w", err)
		}
		if commitments, err = c.Commitments(ctx, cu); err != nil {
			return nil, err
		}
	}
	batch, err := NewIssueBatch(o.Rand, n)
	if err != nil {
		return nil, err
	}

	request := batch.Request(!o.Uncompressed)
	header := http.Header{}
	var body []byte
	if o.Form {
		header.Set("Content-Type", "application/x-www-form-urlencoded")
		body = []byte(url.Values{"blinded-tokens": {request}}.Encode())
	} else {
		header.Set("Content-Type", "application/json")
		header.Set("Accept", "application/json")
		body, _ = json.Marshal(struct {
			Req string `json:"bl_sig_req"`
		}{request}) // a string always marshals
	}
	if o.AttesterKey != "" {
		header.Set("Authorization", "Bearer "+o.AttesterKey)
	}
	limit := int64(maxResponseBytes + n*issueResponseBytesPerToken)
	ans, attempts, e := c.exchange(ctx, http.MethodPost, endpoint, header, body, limit, true)
	if e != nil {
		return nil, e
	}
	text, e := signaturesText(ans, o.Form)
	if e == nil {
		var tokens []*Token
		if tokens, e = batch.finish(text, commitments); e == nil {
			return tokens, nil
		}
	}
	e.HTTPStatus, e.Attempts = ans.status, attempts
	return nil, e
}

// Commitments GETs the issuer's commitments from commitmentsURL (the
// client's endpoint with the path DefaultCommitmentsPath when empty) and
// reads them with ParseCommitments. It follows Redeem's delivery rules;
// every failure is an *Error wrapping ErrNoCommitment (and the context's
// error when the context ended).
func (c *Client) Commitments(ctx context.Context, commitmentsURL string) ([]Commitment, error) {
	u, err := c.sibling(commitmentsURL, DefaultCommitmentsPath)
	if err != nil {
		return nil, fmt.Errorf("ppredeem client: the commitments URL: %w", err)
	}
	header := http.Header{"Accept": {"application/json"}}
	ans, attempts, e := c.exchange(ctx, http.MethodGet, u, header, nil, maxCommitmentsBytes, true)
	if e != nil {
		kinds := []error{ErrNoCommitment}
		if ctxErr := ctx.Err(); ctxErr != nil {
			kinds = append(kinds, ctxErr)
		}
		return nil, &Error{Message: "fetching the commitments: " + e.Message, HTTPStatus: e.HTTPStatus, Attempts: attempts, kinds: kinds, cause: e.cause, issuing: true}
	}
	fail := func(msg string) *Error {
		return &Error{Message: msg, HTTPStatus: ans.status, Attempts: attempts, kinds: []error{ErrNoCommitment}, issuing: true}
	}
	if ans.status != http.StatusOK {
		return nil, fail("the commitments URL answered HTTP " + strconv.Itoa(ans.status))
	}
	cs, err := ParseCommitments(ans.body)
	if err != nil {
		return nil, fail(strings.TrimPrefix(err.Error(), "ppredeem client: "))
	}
	return cs, nil
}

// exchange sends one request with Redeem's delivery rules: it is repeated,
// up to MaxAttempts in all, only while it provably never reached the
// server. It returns the answer and the number of attempts, or the error
// of the last attempt.
func (c *Client) exchange(ctx context.Context, method, url string, header http.Header, body []byte, limit int64, issuing bool) (*answer, int, *Error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, &Error{Message: "the context ended before the request was sent", kinds: []error{ErrNotSent, err}, issuing: issuing}
	}
	for attempt := 1; ; attempt++ {
		ans, e, retryable := c.send(ctx, method, url, header, body, limit)
		if e == nil {
			return ans, attempt, nil
		}
		e.Attempts, e.issuing = attempt, issuing
		if !retryable || attempt >= c.maxAttempts {
			return nil, attempt, e
		}
		if err := sleep(ctx, c.delay(attempt)); err != nil {
			e.kinds = append(e.kinds, err)
			e.Message += "; the context ended before the next attempt"
			return nil, attempt, e
		}
	}
}

// signaturesText is the issue response text of an answer: the string
// member "signatures" of a JSON object (parseSigJson in src/ext/issuance.js
// of privacypass/challenge-bypass-extension v2.0.6), or the one form field
// "signatures", percent-decoded (qs.parse in the providers of v3.0.6).
// Any status but 2xx is the issuer's refusal, read as a JSON-RPC error
// object when it is one, and so is a JSON-RPC error without "signatures".
func signaturesText(ans *answer, form bool) (string, *Error) {
	if ans.status < 200 || ans.status > 299 {
		return "", refusal(ans)
	}
	bad := func(msg string) (string, *Error) {
		return "", &Error{Message: msg, kinds: []error{ErrBadIssueResponse}, issuing: true}
	}
	if form {
		v, err := url.ParseQuery(string(ans.body))
		if err != nil {
			return bad("the issue answer is not a form")
		}
		if len(v["signatures"]) != 1 || v.Get("signatures") == "" {
			return bad("the issue answer has not one signatures field")
		}
		return v.Get("signatures"), nil
	}
	var obj map[string]json.RawMessage
	if first(ans.body) != '{' || json.Unmarshal(ans.body, &obj) != nil {
		return bad("the issue answer is not a JSON object")
	}
	if _, ok := obj["signatures"]; !ok {
		if _, isError := obj["error"]; isError { // a JSON-RPC error with a 2xx status
			return "", refusal(ans)
		}
	}
	var text string
	if member(obj, "signatures", &text) != nil {
		return bad(`the issue answer's "signatures" member is not a string`)
	}
	if text == "" {
		return bad("the issue answer has no signatures member")
	}
	return text, nil
}

// refusal is the error of an issuer's non-2xx answer: its JSON-RPC error
// object {"error":{"code":N,"message":"..."}} when it sent one (the
// message bounded as Redeem bounds it), else its status alone. The body
// is never quoted otherwise.
func refusal(ans *answer) *Error {
	e := &Error{Message: "the issuer answered HTTP " + strconv.Itoa(ans.status) + " without signatures", kinds: []error{ErrIssueRefused}, issuing: true}
	var r struct {
		Error *struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	if first(ans.body) == '{' && json.Unmarshal(ans.body, &r) == nil && r.Error != nil && r.Error.Code != nil && r.Error.Message != nil {
		e.Code, e.Message = *r.Error.Code, serverMessage(*r.Error.Message)
	}
	return e
}

// sibling returns explicit after checking it is an absolute http(s) URL,
// or, when explicit is empty, the client's endpoint with path instead of
// its own path and query.
func (c *Client) sibling(explicit, path string) (string, error) {
	if explicit != "" {
		u, err := url.Parse(explicit)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", errors.New("not an absolute http or https URL")
		}
		return explicit, nil
	}
	u, err := url.Parse(c.endpoint)
	if err != nil { // checked by New
		return "", err
	}
	u.Path, u.RawPath, u.RawQuery, u.ForceQuery = path, "", "", false
	return u.String(), nil
}

// validAttesterKey: empty (none) or printable ASCII without spaces, so
// that it is one valid header value and cannot end the header early.
func validAttesterKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}
