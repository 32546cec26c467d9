package rpc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ppredeem/ppredeem/rpc/attest"
	"github.com/ppredeem/ppredeem/rpc/wire"
)

// IssuePath and CommitmentsPath are the issuance endpoints
// (wire.IssuePath, wire.CommitmentsPath).
const (
	IssuePath       = wire.IssuePath
	CommitmentsPath = wire.CommitmentsPath
)

// Defaults for IssueOptions fields left zero.
const (
	DefaultMaxIssueTokens   = 100
	DefaultCountTimeout     = 5 * time.Second
	DefaultCommitmentExpiry = 7 * 24 * time.Hour
)

// UsageSubjectPrefix starts the usage subject of issued tokens: they are
// counted as (UsageSubjectPrefix + attester name, signing key ID).
const UsageSubjectPrefix = "attester:"

// UsageCounter counts issued tokens durably; the spent-token stores
// satisfy it. AddUsage returns nil only once the count is committed.
type UsageCounter interface {
	AddUsage(ctx context.Context, subject, item string, n int64) error
}

// IssueObserver is told the outcome of every request to POST /api/issue:
// attester is the admitted attester ("" when none was), tokens the number
// issued (0 unless outcome is OutcomeSuccess).
type IssueObserver interface {
	ObserveIssue(outcome Outcome, attester string, tokens int, elapsed time.Duration)
}

// IssueOptions configures POST /api/issue and GET /api/commitments.
// Kind, Gate and Usage are required.
type IssueOptions struct {
	// Kind is the Method of the Kind whose keys sign; its KeySet must
	// implement Issuer (the first key signs, see rpc/kind/voprf).
	Kind string
	// Gate returns the Gate in force, which decides who may get tokens;
	// it is called once per request, so a reload can swap the Gate.
	Gate func() *attest.Gate
	// Usage counts every issued token under its attester.
	Usage UsageCounter
	// MaxTokens bounds the tokens of one request (default 100).
	MaxTokens int
	// CountTimeout bounds the durable count of one issuance (default 5s).
	CountTimeout time.Duration
	// CommitmentExpiry is how far after the moment it is served a
	// commitment's "expiry" lies (default 7 days).
	CommitmentExpiry time.Duration
	// Observer receives every issue request's outcome (optional).
	Observer IssueObserver
	// Now is the clock of the commitments' expiry (default time.Now).
	Now func() time.Time
}

// issuance is the handler's issuance state; nil when not configured.
type issuance struct {
	keys         func() KeySet
	gate         func() *attest.Gate
	usage        UsageCounter
	maxTokens    int
	countTimeout time.Duration
	expiry       time.Duration
	observer     IssueObserver
	now          func() time.Time
}

// setIssue checks o and configures issuance; nil leaves it off.
func (h *Handler) setIssue(o *IssueOptions) error {
	if o == nil {
		return nil
	}
	keys := h.kinds[o.Kind]
	if keys == nil || o.Gate == nil || o.Usage == nil {
		return errors.New("rpc: IssueOptions needs the Method of a configured Kind, a Gate and a UsageCounter")
	}
	is := &issuance{
		keys: keys, gate: o.Gate, usage: o.Usage, maxTokens: o.MaxTokens, countTimeout: o.CountTimeout,
		expiry: o.CommitmentExpiry, observer: o.Observer, now: o.Now,
	}
	if is.maxTokens <= 0 {
		is.maxTokens = DefaultMaxIssueTokens
	}
	if is.countTimeout <= 0 {
		is.countTimeout = DefaultCountTimeout
	}
	if is.expiry <= 0 {
		is.expiry = DefaultCommitmentExpiry
	}
	if is.now == nil {
		is.now = time.Now
	}
	h.issue = is
	return nil
}

// issueRoutes mounts the issuance endpoints when issuance is configured.
// GET patterns take HEAD too. /api/commitments refuses the other methods
// of RFC 9110 §9 and PATCH with "use GET", one pattern each: a pattern
// for all methods at that path would conflict with "POST /" in ServeMux's
// rules. Other methods get the catch-all answer ("use POST").
func (h *Handler) issueRoutes(mux *http.ServeMux) {
	if h.issue == nil {
		return
	}
	mux.HandleFunc("POST "+IssuePath, h.serveIssue)
	mux.HandleFunc("GET "+CommitmentsPath, h.serveCommitments)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"} {
		mux.HandleFunc(m+" "+CommitmentsPath, serveNotGET)
	}
}

func serveNotGET(w http.ResponseWriter, r *http.Request) {
	writeError(w, nullID, refuse(outcomeHTTPMethodGET, sanitizeToken(r.Method)))
}

var (
	errNoIssuer   = errors.New("rpc: the issuing kind's key set cannot issue")
	errNoBatchKey = errors.New("rpc: an issue batch names no signing key")
)

// issuer returns the Issuer of the key set in force.
func (is *issuance) issuer() (Issuer, error) {
	ks := is.keys()
	if ks == nil {
		return nil, errNoKeys
	}
	iss, ok := ks.(Issuer)
	if !ok {
		return nil, errNoIssuer
	}
	return iss, nil
}

