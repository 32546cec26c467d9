package rpc

// Issuer is what a token kind provides to be issued over POST /api/issue:
// an optional interface of its KeySet (the legacy VOPRF tokens implement it
// in rpc/kind/voprf). Like the KeySet, it is immutable; a key reload makes
// a new one, so a request is signed with the keys in force when it came.
type Issuer interface {
	// PrepareIssue parses an issue request: text is the value of the JSON
	// member "bl_sig_req" or of the form field "blinded-tokens", as sent.
	// At most maxTokens tokens are accepted. It does no I/O and signs
	// nothing. A request refused for what it holds gives a *Refusal with
	// OutcomeBadIssueRequest, OutcomeBadPoint, OutcomeDuplicatePoint or
	// OutcomeTooManyTokens; any other error is an internal error.
	PrepareIssue(text string, maxTokens int) (IssueBatch, error)
	// Commitments returns the public commitments of the keys, the signing
	// key first, then the keys that only verify redemptions, in configured
	// order.
	Commitments() []Commitment
}

// IssueBatch is a parsed issue request, ready to be signed.
type IssueBatch interface {
	// Len is the number of tokens signing issues.
	Len() int
	// KeyID is the ID of the key that signs (a KeySet.KeyIDs entry).
	KeyID() string
	// Sign signs every token and returns the issue response: the text the
	// answer carries as "signatures" (JSON member or form field), made of
	// characters that need no escaping in either. Errors are internal.
	Sign() (string, error)
}

// Commitment is one key's public commitment, as GET /api/commitments
// serves it.
type Commitment struct {
	// Version names the key in issue responses: a client checks a
	// response's proof against the commitment of its "version".
	Version string
	// G and H are the SEC 1 uncompressed points of the commitment
	// (verify/PROTOCOL.md §7.3, §8): the generator and H = k·G.
	G, H []byte
}
