package rpc

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/spend"
)

// Outcome names one row of the error table: how a request ended, as the
// metrics and logs label it.
type Outcome string

// The outcomes a redemption can end in (the labels of
// ppredeem_redemptions_total).
const (
	OutcomeSuccess          Outcome = "success"
	OutcomeAlreadySpent     Outcome = "already_spent"
	OutcomeBadTag           Outcome = "bad_tag"
	OutcomeBadParams        Outcome = "bad_params"
	OutcomeUnsupportedCurve Outcome = "unsupported_curve"
	OutcomeInternal         Outcome = "internal"
)

// The outcomes of the JSON-RPC layer: requests refused before any
// redemption method runs. They are never observed as redemptions.
const (
	outcomeIssue          Outcome = "issue_requested"
	outcomeHTTPMethod     Outcome = "http_method"
	outcomeInvalidRequest Outcome = "invalid_request"
	outcomeNoSuchEndpoint Outcome = "no_such_endpoint"
	outcomeBodyTooLarge   Outcome = "body_too_large"
	outcomeBusy           Outcome = "busy"
	outcomeMethodNotFound Outcome = "method_not_found"
	outcomeParse          Outcome = "parse_error"
)

// The outcomes of POST /api/issue (rpc/issue.go) that a token kind's
// Issuer reports, with verify/PROTOCOL.md §7.1's rules. They label
// ppredeem_issue_requests_total with the other outcomes of IssueOutcomes.
const (
	OutcomeBadIssueRequest Outcome = "bad_issue_request"
	OutcomeBadPoint        Outcome = "bad_point"
	OutcomeDuplicatePoint  Outcome = "duplicate_point"
	OutcomeTooManyTokens   Outcome = "too_many_tokens"
)

// The outcomes of the issuance endpoints' own refusals.
const (
	outcomeNotAttested   Outcome = "not_attested"
	outcomeRateLimited   Outcome = "rate_limited"
	outcomeContentType   Outcome = "unsupported_media_type"
	outcomeHTTPMethodGET Outcome = "http_method_get"
)

// row is one row of the error table: everything an outcome puts on the
// wire, and its metric label.
type row struct {
	outcome Outcome
	// redemption is true for the outcomes a redemption method can end in.
	redemption bool
	code       int // JSON-RPC error code; 0 for success
	status     int // HTTP status
	// message is sent when the refusal carries no detail; withDetail, a
	// format with one %s, when it does (rows without it ignore details).
	message, withDetail string
}

// table is the error table (verify/PROTOCOL.md §2, README "Errors"), one
// row per outcome. It is the only place that pairs an outcome with a code,
// a status and a message; classify is the only place that picks a row.
var table = [...]row{
	{OutcomeSuccess, true, 0, http.StatusOK, "", ""},
	{OutcomeAlreadySpent, true, wire.CodeAlreadySpent, http.StatusForbidden,
		"Redemption for token that has already been spent", ""},
	{OutcomeBadTag, true, wire.CodeBadTag, http.StatusForbidden,
		"Redemption failed: the tag does not verify under any configured key", ""},
	{OutcomeBadParams, true, wire.CodeInvalidParams, http.StatusBadRequest,
		"Invalid params", "Invalid params: %s"},
	{OutcomeUnsupportedCurve, true, wire.CodeUnsupportedCurve, http.StatusBadRequest,
		"Unsupported curve settings: only p256 with sha256 and method increment or swu", ""},
	{OutcomeInternal, true, wire.CodeInternal, http.StatusInternalServerError,
		"Internal error", ""},

	{OutcomeBadIssueRequest, false, wire.CodeBadIssueRequest, http.StatusBadRequest,
		"Invalid issue request", "Invalid issue request: %s"},
	{OutcomeBadPoint, false, wire.CodeBadPoint, http.StatusBadRequest,
		"Invalid blinded point", "Invalid blinded point: %s"},
	{OutcomeDuplicatePoint, false, wire.CodeDuplicatePoint, http.StatusBadRequest,
		"Duplicate blinded point", "Duplicate blinded point: %s"},
	{OutcomeTooManyTokens, false, wire.CodeTooManyTokens, http.StatusBadRequest,
		"Too many tokens in one issue request", "Too many tokens in one issue request: %s"},
	{outcomeNotAttested, false, wire.CodeNotAttested, http.StatusUnauthorized,
		"Not attested: an attester key is required (Authorization: Bearer <key>)", "Not attested: %s"},
	{outcomeRateLimited, false, wire.CodeRateLimited, http.StatusTooManyRequests,
		"Rate limited: this client address has asked for too many tokens; retry later", "Rate limited: %s"},
	{outcomeContentType, false, wire.CodeInvalidRequest, http.StatusUnsupportedMediaType,
		"Invalid request: the Content-Type must be application/json or application/x-www-form-urlencoded", ""},
	{outcomeHTTPMethodGET, false, wire.CodeHTTPMethod, http.StatusMethodNotAllowed,
		"HTTP method not allowed: use GET", "HTTP method %s is not allowed: use GET"},

	{outcomeIssue, false, wire.CodeIssueNotSupported, http.StatusBadRequest,
		"Issuance is not a JSON-RPC method: POST the issue request to " + wire.IssuePath, ""},
	{outcomeHTTPMethod, false, wire.CodeHTTPMethod, http.StatusMethodNotAllowed,
		"HTTP method not allowed: use POST", "HTTP method %s is not allowed: use POST"},
	{outcomeInvalidRequest, false, wire.CodeInvalidRequest, http.StatusBadRequest,
		"Invalid request", "Invalid request: %s"},
	{outcomeNoSuchEndpoint, false, wire.CodeInvalidRequest, http.StatusNotFound,
		"Invalid request: no such endpoint: POST to " + wire.RedeemPath, ""},
	{outcomeBodyTooLarge, false, wire.CodeInvalidRequest, http.StatusRequestEntityTooLarge,
		"Invalid request: the request body is too large", "Invalid request: %s"},
	{outcomeBusy, false, wire.CodeBusy, http.StatusServiceUnavailable,
		"Server busy: no room for the request body now; nothing was read or spent; retry after the Retry-After delay", ""},
	{outcomeMethodNotFound, false, wire.CodeMethodNotFound, http.StatusBadRequest,
		"Method not found", "Method not found: %s"},
	{outcomeParse, false, wire.CodeParse, http.StatusBadRequest,
		"Parse error: the request body is not JSON", ""},
}

