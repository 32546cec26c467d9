package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ppredeem/ppredeem/rpc/gateway/passclient"
)

// Titles of the answers the gateway gives on its own. They are a contract:
// platforms match on them. Upstream errors keep the provider's titles.
const (
	// 400: refused before any upstream call.
	TitleUnsupportedContentType = "Unsupported content type"
	TitleBodyTooLarge           = "Request body too large"
	TitleMalformedBody          = "Malformed request body"
	TitleMissingClaimType       = "Missing claim type"
	TitleMissingPass            = "Missing Privacy Pass"
	TitleInvalidPass            = "Invalid Privacy Pass"
	TitleMissingRelaySecret     = "Missing relay secret"
	TitleInvalidRelaySecret     = "Invalid relay secret"
	TitleInvalidRelayToken      = "Invalid relay token"
	// 401: no usable bearer key, refused before any upstream call.
	TitleUnauthorized = "Unauthorized"
	// 404 and 405: no such endpoint, or not with this HTTP method.
	TitleNotFound         = "Not found"
	TitleMethodNotAllowed = "Method not allowed"
	// 500: a fault of the gateway itself (details never say more).
	TitleInternal = "Internal error"
	// 503: no room for the request body in the listener's memory budget
	// now; nothing was read. Retry-After says when to try again.
	TitleServiceUnavailable = "Service unavailable"
	// 502: the upstream could not be reached, or answered something the
	// provider API never answers.
	TitleNetworkError = "Network error"
	TitleBadGateway   = "Bad gateway"
	// 502: issuance refused what the upstream sent (passclient's checks).
	TitleTokenKeyMismatch      = "Token key mismatch"
	TitleInvalidTokenKey       = "Invalid token key"
	TitleInvalidChallenge      = "Invalid challenge"
	TitleInvalidBlindSignature = "Invalid blind signature"
	// 504: gateway_request_timeout passed, retries included.
	TitleTimeout = "Request timed out"
	// 499: the platform closed the connection first. Nobody reads this
	// answer; it names the outcome in logs and metrics.
	TitleCanceled = "Request canceled"
)

// statusClientClosed is the status logged for a request whose client left
// (nginx's convention; net/http writes any three-digit status).
const statusClientClosed = 499

// refusal is an answer the gateway gives on its own. Its details are fixed
// text written in this package, never request data.
type refusal struct {
	status  int
	title   string
	details string
}

func (r *refusal) Error() string { return "gateway: " + r.title + ": " + r.details }

func refuse(status int, title, details string) *refusal {
	return &refusal{status: status, title: title, details: details}
}

// errBusy refuses a body the listener's body budget has no room for.
var errBusy = refuse(http.StatusServiceUnavailable, TitleServiceUnavailable,
	"no room for the request body now; nothing was read; retry after the Retry-After delay")

// upstreamError is a non-2xx answer of the provider, after retries.
type upstreamError struct {
	call   string
	status int
	body   []byte // the answer's body, at most maxUpstreamBody bytes
	shaped bool   // the body is in the errors shape
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("gateway: upstream %s answered HTTP %d", e.call, e.status)
}

// networkError is a failed exchange with the upstream (no answer, or the
// answer cut short). cause holds no URL: it may name a relay token.
type networkError struct {
	call  string
	cause error
}

func (e *networkError) Error() string {
	return fmt.Sprintf("gateway: upstream %s: %v", e.call, e.cause)
}

func (e *networkError) Unwrap() error { return e.cause }

// badUpstreamError is an answer the provider API never gives: a 2xx body
// without the members it must have, a redirect, a body over the limit.
type badUpstreamError struct {
	call   string
	reason string // fixed text, never upstream data
}

func (e *badUpstreamError) Error() string {
	return fmt.Sprintf("gateway: upstream %s: %s", e.call, e.reason)
}

var (
	errTimeout  = errors.New("gateway: request timed out")
	errCanceled = errors.New("gateway: request canceled by the client")
)

