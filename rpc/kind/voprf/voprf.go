// Package voprf plugs the legacy Privacy Pass token (package verify: a
// VOPRF over P-256 with SHA-256, verify/PROTOCOL.md) into the redemption
// API as an rpc.KeySet. It is the one place that knows both sides: it
// loads the key files, hands a redemption's params to verify, and says
// which row of rpc's error table each of verify's verdicts is.
//
// The mapping (verify/PROTOCOL.md §2):
//
//	*verify.ParamsError, verify.ErrBadParams  rpc.OutcomeBadParams (-32602), the Reason as detail
//	verify.ErrUnsupportedCurve                rpc.OutcomeUnsupportedCurve (-32022)
//	verify.ErrBadTag                          rpc.OutcomeBadTag (-32020)
//
// The spend identity is the token t itself (verify/PROTOCOL.md §6), the
// key ID the key's verify ID. A new kind of token plugs in the same way:
// one package like this one, and one line in cmd/ppredeem's list of kinds.
package voprf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/verify"
)

// LoadFiles reads every PEM file (verify.ParseKeysPEM: P-256 keys, several
// per file) into one key set, in file order. Errors name the file, never
// the key material.
func LoadFiles(paths []string) (*verify.KeySet, error) {
	var keys []*verify.Key
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("keys file %s: %w", p, err)
		}
		ks, err := verify.ParseKeysPEM(data)
		if err != nil {
			return nil, fmt.Errorf("keys file %s: %w", p, err)
		}
		keys = append(keys, ks...)
	}
	set, err := verify.NewKeySet(keys)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return set, nil
}

// KeySet is a verify.KeySet as the redemption API uses it; it implements
// rpc.KeySet. It is immutable and safe for concurrent use.
type KeySet struct {
	keys   *verify.KeySet
	limits verify.Limits
	ids    []string
}

var _ rpc.KeySet = (*KeySet)(nil)

// New returns keys as an rpc.KeySet whose redemptions are bounded by
// limits (zero fields: verify's defaults).
func New(keys *verify.KeySet, limits verify.Limits) *KeySet {
	s := &KeySet{keys: keys, limits: limits}
	for _, k := range keys.Keys() {
		s.ids = append(s.ids, k.ID())
	}
	return s
}

// Load is LoadFiles followed by New.
func Load(paths []string, limits verify.Limits) (*KeySet, error) {
	keys, err := LoadFiles(paths)
	if err != nil {
		return nil, err
	}
	return New(keys, limits), nil
}

// Keys returns the verify key set.
func (s *KeySet) Keys() *verify.KeySet { return s.keys }

// KeyIDs returns the keys' IDs in configured order.
func (s *KeySet) KeyIDs() []string { return append([]string(nil), s.ids...) }

// methodAttrs are the log attributes of each hash-to-curve method, built
// once: Verify runs for every redemption.
var methodAttrs = map[verify.Method][]slog.Attr{
	verify.Increment: {slog.String("method", verify.Increment.String())},
	verify.SWU:       {slog.String("method", verify.SWU.String())},
}

// Verify parses params (verify.ParseParams), then checks the tag under
// every key (verify.KeySet.Verify).
func (s *KeySet) Verify(params []byte) (rpc.Verdict, error) {
	red, err := verify.ParseParams(params, s.limits)
	if err != nil {
		return rpc.Verdict{}, refusal(err)
	}
	v := rpc.Verdict{SpendID: red.Token, Attrs: methodAttrs[red.Method]}
	key, err := s.keys.Verify(red)
	if err != nil {
		return v, refusal(err)
	}
	v.KeyID = key.ID()
	return v, nil
}

// refusal is the row of rpc's error table for one of verify's verdicts;
// any other error stays what it is (an internal error).
func refusal(err error) error {
	var params *verify.ParamsError
	switch {
	case errors.As(err, &params):
		return &rpc.Refusal{Outcome: rpc.OutcomeBadParams, Detail: params.Reason, Err: err}
	case errors.Is(err, verify.ErrBadParams):
		return &rpc.Refusal{Outcome: rpc.OutcomeBadParams, Err: err}
	case errors.Is(err, verify.ErrUnsupportedCurve):
		return &rpc.Refusal{Outcome: rpc.OutcomeUnsupportedCurve, Err: err}
	case errors.Is(err, verify.ErrBadTag):
		return &rpc.Refusal{Outcome: rpc.OutcomeBadTag, Err: err}
	default:
		return err
	}
}
