package rpc

import "log/slog"

// KeySet is the keys of one kind of token in force at one moment, as the
// handler uses them: what a token kind provides (the legacy VOPRF tokens
// through rpc/kind/voprf). It must be immutable and safe for concurrent
// use; a key reload builds a new KeySet.
type KeySet interface {
	// KeyIDs returns the IDs of the keys, in configured order. An ID is
	// 16 lowercase hex characters (spend.ValidKeyID) and names the key's
	// spent-token storage, its metric label and its log field, so IDs must
	// be unique across every kind the server redeems.
	KeyIDs() []string
	// Verify parses the params of one redemption (the raw JSON of the
	// request's "params" member, as sent) and checks the token under the
	// keys. It does no I/O and spends nothing.
	//
	// On success the Verdict names the key that verified the token and the
	// token's spend identity. A token the request is refused for gives a
	// *Refusal with OutcomeBadParams, OutcomeUnsupportedCurve or
	// OutcomeBadTag; any other error is an internal error (logged, never
	// sent). On a refusal the Verdict may still carry the SpendID and Attrs
	// of what was parsed, for the log line; its KeyID is then empty.
	Verify(params []byte) (Verdict, error)
}

// Verdict is what KeySet.Verify found in one redemption.
type Verdict struct {
	// KeyID is the ID of the key that verified the token.
	KeyID string
	// SpendID is the token's spend identity: what the spent-token store
	// records under KeyID, so that two redemptions with equal SpendIDs
	// under one key are one token. At most spend.MaxTokenLen bytes.
	SpendID []byte
	// Attrs are what the log line of this redemption may say about the
	// token besides its hash (never the token or any secret), e.g. the
	// hash-to-curve method. The handler does not modify them.
	Attrs []slog.Attr
}

// Kind is one kind of token the handler redeems.
type Kind struct {
	// Method is the JSON-RPC method that redeems this kind ("redeem" for
	// the legacy VOPRF tokens).
	Method string
	// Keys returns the key set in force. It is called once per redemption,
	// so a reload (SIGHUP) takes effect at the next request; nil means no
	// keys are loaded: /readyz fails and redemptions are internal errors.
	Keys func() KeySet
}
