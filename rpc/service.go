package rpc

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
)

// Spender records spent tokens; *spend.Postgres and *spend.Bolt satisfy it.
// Spend returns nil only once the spend is durably committed, and
// spend.ErrAlreadySpent for a token already recorded under keyID.
type Spender interface {
	Spend(ctx context.Context, keyID string, token []byte) error
}

// Outcome classifies one redemption for metrics and logs.
type Outcome string

// The outcomes of a redemption; each maps to one row of the error table.
const (
	OutcomeSuccess          Outcome = "success"
	OutcomeAlreadySpent     Outcome = "already_spent"
	OutcomeBadTag           Outcome = "bad_tag"
	OutcomeBadParams        Outcome = "bad_params"
	OutcomeUnsupportedCurve Outcome = "unsupported_curve"
	OutcomeInternal         Outcome = "internal"
)

// Outcomes lists every Outcome, for pre-registering metric labels.
var Outcomes = []Outcome{OutcomeSuccess, OutcomeAlreadySpent, OutcomeBadTag, OutcomeBadParams, OutcomeUnsupportedCurve, OutcomeInternal}

func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeSuccess
	case errors.Is(err, spend.ErrAlreadySpent):
		return OutcomeAlreadySpent
	case errors.Is(err, verify.ErrBadTag):
		return OutcomeBadTag
	case errors.Is(err, verify.ErrBadParams):
		return OutcomeBadParams
	case errors.Is(err, verify.ErrUnsupportedCurve):
		return OutcomeUnsupportedCurve
	default:
		return OutcomeInternal
	}
}

// errBadParamsStructure answers params that json2 could not hand over.
var errBadParamsStructure = &verify.ParamsError{Reason: "params must be an object"}

// RedeemArgs is the params of redeem as gorilla hands them over (gorilla
// needs the type exported). It keeps the raw JSON: verify.ParseParams owns
// its structure, so that its errors, not encoding/json's, reach the wire.
type RedeemArgs struct{ raw []byte }

func (a *RedeemArgs) UnmarshalJSON(b []byte) error {
	a.raw = append(a.raw[:0], b...)
	return nil
}

// redeemService is the gorilla service behind the method "redeem".
type redeemService struct{ h *Handler }

// Redeem checks structure, then curve settings, then the tag, and only then
// spends: a request that fails any check spends nothing.
func (s *redeemService) Redeem(r *http.Request, args *RedeemArgs, reply *string) error {
	start := time.Now()
	red, key, err := s.h.redeem(r.Context(), args.raw)
	s.h.observe(r.Context(), red, key, err, time.Since(start))
	if err != nil {
		return err
	}
	*reply = "success"
	return nil
}

func (h *Handler) redeem(ctx context.Context, params []byte) (*verify.Redemption, *verify.Key, error) {
	red, err := verify.ParseParams(params, h.limits)
	if err != nil {
		return nil, nil, err
	}
	keys := h.keys()
	if keys == nil {
		return red, nil, errNoKeys
	}
	key, err := keys.Verify(red)
	if err != nil {
		return red, nil, err
	}
	return red, key, h.spender.Spend(ctx, key.ID(), red.Token)
}

var errNoKeys = errors.New("rpc: no key set loaded")
