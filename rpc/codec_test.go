package rpc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// BenchmarkCodec compares the two ways params reach the redeem method: json2
// decoding the envelope again (ReadRequest through json2) and the raw params
// the envelope decode already split out (what the codec does for redeem).
func BenchmarkCodec(b *testing.B) {
	tok := verifytest.Mint(b, verifytest.Key(), verify.Increment)
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "redeem", "params": tok.Params()})
	if err != nil {
		b.Fatal(err)
	}
	c := newCodec(map[string]func() KeySet{"redeem": nil}, "")
	req := httptest.NewRequest("POST", RedeemPath, nil)
	b.Run("raw-params", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cr := c.newRequest(req, body)
			var args RedeemArgs
			if err := cr.ReadRequest(&args); err != nil || len(args.raw) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("json2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cr := c.newRequest(req, body)
			inner := new(http.Request)
			*inner = *req
			inner.Body = bodyBytes{bytes.NewReader(body), body}
			var args RedeemArgs
			if err := c.inner.NewRequest(inner).ReadRequest(&args); err != nil || cr.err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestMethodList(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  string
	}{
		{[]string{"redeem", "rpc.discover"}, "the methods are redeem and rpc.discover"},
		{[]string{"redeem", "redeem_pass", "rpc.discover"}, "the methods are redeem, redeem_pass and rpc.discover"},
	} {
		if got := methodList(c.names); got != c.want {
			t.Errorf("methodList(%q) = %q, want %q", c.names, got, c.want)
		}
	}
}
