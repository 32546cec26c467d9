// Package rpc serves the Privacy Pass redemption API: JSON-RPC 2.0 over
// HTTP, POST /api/redeem, method "redeem" (verify/PROTOCOL.md §1-2), plus
// the liveness and readiness probes of the same listener and, when
// configured, issuance: POST /api/issue and GET /api/commitments
// (verify/PROTOCOL.md §7).
//
// It is the only package that imports gorilla/rpc. Gorilla dispatches to
// the redemption and discovery methods and json2 decodes params; a small
// codec wrapper (codec.go) adds what json2 lacks: plain method names,
// refusal of notifications and null ids before any method runs, and HTTP
// statuses and messages from the error table.
//
// # Routes
//
// Handler routes with an http.ServeMux (handler.go, routes): POST
// /api/redeem, GET (and HEAD) /healthz and /readyz, the issuance
// endpoints when Options.Issue is set (issue.go), and the caller's
// Options.Routes (the relay provider API, rpc/relay), which answer in
// their own shape. Every other request
// is a JSON-RPC error, never ServeMux's plain-text answers: a POST to
// another path is 404/-32600, any other HTTP method (also POST to a probe)
// 405/-32041, and a path that is not in clean form gets the same answer
// as an unknown path instead of a redirect.
//
// # The error table
//
// table.go holds one row per outcome: its JSON-RPC code, HTTP status,
// message and metric label. The redemption outcomes (success,
// already_spent, bad_tag, bad_params, unsupported_curve, internal) label
// ppredeem_redemptions_total; the JSON-RPC layer's rows (issue requested,
// wrong HTTP method, invalid request, no such endpoint, body too large,
// busy, method not found, parse error) refuse requests before any method
// runs.
// classify is the one place that picks a row for an error: nil is
// success, spend.ErrAlreadySpent is already_spent, a *Refusal is its
// outcome's row, anything else is -32603 "Internal error", whose text is
// logged, never sent. No message ever holds the token, tag, a binding,
// SQL or Go error text.
//
// # Token kinds
//
// The handler knows no token format. Each Kind pairs a JSON-RPC method
// with the KeySet in force for one kind of token; the legacy VOPRF tokens
// are rpc/kind/voprf under "redeem". A KeySet has two methods:
//
//	KeyIDs() []string                      // the keys' IDs: storage, metric labels, logs
//	Verify(params []byte) (Verdict, error) // parse + verify: key ID and spend identity, or a *Refusal
//
// Everything after Verify is shared by every kind: the spend (one
// spend.Store, keyed by key ID and spend identity), the batch handling,
// the metrics (Observer) and the error table. A new kind is one package
// implementing KeySet (its key files, its parsing, the mapping of its
// verdicts to Refusals) and one Kind in the caller's list. Key IDs must be
// unique across kinds: they name the spent-token storage.
//
// # Issuance
//
// POST /api/issue (issue.go) signs blinded tokens with the keys of one
// Kind whose KeySet implements the optional Issuer interface
// (issuekind.go; rpc/kind/voprf signs with its first key). The steps, each
// refusing before the next, so that a refused request signs and counts
// nothing: attestation from the headers alone (rpc/attest: an attester
// key, or open issuance), the body by its Content-Type (JSON
// {"bl_sig_req":...} or the form field blinded-tokens, at most
// MaxBodyBytes), the kind's parsing (at most MaxTokens points), open
// issuance's rate, signing, and the durable count of the tokens in the
// UsageCounter under "attester:<name>" and the signing key's ID. Only a
// counted issuance is answered: {"signatures":...} to a JSON request,
// signatures=... to a form. Refusals are JSON-RPC error bodies (id null)
// from the error table: -32030 to -32033 for what the request holds
// (with verify's fixed reason and the position of the point at fault),
// 401/-32034 without a valid attester key (with WWW-Authenticate),
// 429/-32035 over open issuance's rate (with Retry-After), 415/-32600 for
// another Content-Type; a failure to sign or count is -32603, and gives
// open issuance its tokens back.
//
// GET /api/commitments answers the Issuer's commitments, signing key
// first, as {"<version>":{"G","H","expiry","version"},...}, the object
// the extension finds under its provider's name in its commitments file;
// expiry is CommitmentExpiry after the request. It is not signed.
//
// # Contract
//
//   - Every answer is a JSON-RPC body with the status of its row: 200
//     success; 403 for -32020 and -32021; 405 for -32041; 500 for -32603;
//     404 for a POST to another path and 413 for a body over the limit
//     (both -32600); 503 with Retry-After for -32050, a body the memory
//     budget has no room for now; 400 otherwise. The id is echoed when it
//     was a string or a number, null otherwise.
//   - A body is read whole before anything is parsed, under a budget of
//     body bytes shared by every request of the listener
//     (Options.Bodies, package rpc/httpbody): a Content-Length over
//     MaxBodyBytes is refused before a byte is read, and a body that finds
//     no room is refused at once (-32050), never queued. Every endpoint of
//     the listener reads its bodies with the same Budget; those of this
//     package map its errors with bodyRefusal.
//   - A redemption is verified (for the VOPRF kind: structure → curve
//     settings → tag) before it spends, so a request that fails a check
//     spends nothing; a success is only sent after the store reports the
//     spend committed.
//   - A JSON array is a batch of at most MaxBatch requests, each answered
//     as if sent alone; notifications inside a batch get no answer and, as
//     everywhere, never reach a method.
//
// Logs carry a request ID (X-Request-Id), the outcome, the key ID, a short
// hash of the spend identity and the kind's attributes; never the token,
// tag or bindings.
package rpc
