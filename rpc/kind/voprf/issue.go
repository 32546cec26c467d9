package voprf

import (
	"errors"
	"strconv"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/verify"
)

// Issuance (verify/PROTOCOL.md §7): the first key of the set signs, every
// key verifies redemptions. Rotating the signing key is putting a new key
// first and keeping the old one after it until its tokens are redeemed or
// no longer wanted.
//
// A key's version, the "version" of the issue responses it signs and the
// name of its commitment at GET /api/commitments, is its key ID. It is
// unique per key and changes with the signing key by itself, which is
// what a client needs: the extension caches commitments by version
// (challenge-bypass-extension v2.0.6 src/ext/issuance.js cacheCommitments;
// v3.0.6 src/background/providers/cloudflare.ts getCommitment), so a
// version reused for a new key would make cached clients check new proofs
// against the old key.
//
// The mapping of verify's refusals (verify/PROTOCOL.md §7.1):
//
//	verify.ErrBadIssueRequest  rpc.OutcomeBadIssueRequest (-32030)
//	verify.ErrBadPoint         rpc.OutcomeBadPoint (-32031)
//	verify.ErrDuplicatePoint   rpc.OutcomeDuplicatePoint (-32032)
//	verify.ErrTooManyTokens    rpc.OutcomeTooManyTokens (-32033)
//
// each with the IssueError's fixed reason, and the position of the point
// at fault, as detail.

var _ rpc.Issuer = (*KeySet)(nil)

// PrepareIssue parses an issue request (verify.ParseIssueRequest) for the
// signing key, the first of the set.
func (s *KeySet) PrepareIssue(text string, maxTokens int) (rpc.IssueBatch, error) {
	req, err := verify.ParseIssueRequest(text, maxTokens)
	if err != nil {
		return nil, issueRefusal(err)
	}
	return &batch{key: s.keys.Keys()[0], req: req}, nil
}

// Commitments returns every key's commitment: G, H = k·G and the key ID as
// version; the signing key first.
func (s *KeySet) Commitments() []rpc.Commitment {
	G := verify.BasePoint()
	var out []rpc.Commitment
	for _, k := range s.keys.Keys() {
		out = append(out, rpc.Commitment{Version: k.ID(), G: G, H: k.Commitment()})
	}
	return out
}

// batch is a parsed issue request and the key that signs it.
type batch struct {
	key *verify.Key
	req *verify.IssueRequest
}

func (b *batch) Len() int      { return b.req.Len() }
func (b *batch) KeyID() string { return b.key.ID() }

// Sign signs with crypto/rand's nonces (verify.Key.SignBatch) and encodes
// the response with the key's version (verify.IssueResponse.Encode).
func (b *batch) Sign() (string, error) {
	resp, err := b.key.SignBatch(nil, b.req)
	if err != nil {
		return "", err
	}
	return resp.Encode(b.key.ID()), nil
}

// issueRefusal is the row of rpc's error table for one of
// ParseIssueRequest's errors; any other error stays what it is.
func issueRefusal(err error) error {
	var ie *verify.IssueError
	if !errors.As(err, &ie) {
		return err
	}
	var o rpc.Outcome
	switch {
	case errors.Is(err, verify.ErrBadIssueRequest):
		o = rpc.OutcomeBadIssueRequest
	case errors.Is(err, verify.ErrBadPoint):
		o = rpc.OutcomeBadPoint
	case errors.Is(err, verify.ErrDuplicatePoint):
		o = rpc.OutcomeDuplicatePoint
	case errors.Is(err, verify.ErrTooManyTokens):
		o = rpc.OutcomeTooManyTokens
	default:
		return err
	}
	detail := ie.Reason
	if ie.Index >= 0 {
		detail += " (contents[" + strconv.Itoa(ie.Index) + "])"
	}
	return &rpc.Refusal{Outcome: o, Detail: detail, Err: err}
}
