package loadgen

import "github.com/valyala/fastjson"

// Outcome codes besides JSON-RPC error codes (which are negative).
const (
	codeSuccess   = 1
	codeTransport = 2
)

// parseOutcome decodes a JSON-RPC 2.0 answer
// (https://www.jsonrpc.org/specification#response_object) with p, which is
// reused from one answer to the next: codeSuccess for "result":"success",
// the error's code otherwise. ok is false (a transport failure) unless the
// body is valid JSON holding an object with "jsonrpc":"2.0" and exactly one
// of "result" and "error", the latter with an integer "code". The id is not
// compared with the request's: the server answers null to a request it
// cannot parse, and that answer must count as its error code.
func parseOutcome(p *fastjson.Parser, b []byte) (code int, ok bool) {
	v, err := p.ParseBytes(b)
	if err != nil || string(v.GetStringBytes("jsonrpc")) != "2.0" {
		return 0, false
	}
	result, rpcErr := v.Get("result"), v.Get("error")
	switch {
	case result != nil && rpcErr == nil:
		if s, err := result.StringBytes(); err == nil && string(s) == "success" {
			return codeSuccess, true
		}
	case rpcErr != nil && result == nil:
		if v := rpcErr.Get("code"); v != nil {
			if c, err := v.Int(); err == nil && c != codeSuccess && c != codeTransport { // cannot collide with our markers
				return c, true
			}
		}
	}
	return 0, false
}
