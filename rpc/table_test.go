package rpc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/wire"
	"github.com/ppredeem/ppredeem/spend"
)

func TestErrorTable(t *testing.T) {
	cases := []struct {
		err     error
		code    int
		status  int
		message string
	}{
		{nil, 0, 200, ""},
		{&Refusal{Outcome: OutcomeBadTag, Err: errors.New("tag does not verify")}, -32020, 403,
			"Redemption failed: the tag does not verify under any configured key"},
		{fmt.Errorf("wrapped: %w", spend.ErrAlreadySpent), -32021, 403, "Redemption for token that has already been spent"},
		{&Refusal{Outcome: OutcomeUnsupportedCurve}, -32022, 400,
			"Unsupported curve settings: only p256 with sha256 and method increment or swu"},
		{errIssue, -32040, 400, "Issuance is not a JSON-RPC method: POST the issue request to /api/issue"},
		{&Refusal{Outcome: OutcomeBadIssueRequest, Detail: "not canonical standard base64"}, -32030, 400,
			"Invalid issue request: not canonical standard base64"},
		{&Refusal{Outcome: OutcomeBadPoint, Detail: "not a point on P-256 (contents[3])"}, -32031, 400,
			"Invalid blinded point: not a point on P-256 (contents[3])"},
		{&Refusal{Outcome: OutcomeDuplicatePoint}, -32032, 400, "Duplicate blinded point"},
		{&Refusal{Outcome: OutcomeTooManyTokens, Detail: "at most 100 points"}, -32033, 400,
			"Too many tokens in one issue request: at most 100 points"},
		{refuse(outcomeNotAttested, ""), -32034, 401, "Not attested: an attester key is required (Authorization: Bearer <key>)"},
		{refuse(outcomeRateLimited, ""), -32035, 429, "Rate limited: this client address has asked for too many tokens; retry later"},
		{refuse(outcomeContentType, "ignored"), -32600, 415,
			"Invalid request: the Content-Type must be application/json or application/x-www-form-urlencoded"},
		{refuse(outcomeHTTPMethodGET, "POST"), -32041, 405, "HTTP method POST is not allowed: use GET"},
		{refuse(outcomeHTTPMethod, "GET"), -32041, 405, "HTTP method GET is not allowed: use POST"},
		{refuse(outcomeInvalidRequest, "x"), -32600, 400, "Invalid request: x"},
		{refuse(outcomeNoSuchEndpoint, ""), -32600, 404, "Invalid request: no such endpoint: POST to /api/redeem"},
		{refuse(outcomeBodyTooLarge, "the request body is larger than the limit of 7 bytes"), -32600, 413,
			"Invalid request: the request body is larger than the limit of 7 bytes"},
		{refuse(outcomeBusy, ""), -32050, 503,
			"Server busy: no room for the request body now; nothing was read or spent; retry after the Retry-After delay"},
		{refuse(outcomeMethodNotFound, "the methods are redeem and rpc.discover"), -32601, 400,
			"Method not found: the methods are redeem and rpc.discover"},
		{&Refusal{Outcome: OutcomeBadParams, Detail: "tag must be 32 bytes"}, -32602, 400, "Invalid params: tag must be 32 bytes"},
		{&Refusal{Outcome: OutcomeBadParams}, -32602, 400, "Invalid params"},
		{spend.ErrUnknownKey, -32603, 500, "Internal error"},
		{fmt.Errorf("pgx: SELECT secret FROM x: %w", context.DeadlineExceeded), -32603, 500, "Internal error"},
		{&Refusal{Outcome: "no such outcome", Detail: "secret"}, -32603, 500, "Internal error"},
		{&Refusal{Outcome: OutcomeSuccess}, -32603, 500, "Internal error"},
		{errParse, -32700, 400, "Parse error: the request body is not JSON"},
	}
	for _, c := range cases {
		r, msg := classify(c.err)
		if r.code != c.code || r.status != c.status || msg != c.message {
			t.Errorf("%v: got %d/%d %q, want %d/%d %q", c.err, r.code, r.status, msg, c.code, c.status, c.message)
		}
	}
}

// TestTableRows: every outcome is one row, every code of the wire contract
// has a row, and only the redemption outcomes label redemptions.
func TestTableRows(t *testing.T) {
	seen := map[Outcome]bool{}
	codes := map[int]bool{}
	for _, r := range table {
		if seen[r.outcome] {
			t.Errorf("outcome %s has two rows", r.outcome)
		}
		seen[r.outcome] = true
		codes[r.code] = true
		if r.message == "" && r.code != 0 {
			t.Errorf("row %s has no message", r.outcome)
		}
	}
	for _, code := range []int{wire.CodeBadTag, wire.CodeAlreadySpent, wire.CodeUnsupportedCurve, wire.CodeIssueNotSupported,
		wire.CodeHTTPMethod, wire.CodeBusy, wire.CodeInvalidRequest, wire.CodeMethodNotFound, wire.CodeInvalidParams, wire.CodeInternal, wire.CodeParse,
		wire.CodeBadIssueRequest, wire.CodeBadPoint, wire.CodeDuplicatePoint, wire.CodeTooManyTokens, wire.CodeNotAttested, wire.CodeRateLimited} {
		if !codes[code] {
			t.Errorf("code %d has no row", code)
		}
	}
	got := fmt.Sprint(Outcomes())
	if want := "[success already_spent bad_tag bad_params unsupported_curve internal]"; got != want {
		t.Errorf("Outcomes() = %s, want %s", got, want)
	}
}

func TestRefusalUnwraps(t *testing.T) {
	cause := errors.New("cause")
	r := &Refusal{Outcome: OutcomeBadTag, Err: cause}
	if !errors.Is(r, cause) || r.Error() != "cause" {
		t.Errorf("Refusal hides its cause: %v", r)
	}
	if got := refuse(outcomeInvalidRequest, "empty batch").Error(); got != "rpc: invalid_request: empty batch" {
		t.Errorf("Error() = %q", got)
	}
}

func TestCanonicalPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/api/redeem": true, "/api/redeem/": true, "/healthz": true,
		"": false, "api/redeem": false, "//": false, "/api//redeem": false, "/api/redeem//": false,
		"/api/./redeem": false, "/x/../api/redeem": false, "/api/redeem/.": false,
	} {
		if got := canonicalPath(p); got != want {
			t.Errorf("canonicalPath(%q) = %v, want %v", p, got, want)
		}
	}
}
