package rpc

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
)

// The JSON-RPC error codes ppredeem answers with (PROTOCOL.md §2). They are
// part of the wire contract; rpc/client mirrors them.
const (
	CodeBadTag             = -32020
	CodeAlreadySpent       = -32021
	CodeUnsupportedCurve   = -32022
	CodeIssueNotSupported  = -32040
	CodeHTTPMethod         = -32041
	CodeInvalidRequest     = -32600
	CodeMethodNotFound     = -32601
	CodeInvalidParams      = -32602
	CodeInternal           = -32603
	CodeParse              = -32700
	msgAlreadySpent        = "Redemption for token that has already been spent"
	msgInternal            = "Internal error"
	msgBadTag              = "Redemption failed: the tag does not verify under any configured key"
	msgUnsupportedCurve    = "Unsupported curve settings: only p256 with sha256 and method increment or swu"
	msgIssueNotSupported   = "Issuance is not supported: this server only redeems"
	msgMethodNotFound      = "Method not found: the only method is redeem"
	msgParse               = "Parse error: the request body is not JSON"
	msgHTTPMethodTemplate  = "HTTP method %s is not allowed: use POST"
	msgInvalidRequestStart = "Invalid request: "
)

// Errors of the JSON-RPC layer itself. The protocol's own errors come from
// verify and spend; wireError maps both.
var (
	errParse          = errors.New("rpc: body is not JSON")
	errMethodNotFound = errors.New("rpc: method not found")
	errIssue          = errors.New("rpc: issuance requested")
)

// invalidRequestError is a -32600 whose reason is a fixed string written by
// this package, never request data.
type invalidRequestError struct {
	reason string
	status int // 0 means 400
}

func (e *invalidRequestError) Error() string { return "rpc: invalid request: " + e.reason }

// httpMethodError is the -32041 answer to anything but POST.
type httpMethodError struct{ method string }

func (e *httpMethodError) Error() string { return "rpc: HTTP method " + e.method }

// wireErr is one error as it goes on the wire.
type wireErr struct {
	code    int
	status  int
	message string
}

// wireError is the one place that turns an error into a JSON-RPC code, an
// HTTP status and a message. Errors it does not know (database trouble, bugs)
// become -32603 with a generic message: their text may hold internals, so it
// is logged by the caller, never sent.
func wireError(err error) wireErr {
	var (
		params *verify.ParamsError
		inv    *invalidRequestError
		meth   *httpMethodError
	)
	switch {
	case errors.Is(err, verify.ErrBadTag):
		return wireErr{CodeBadTag, http.StatusForbidden, msgBadTag}
	case errors.Is(err, spend.ErrAlreadySpent):
		return wireErr{CodeAlreadySpent, http.StatusForbidden, msgAlreadySpent}
	case errors.Is(err, verify.ErrUnsupportedCurve):
		return wireErr{CodeUnsupportedCurve, http.StatusBadRequest, msgUnsupportedCurve}
	case errors.As(err, &params):
		return wireErr{CodeInvalidParams, http.StatusBadRequest, "Invalid params: " + params.Reason}
	case errors.Is(err, verify.ErrBadParams):
		return wireErr{CodeInvalidParams, http.StatusBadRequest, "Invalid params"}
	case errors.Is(err, errIssue):
		return wireErr{CodeIssueNotSupported, http.StatusBadRequest, msgIssueNotSupported}
	case errors.As(err, &meth):
		return wireErr{CodeHTTPMethod, http.StatusMethodNotAllowed, fmt.Sprintf(msgHTTPMethodTemplate, sanitizeToken(meth.method))}
	case errors.As(err, &inv):
		status := inv.status
		if status == 0 {
			status = http.StatusBadRequest
		}
		return wireErr{CodeInvalidRequest, status, msgInvalidRequestStart + inv.reason}
	case errors.Is(err, errMethodNotFound):
		return wireErr{CodeMethodNotFound, http.StatusBadRequest, msgMethodNotFound}
	case errors.Is(err, errParse):
		return wireErr{CodeParse, http.StatusBadRequest, msgParse}
	default:
		return wireErr{CodeInternal, http.StatusInternalServerError, msgInternal}
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