// answer is the one place that turns an error into the gateway's HTTP
// answer: a status, a title (for logs and metrics) and a body in the
// errors shape. An upstream error in the errors shape passes through with
// its status and its body byte for byte; any other upstream answer becomes
// 502 "Bad gateway" without upstream text. Errors this function does not
// know become 500 "Internal error": their text is logged, never sent.
func answer(err error) (status int, title string, body []byte) {
	var (
		ref  *refusal
		up   *upstreamError
		nerr *networkError
		bad  *badUpstreamError
	)
	switch {
	case errors.As(err, &ref):
		return ref.status, ref.title, errorsBody(ref.title, ref.details)
	case errors.As(err, &up) && up.shaped:
		return up.status, firstTitle(up.body), up.body
	case errors.As(err, &up):
		return gatewayError(http.StatusBadGateway, TitleBadGateway,
			fmt.Sprintf("the provider answered HTTP %d without an errors body", up.status))
	case errors.Is(err, errTimeout):
		return gatewayError(http.StatusGatewayTimeout, TitleTimeout, "the provider did not answer in time")
	case errors.Is(err, errCanceled):
		return gatewayError(statusClientClosed, TitleCanceled, "the client closed the connection")
	case errors.As(err, &nerr):
		return gatewayError(http.StatusBadGateway, TitleNetworkError, "the provider could not be reached")
	case errors.As(err, &bad):
		return gatewayError(http.StatusBadGateway, TitleBadGateway, "the provider's answer is not one the provider API gives")
	case errors.Is(err, passclient.ErrKeyIDMismatch):
		return gatewayError(http.StatusBadGateway, TitleTokenKeyMismatch, "the provider's token-key-id is not the SHA-256 of its token-key")
	case errors.Is(err, passclient.ErrTokenKey):
		return gatewayError(http.StatusBadGateway, TitleInvalidTokenKey, "the provider's token-key is not an RSA key of 2048 or 4096 bits")
	case errors.Is(err, passclient.ErrChallenge):
		return gatewayError(http.StatusBadGateway, TitleInvalidChallenge, "the provider's challenge is not a token type 2 challenge")
	case errors.Is(err, passclient.ErrSignature):
		return gatewayError(http.StatusBadGateway, TitleInvalidBlindSignature, "the provider's blind signature does not verify")
	default:
		return gatewayError(http.StatusInternalServerError, TitleInternal, "")
	}
}

func gatewayError(status int, title, details string) (int, string, []byte) {
	return status, title, errorsBody(title, details)
}

type errorItem struct {
	Title   string `json:"title"`
	Details string `json:"details,omitempty"`
}

type errorsDoc struct {
	Errors []errorItem `json:"errors"`
}

func errorsBody(title, details string) []byte {
	return marshal(errorsDoc{Errors: []errorItem{{Title: title, Details: details}}})
}

// isErrorsShape reports whether body is {"errors":[{"title":"…",…},…]}
// with at least one error, every title a string, and every details (when
// present) a string.
func isErrorsShape(body []byte) bool {
	var top map[string]json.RawMessage
	var errs []map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || json.Unmarshal(top["errors"], &errs) != nil || len(errs) == 0 {
		return false
	}
	for _, e := range errs {
		var s string
		if e == nil || json.Unmarshal(e["title"], &s) != nil {
			return false
		}
		if d, ok := e["details"]; ok && json.Unmarshal(d, &s) != nil {
			return false
		}
	}
	return true
}

// firstTitle is the first title of an errors-shaped body, for logs and
// metrics; titles are stable short texts without secrets. It is bounded so
// that a provider's long title cannot flood the log.
func firstTitle(body []byte) string {
	var doc struct {
		Errors []struct {
			Title string `json:"title"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) != nil || len(doc.Errors) == 0 {
		return ""
	}
	t := doc.Errors[0].Title
	if len(t) > 64 {
		t = t[:64]
	}
	return t
}