// Outcomes lists the outcomes a redemption can end in, for pre-registering
// metric labels.
func Outcomes() []Outcome {
	var out []Outcome
	for _, r := range table {
		if r.redemption {
			out = append(out, r.outcome)
		}
	}
	return out
}

func lookup(o Outcome) *row {
	for i := range table {
		if table[i].outcome == o {
			return &table[i]
		}
	}
	return nil
}

var rowSuccess, rowAlreadySpent, rowInternal = lookup(OutcomeSuccess), lookup(OutcomeAlreadySpent), lookup(OutcomeInternal)

// Refusal is a request refused for what it holds: the outcome (a row of
// the error table) it answers with and a detail for the message. Token
// kinds return one from KeySet.Verify (with OutcomeBadTag,
// OutcomeBadParams or OutcomeUnsupportedCurve); the JSON-RPC layer uses it
// for its own refusals.
type Refusal struct {
	Outcome Outcome
	// Detail completes the row's message where the row takes one (bad
	// params: "Invalid params: " + Detail). It is sent to the client, so it
	// must be fixed text written by the program, never request data, key
	// material or Go error text. Empty means the row's plain message.
	Detail string
	// Err is the cause, for errors.Is and the log; never sent.
	Err error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	if r.Detail != "" {
		return "rpc: " + string(r.Outcome) + ": " + r.Detail
	}
	return "rpc: " + string(r.Outcome)
}

func (r *Refusal) Unwrap() error { return r.Err }

// refuse is a refusal of the JSON-RPC layer.
func refuse(o Outcome, detail string) *Refusal { return &Refusal{Outcome: o, Detail: detail} }

// The JSON-RPC layer's fixed refusals.
var (
	errParse = refuse(outcomeParse, "")
	errIssue = refuse(outcomeIssue, "")
)

// classify finds the row of err, in this one order: nil is success; a
// spend the store reports as done before is already_spent; a Refusal is
// its outcome's row (a redemption outcome or one of the JSON-RPC layer);
// anything else (database trouble, bugs, a Refusal naming no refusal row)
// is internal, and its text may hold internals, so it is logged by the
// caller, never sent. It returns the row and the message to send.
func classify(err error) (*row, string) {
	var ref *Refusal
	switch {
	case err == nil:
		return rowSuccess, ""
	case errors.Is(err, spend.ErrAlreadySpent):
		return rowAlreadySpent, rowAlreadySpent.message
	case errors.As(err, &ref):
		r := lookup(ref.Outcome)
		if r == nil || r.code == 0 {
			return rowInternal, rowInternal.message
		}
		if ref.Detail != "" && r.withDetail != "" {
			return r, fmt.Sprintf(r.withDetail, ref.Detail)
		}
		return r, r.message
	default:
		return rowInternal, rowInternal.message
	}
}

// sanitizeToken keeps an HTTP method name printable and short before it is
// echoed: net/http already restricts methods to token characters, this is
// belt and braces.
func sanitizeToken(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	b := []byte(s)
	for i, c := range b {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}
