package rpc

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ppredeem/ppredeem/rpc/httpbody"
)

// retryAfter is the Retry-After of every 503, in seconds.
var retryAfter = strconv.Itoa(int(httpbody.RetryAfter.Seconds()))

// bodyRefusal is the refusal for an error of httpbody.Budget.Read: no room
// (busy), a body over max (body too large), or a body that could not be
// read (invalid request). Endpoints on the main listener that read a body
// with the listener's Budget answer its errors through this function.
func bodyRefusal(err error, max int64) *Refusal {
	var tooBig *httpbody.TooLargeError
	switch {
	case errors.Is(err, httpbody.ErrBusy):
		return &Refusal{Outcome: outcomeBusy, Err: err}
	case errors.As(err, &tooBig):
		return &Refusal{Outcome: outcomeBodyTooLarge, Err: err,
			Detail: fmt.Sprintf("the request body is larger than the limit of %d bytes", max)}
	default:
		return &Refusal{Outcome: outcomeInvalidRequest, Err: err, Detail: "could not read the request body"}
	}
}
