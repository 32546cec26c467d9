package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	gorpc "github.com/gorilla/rpc/v2"
	"github.com/gorilla/rpc/v2/json2"
)

// codec wraps gorilla's json2 codec for three things json2 cannot do
// (gorilla/rpc v2 json2/server.go):
//
//   - plain method names: json2 dispatches "Service.Method", the protocol
//     calls its methods "redeem" (one per token kind, see Kind) and
//     "rpc.discover";
//   - strict envelopes: json2 runs notifications (no id) and answers them
//     with an empty 200, and accepts any id type; here a request without a
//     string or number id is -32600 and reaches no method;
//   - the error table: json2 answers every error with the status gorilla
//     picked and puts Go error text (and the raw request) in the body; here
//     every answer goes through the error table (classify).
//
// Params decoding is json2's, except on the hot path: json2 decodes the
// whole envelope a second time (BenchmarkCodec: 10.8 µs and 40 allocations
// per request through json2, 3.7 µs and 15 without), so redeem's params,
// already split out by the envelope decode, are handed over as they are;
// every other method's params still go through json2.
type codec struct {
	inner *json2.Codec
	kinds map[string]func() KeySet // the redemption methods
	// methods completes the -32601 message: "the methods are ...".
	methods string
}

func newCodec(kinds map[string]func() KeySet, methods string) *codec {
	return &codec{inner: json2.NewCodec(), kinds: kinds, methods: methods}
}

// methodList is the detail of the -32601 message for the given method
// names: "the methods are redeem and rpc.discover".
func methodList(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return "the only method is " + names[0]
	}
	return "the methods are " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// envelope is the JSON-RPC 2.0 request object. RawMessage fields tell a
// missing member (nil) from an explicit null ("null").
type envelope struct {
	Version json.RawMessage `json:"jsonrpc"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

// The protocol's fixed method names, and the gorilla services behind all
// method names.
const (
	methodDiscover  = "rpc.discover"
	methodIssue     = "issue"
	gorillaRedeem   = "Redeem.Redeem"
	gorillaDiscover = "Discover.Discover"
)

var nullID = []byte("null")

// codecRequest is one request as the wrapper sees it.
type codecRequest struct {
	codec  *codec
	r      *http.Request
	body   []byte
	params json.RawMessage
	id     []byte // echoed verbatim: a JSON string or number, or null
	method string
	err    error
}

// bodyBytes is the request body the handler has already read (and bounded);
// the codec takes its bytes instead of copying them out of a reader.
type bodyBytes struct {
	*bytes.Reader
	b []byte
}

func (bodyBytes) Close() error { return nil }

// NewRequest reads the whole body (the handler has bounded it already) and
// checks the envelope.
func (c *codec) NewRequest(r *http.Request) gorpc.CodecRequest {
	if bb, ok := r.Body.(bodyBytes); ok {
		return c.newRequest(r, bb.b)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return &codecRequest{id: nullID, err: refuse(outcomeInvalidRequest, "could not read the request body")}
	}
	return c.newRequest(r, body)
}

func (c *codec) newRequest(r *http.Request, body []byte) *codecRequest {
	req := &codecRequest{codec: c, r: r, body: body, id: nullID}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			req.err = refuse(outcomeInvalidRequest, "the request must be a JSON object")
		} else {
			req.err = errParse
		}
		return req
	}
	if validID(env.ID) {
		req.id = env.ID
	}
	switch {
	case string(env.Version) != `"2.0"`:
		req.err = refuse(outcomeInvalidRequest, `jsonrpc must be "2.0"`)
	case env.ID == nil:
		req.err = refuse(outcomeInvalidRequest, "notifications are not supported: the request needs an id")
	case !validID(env.ID):
		req.err = refuse(outcomeInvalidRequest, "id must be a string or a number")
	case len(env.Method) == 0 || env.Method[0] != '"':
		req.err = refuse(outcomeInvalidRequest, "method must be a string")
	default:
		if err := json.Unmarshal(env.Method, &req.method); err != nil {
			req.err = refuse(outcomeInvalidRequest, "method must be a string")
		}
	}
	req.params = env.Params
	return req
}

// validID reports whether raw is a JSON string or number (JSON-RPC 2.0
// allows null too, but a null id is how notifications hide; we refuse it).
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"':
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		return true
	}
	return false
}

// Method maps the protocol's method names onto gorilla's services: every
// token kind's method onto the one redeem service.
func (c *codecRequest) Method() (string, error) {
	if c.err != nil {
		return "", c.err
	}
	if _, ok := c.codec.kinds[c.method]; ok {
		return gorillaRedeem, nil
	}
	switch c.method {
	case methodDiscover:
		return gorillaDiscover, nil
	case methodIssue:
		return "", errIssue
	default:
		return "", refuse(outcomeMethodNotFound, c.codec.methods)
	}
}

// ReadRequest fills args. Redeem's params go over as raw JSON (the hot
// path, see codec); other methods' params are decoded by json2, whose
// errors carry Go error text and request data and so are replaced by a
// fixed -32602.
func (c *codecRequest) ReadRequest(args any) error {
	if c.err != nil {
		return c.err
	}
	if ra, ok := args.(*RedeemArgs); ok {
		ra.raw, ra.method = c.params, c.method
		return nil
	}
	inner := new(http.Request)
	*inner = *c.r
	inner.Body = io.NopCloser(bytes.NewReader(c.body))
	if err := c.codec.inner.NewRequest(inner).ReadRequest(args); err != nil {
		return errParamsNotObject
	}
	return nil
}

// errParamsNotObject answers params that json2 could not hand over.
var errParamsNotObject = refuse(OutcomeBadParams, "params must be an object")

// WriteResponse writes a success: HTTP 200 and the JSON-RPC result.
func (c *codecRequest) WriteResponse(w http.ResponseWriter, reply any) {
	result, err := json.Marshal(reply)
	if err != nil {
		c.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	writeResult(w, c.id, result)
}

// WriteError ignores the status gorilla chose: the error table decides.
func (c *codecRequest) WriteError(w http.ResponseWriter, _ int, err error) {
	writeError(w, c.id, err)
}