// issued is what one request to POST /api/issue got.
type issued struct {
	attester string // "" until admitted
	keyID    string // the signing key, once parsed
	tokens   int    // signed and counted
	form     bool   // the request was a form: answer with one
	text     string // the signatures
}

// serveIssue answers POST /api/issue. The steps, each refusing before the
// next: attestation (headers only), the body, parsing the issue request,
// the rate of open issuance, signing, the durable count; only then the
// answer. A request refused at any step signs and counts nothing; an
// issuance that cannot be counted is not answered (-32603), and what
// open issuance took from the client's bucket is given back.
func (h *Handler) serveIssue(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	res, err := h.issueTokens(w, r)
	h.observeIssue(r.Context(), res, err, time.Since(start))
	if err != nil {
		writeIssueError(w, err)
		return
	}
	if res.form {
		body := "signatures=" + url.QueryEscape(res.text)
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, body)
		return
	}
	sig, _ := json.Marshal(res.text) // a string always marshals
	writeJSON(w, http.StatusOK, append(append(append([]byte(`{"signatures":`), sig...), '}'), '\n'))
}

func (h *Handler) issueTokens(w http.ResponseWriter, r *http.Request) (issued, error) {
	var res issued
	is := h.issue
	grant, err := is.gate().Admit(r)
	if err != nil {
		return res, attestRefusal(err)
	}
	res.attester = grant.Attester
	var text string
	if res.form, text, err = h.readIssueRequest(r); err != nil {
		return res, err
	}
	iss, err := is.issuer()
	if err != nil {
		return res, err
	}
	batch, err := iss.PrepareIssue(text, is.maxTokens)
	if err != nil {
		return res, err
	}
	if res.keyID = batch.KeyID(); res.keyID == "" {
		return res, errNoBatchKey
	}
	n := batch.Len()
	if err := grant.Take(n); err != nil {
		return res, attestRefusal(err)
	}
	if res.text, err = batch.Sign(); err != nil {
		grant.Refund()
		return res, fmt.Errorf("rpc: signing %d tokens: %w", n, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), is.countTimeout)
	defer cancel()
	if err := is.usage.AddUsage(ctx, UsageSubjectPrefix+res.attester, res.keyID, int64(n)); err != nil {
		grant.Refund()
		res.text = ""
		return res, fmt.Errorf("rpc: counting %d issued tokens: %w", n, err)
	}
	res.tokens = n
	return res, nil
}

// Form and JSON: the two request encodings of verify/PROTOCOL.md §7.1.
const (
	formTokensField = "blinded-tokens"
	jsonTokensField = "bl_sig_req"
)

// readIssueRequest reads the body as the Content-Type says and returns
// the issue request's text, and whether the request is a form.
func (h *Handler) readIssueRequest(r *http.Request) (form bool, text string, err error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case err != nil:
		return false, "", refuse(outcomeContentType, "")
	case mt == "application/x-www-form-urlencoded":
		form = true
	case mt == "application/json":
	default:
		return false, "", refuse(outcomeContentType, "")
	}
	read, err := h.bodies.Read(r, h.maxBody)
	if err != nil {
		return form, "", bodyRefusal(err, h.maxBody)
	}
	defer read.Release()
	body := read.Bytes() // valid until Release: what is returned is copied out
	if form {
		values, err := url.ParseQuery(string(body))
		if err != nil {
			return form, "", refuse(outcomeInvalidRequest, "the body is not a valid application/x-www-form-urlencoded form")
		}
		switch v := values[formTokensField]; len(v) {
		case 0:
			return form, "", refuse(OutcomeBadIssueRequest, "the form has no "+formTokensField+" field")
		case 1:
			return form, v[0], nil
		default:
			return form, "", refuse(OutcomeBadIssueRequest, "the form has more than one "+formTokensField+" field")
		}
	}
	if !json.Valid(body) {
		return form, "", errParse
	}
	// Member names are matched as encoding/json does, like the
	// redemption params: case-insensitively, the last duplicate winning.
	var req struct {
		Text json.RawMessage `json:"bl_sig_req"`
	}
	notObject := refuse(OutcomeBadIssueRequest, "the body must be a JSON object with a "+jsonTokensField+" string")
	if json.Unmarshal(body, &req) != nil || req.Text == nil {
		return form, "", notObject
	}
	if t, ok := jsonString(req.Text); ok {
		return form, t, nil
	}
	return form, "", notObject
}

// jsonString decodes a JSON string literal; null and other values are not
// strings.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// attestRefusal is the row of the error table for a refusal of the Gate.
func attestRefusal(err error) error {
	var limited *attest.RateLimitError
	switch {
	case errors.As(err, &limited) && limited.Never:
		return &Refusal{Outcome: outcomeRateLimited, Err: err,
			Detail: "the request asks for more tokens than one client address may hold at once"}
	case errors.As(err, &limited):
		return &Refusal{Outcome: outcomeRateLimited, Err: err,
			Detail: fmt.Sprintf("this client address has asked for too many tokens; retry in %d s", attest.RetryAfterSeconds(limited.RetryAfter))}
	case errors.Is(err, attest.ErrBadKey):
		return &Refusal{Outcome: outcomeNotAttested, Err: err, Detail: "the attester key is not valid"}
	case errors.Is(err, attest.ErrNoKey):
		return &Refusal{Outcome: outcomeNotAttested, Err: err}
	default:
		return err
	}
}

