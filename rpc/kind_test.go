package rpc_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// macKind is a second kind of token, for this test only, shaped like the
// Blind RSA passes: params {"nonce":"<hex>","mac":"<hex>"}, valid when mac
// is HMAC-SHA256(secret, nonce), spent as SHA-256 of the nonce under one
// key ID.
type macKind struct {
	id     string
	secret []byte
}

func (k macKind) KeyIDs() []string { return []string{k.id} }

var macAttrs = []slog.Attr{slog.String("kind", "mac")}

func (k macKind) Verify(params []byte) (rpc.Verdict, error) {
	var p struct{ Nonce, MAC string }
	if json.Unmarshal(params, &p) != nil {
		return rpc.Verdict{}, &rpc.Refusal{Outcome: rpc.OutcomeBadParams, Detail: "params must be {nonce, mac}"}
	}
	nonce, err1 := hex.DecodeString(p.Nonce)
	mac, err2 := hex.DecodeString(p.MAC)
	if err1 != nil || err2 != nil || len(nonce) == 0 {
		return rpc.Verdict{}, &rpc.Refusal{Outcome: rpc.OutcomeBadParams, Detail: "nonce and mac must be hex"}
	}
	id := sha256.Sum256(nonce)
	v := rpc.Verdict{SpendID: id[:], Attrs: macAttrs}
	if !hmac.Equal(mac, k.mac(nonce)) {
		return v, &rpc.Refusal{Outcome: rpc.OutcomeBadTag}
	}
	v.KeyID = k.id
	return v, nil
}

func (k macKind) mac(nonce []byte) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write(nonce)
	return m.Sum(nil)
}

type observed struct {
	mu   sync.Mutex
	seen []string
}

func (o *observed) ObserveRedemption(outcome rpc.Outcome, keyID string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, string(outcome)+"/"+keyID)
}

// TestSecondKind: a second kind of token is one KeySet and one Kind; it
// shares the store, the observer and the error table with the first.
func TestSecondKind(t *testing.T) {
	mk := macKind{id: "00000000000000aa", secret: []byte("test secret")}
	obs := &observed{}
	s := rpctest.NewServer(t, rpctest.Options{Configure: func(o *rpc.Options) {
		o.Kinds = append(o.Kinds, rpc.Kind{Method: "redeem_mac", Keys: func() rpc.KeySet { return mk }})
		o.Observer = obs
	}})
	if err := s.Store.PrepareKeys(context.Background(), mk.KeyIDs()); err != nil {
		t.Fatal(err)
	}
	nonce := []byte("a fresh nonce")
	good := map[string]string{"nonce": hex.EncodeToString(nonce), "mac": hex.EncodeToString(mk.mac(nonce))}
	bad := map[string]string{"nonce": hex.EncodeToString(nonce), "mac": hex.EncodeToString(mk.mac([]byte("other")))}
	for _, c := range []struct {
		method string
		params any
		status int
		code   string
	}{
		{"redeem_mac", bad, 403, "-32020"},
		{"redeem_mac", map[string]string{"nonce": "zz"}, 400, "-32602"},
		{"redeem_mac", good, 200, "success"},
		{"redeem_mac", good, 403, "-32021"},
		{"redeem", good, 400, "-32602"}, // the other kind's params are not a VOPRF redemption
		{"redeem", mint(t, s.Key).Params(), 200, "success"},
	} {
		rec := serve(s.Handler, "POST", rpctest.Request(1, c.method, c.params))
		if r := decode(t, rec); rec.Code != c.status || r.Code() != c.code {
			t.Errorf("%s %v: HTTP %d %s %+v, want %d %s", c.method, c.params, rec.Code, r.Code(), r.Error, c.status, c.code)
		}
	}
	if n, err := s.Store.Count(context.Background(), mk.id); err != nil || n != 1 {
		t.Errorf("the mac kind's store partition holds %d spends (%v), want 1", n, err)
	}
	want := "[bad_tag/ bad_params/ success/00000000000000aa already_spent/00000000000000aa bad_params/ success/" + s.Key.ID() + "]"
	if got := fmt.Sprint(obs.seen); got != want {
		t.Errorf("observed %s\nwant     %s", got, want)
	}
	rec := serve(s.Handler, "POST", rpctest.Request(1, "redeem_other", nil))
	if r := decode(t, rec); r.Error == nil || r.Error.Message != "Method not found: the methods are redeem, redeem_mac and rpc.discover" {
		t.Errorf("unknown method: %+v", r.Error)
	}
}
