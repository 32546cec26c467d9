package client

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ppredeem/ppredeem/rpc/wire"
)

// Sentinel errors. Every error Redeem returns is an *Error that wraps one or
// more of them; test with errors.Is.
var (
	// ErrBadTag: the tag does not verify under any key of the server
	// (-32020). Definite: nothing was spent.
	ErrBadTag = errors.New("ppredeem client: bad tag")

	// ErrAlreadySpent: the server has the token recorded as spent (-32021).
	// Definite. Redeem never repeats a request that may have reached the
	// server (see the package documentation), so this error never stands
	// for an earlier attempt of the same call.
	ErrAlreadySpent = errors.New("ppredeem client: token already spent")

	// ErrUnsupportedCurve: the server refused the curve settings of data[2]
	// (-32022). Definite: nothing was spent.
	ErrUnsupportedCurve = errors.New("ppredeem client: unsupported curve settings")

	// ErrInvalidParams: the redemption's parameters are malformed (-32602),
	// found either by Redeem before any network use or by the server.
	// Definite: nothing was spent.
	ErrInvalidParams = errors.New("ppredeem client: invalid params")

	// ErrInvalidRequest: the server refused the request itself (-32600,
	// -32601, -32700, -32040, -32041): a wrong endpoint or a bug in this
	// client. Definite: nothing was spent.
	ErrInvalidRequest = errors.New("ppredeem client: request refused by the server")

	// ErrBusy: the server had no room for the request body now (-32050,
	// HTTP 503 with Retry-After): it read nothing and spent nothing.
	// Definite; the redemption may be tried again after a pause.
	ErrBusy = errors.New("ppredeem client: server busy, the token was not spent")

	// ErrInternal: the server answered -32603. It may come after the spend
	// was attempted, so an error that wraps ErrInternal also wraps
	// ErrAmbiguous.
	ErrInternal = errors.New("ppredeem client: server internal error")

	// ErrAmbiguous: the request may have reached the server and the outcome
	// is unknown: the token MAY have been spent. It is never retried.
	ErrAmbiguous = errors.New("ppredeem client: outcome unknown, the token may have been spent")

	// ErrNotSent: no attempt delivered a complete request to the server
	// (connection refused, DNS or TLS failure, a write that failed, or the
	// context ended before the request went out). Definite: the token was
	// not spent, and the redemption may be tried again later.
	ErrNotSent = errors.New("ppredeem client: request not delivered, the token was not spent")
)

// Sentinel errors of issuance (Issue, IssueBatch.Finish, Commitments).
// Issue also returns ErrNotSent (nothing reached the issuer: nothing was
// issued) and ErrAmbiguous (no answer after the request was sent: the
// issuer may have signed and counted the tokens, which are lost either
// way).
var (
	// ErrIssueRefused: the issuer answered the issue request with an
	// error; Code and Message are its JSON-RPC error when it sent one,
	// HTTPStatus its status. Nothing was issued.
	ErrIssueRefused = errors.New("ppredeem client: issue request refused")

	// ErrBadIssueResponse: the issuer's answer is not an issue response
	// for the batch: unreadable, or not one signed point per token. No
	// token is returned.
	ErrBadIssueResponse = errors.New("ppredeem client: unreadable issue response")

	// ErrBadProof: the batch DLEQ proof does not verify under the
	// commitment of the key the answer names. The points may be signed
	// with another key than everyone else's (one that would tell this
	// client's tokens apart): no token is returned.
	ErrBadProof = errors.New("ppredeem client: the issuer's proof does not verify")

	// ErrNoCommitment: no commitment to check the proof with: none of the
	// key version the answer names, it expired, or the commitments could
	// not be fetched or read.
	ErrNoCommitment = errors.New("ppredeem client: no commitment for the issuing key")
)

// Error is the error Redeem, Issue and Commitments return. It wraps the
// sentinel errors that classify it and, for transport failures, the
// underlying error (a *url.Error, a net error, context.Canceled or
// context.DeadlineExceeded...).
//
// Its text never holds a token, a tag, the bindings, a blinding scalar or
// an attester key.
type Error struct {
	// Code is the JSON-RPC error code the server answered (the wire.Code*
	// constants of package rpc/wire), or for a redemption refused before
	// any network use wire.CodeInvalidParams; 0 when no JSON-RPC error was
	// received (transport failures, unreadable answers).
	Code int
	// Message is the server's error message (cut to 256 bytes, control
	// characters replaced by spaces), or this package's description of the
	// failure.
	Message string
	// HTTPStatus is the status of the last HTTP response, 0 if none.
	HTTPStatus int
	// Attempts is the number of HTTP requests made; 0 when the redemption
	// was refused before any network use, and for IssueBatch.Finish.
	Attempts int

	kinds   []error // sentinels
	cause   error   // transport or context error, may be nil
	issuing bool    // an issuance's error: the notes speak of tokens issued
}

// maxMessageBytes bounds Message when it comes from the server.
const maxMessageBytes = 256

// Error formats the error as
// "ppredeem client: <message> (code N, HTTP S, attempts A)[: <cause>]",
// with a note when the outcome is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ppredeem client: ")
	b.WriteString(e.Message)
	b.WriteString(" (")
	sep := ""
	if e.Code != 0 {
		b.WriteString("code ")
		b.WriteString(strconv.Itoa(e.Code))
		sep = ", "
	}
	if e.HTTPStatus != 0 {
		b.WriteString(sep)
		b.WriteString("HTTP ")
		b.WriteString(strconv.Itoa(e.HTTPStatus))
		sep = ", "
	}
	b.WriteString(sep)
	b.WriteString("attempts ")
	b.WriteString(strconv.Itoa(e.Attempts))
	b.WriteString(")")
	switch {
	case e.is(ErrAmbiguous) && e.issuing:
		b.WriteString(": outcome unknown, tokens may have been issued")
	case e.is(ErrAmbiguous):
		b.WriteString(": outcome unknown, the token may have been spent")
	case e.is(ErrNotSent) && e.issuing:
		b.WriteString(": the request was not delivered, nothing was issued")
	case e.is(ErrNotSent):
		b.WriteString(": the request was not delivered, the token was not spent")
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Unwrap returns the sentinels that classify e and, if any, the underlying
// transport or context error, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, len(e.kinds)+1)
	out = append(out, e.kinds...)
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

func (e *Error) is(kind error) bool {
	for _, k := range e.kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// kindsOf maps a JSON-RPC error code to its sentinels. A code outside the
// table leaves the outcome unknown.
func kindsOf(code int) []error {
	switch code {
	case wire.CodeBadTag:
		return []error{ErrBadTag}
	case wire.CodeAlreadySpent:
		return []error{ErrAlreadySpent}
	case wire.CodeUnsupportedCurve:
		return []error{ErrUnsupportedCurve}
	case wire.CodeInvalidParams:
		return []error{ErrInvalidParams}
	case wire.CodeInvalidRequest, wire.CodeMethodNotFound, wire.CodeParse, wire.CodeIssueNotSupported, wire.CodeHTTPMethod:
		return []error{ErrInvalidRequest}
	case wire.CodeBusy:
		return []error{ErrBusy}
	case wire.CodeInternal:
		return []error{ErrInternal, ErrAmbiguous}
	default:
		return []error{ErrAmbiguous}
	}
}

// serverMessage bounds a message received from the server and makes it
// valid UTF-8 without control characters.
func serverMessage(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxMessageBytes {
		cut := maxMessageBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