// writeIssueError answers err with its row of the error table, adding
// the headers its status calls for: WWW-Authenticate with a 401 (RFC 9110
// §11.6.1, RFC 6750 §3) and Retry-After with a 429 that can be retried
// (RFC 6585 §4).
func writeIssueError(w http.ResponseWriter, err error) {
	var limited *attest.RateLimitError
	switch r, _ := classify(err); {
	case r.outcome == outcomeNotAttested && errors.Is(err, attest.ErrBadKey):
		w.Header().Set("WWW-Authenticate", `Bearer realm="ppredeem", error="invalid_token"`)
	case r.outcome == outcomeNotAttested:
		w.Header().Set("WWW-Authenticate", `Bearer realm="ppredeem"`)
	case r.outcome == outcomeRateLimited && errors.As(err, &limited) && !limited.Never:
		w.Header().Set("Retry-After", strconv.FormatInt(attest.RetryAfterSeconds(limited.RetryAfter), 10))
	}
	writeError(w, nullID, err)
}

// IssueOutcomes lists the outcomes a request to POST /api/issue can end
// in, for pre-registering metric labels.
func IssueOutcomes() []Outcome {
	return []Outcome{
		OutcomeSuccess, OutcomeBadIssueRequest, OutcomeBadPoint, OutcomeDuplicatePoint, OutcomeTooManyTokens,
		outcomeNotAttested, outcomeRateLimited, outcomeContentType, outcomeBodyTooLarge, outcomeInvalidRequest,
		outcomeParse, OutcomeInternal,
	}
}

// observeIssue reports one issue request to the observer and the log:
// the outcome, attester, signing key and tokens; never the attester key,
// the request's points or the client address.
func (h *Handler) observeIssue(ctx context.Context, res issued, err error, elapsed time.Duration) {
	r, _ := classify(err)
	if h.issue.observer != nil {
		h.issue.observer.ObserveIssue(r.outcome, res.attester, res.tokens, elapsed)
	}
	level := slog.LevelInfo
	switch r.outcome {
	case OutcomeSuccess:
		level = slog.LevelDebug
	case OutcomeInternal:
		level = slog.LevelError
	}
	if !h.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", RequestID(ctx)),
		slog.String("outcome", string(r.outcome)),
		slog.Duration("elapsed", elapsed),
	}
	if res.attester != "" {
		attrs = append(attrs, slog.String("attester", res.attester))
	}
	if res.keyID != "" {
		attrs = append(attrs, slog.String("key_id", res.keyID))
	}
	if r.outcome == OutcomeSuccess {
		attrs = append(attrs, slog.Int("tokens", res.tokens))
	}
	if err != nil && r.outcome != outcomeNotAttested {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	h.log.LogAttrs(ctx, level, "issuance", attrs...)
}

// serveCommitments answers GET /api/commitments with the commitments of
// the key set in force, signing key first:
//
//	{"<version>":{"G":"<b64>","H":"<b64>","expiry":"<RFC 3339>","version":"<version>"}, ...}
//
// the object the extension finds under its provider's name in the
// commitments file (privacypass/ec-commitments commitments-p256.json;
// challenge-bypass-extension v2.0.6 src/ext/issuance.js
// retrieveCommitments reads config[version]), with G and H standard
// base64 of SEC 1 uncompressed points. The expiry is CommitmentExpiry
// after now, in UTC to the second. There is no "sig": ppredeem holds no
// key to sign commitments with.
func (h *Handler) serveCommitments(w http.ResponseWriter, r *http.Request) {
	iss, err := h.issue.issuer()
	if err != nil {
		loggerFrom(r.Context(), h.log).Error("serving commitments", "err", err)
		writeError(w, nullID, err)
		return
	}
	expiry := h.issue.now().Add(h.issue.expiry).UTC().Truncate(time.Second).Format(time.RFC3339)
	body := []byte{'{'}
	for i, c := range iss.Commitments() {
		if i > 0 {
			body = append(body, ',')
		}
		entry, err := json.Marshal(struct {
			G       string `json:"G"`
			H       string `json:"H"`
			Expiry  string `json:"expiry"`
			Version string `json:"version"`
		}{base64.StdEncoding.EncodeToString(c.G), base64.StdEncoding.EncodeToString(c.H), expiry, c.Version})
		if err != nil {
			writeError(w, nullID, err)
			return
		}
		version, _ := json.Marshal(c.Version) // a string always marshals
		body = append(append(append(body, version...), ':'), entry...)
	}
	writeJSON(w, http.StatusOK, append(body, "}\n"...))
}
