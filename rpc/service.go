package rpc

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// RedeemArgs is the params of a redemption method as gorilla hands them
// over (gorilla needs the type exported). It keeps the raw JSON: the token
// kind's KeySet owns its structure, so that its errors, not
// encoding/json's, reach the wire.
type RedeemArgs struct {
	raw    []byte
	method string // which kind's method was called
}

func (a *RedeemArgs) UnmarshalJSON(b []byte) error {
	a.raw = append(a.raw[:0], b...)
	return nil
}

// redeemService is the gorilla service behind every redemption method.
type redeemService struct{ h *Handler }

// Redeem verifies (structure, then settings, then the token) and only then
// spends: a request that fails any check spends nothing.
func (s *redeemService) Redeem(r *http.Request, args *RedeemArgs, reply *string) error {
	start := time.Now()
	v, err := s.h.redeem(r.Context(), args.method, args.raw)
	s.h.observe(r.Context(), v, err, time.Since(start))
	if err != nil {
		return err
	}
	*reply = "success"
	return nil
}

var (
	errNoKeys       = errors.New("rpc: no key set loaded")
	errNoVerdictKey = errors.New("rpc: a key set verified a token without naming the key")
)

func (h *Handler) redeem(ctx context.Context, method string, params []byte) (Verdict, error) {
	keys := h.kinds[method]
	if keys == nil {
		return Verdict{}, errNoKeys
	}
	ks := keys()
	if ks == nil {
		return Verdict{}, errNoKeys
	}
	v, err := ks.Verify(params)
	if err != nil {
		v.KeyID = ""
		return v, err
	}
	if v.KeyID == "" {
		return v, errNoVerdictKey
	}
	return v, h.spender.Spend(ctx, v.KeyID, v.SpendID)
}
