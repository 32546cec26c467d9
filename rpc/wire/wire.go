// Package wire holds what both ends of ppredeem's JSON-RPC API must agree
// on: the endpoint, the method name and the error codes (verify/PROTOCOL.md
// §1-2; privacypass/api-redeem README for the codes' origin). The server
// (package rpc) answers with them and the gateway client (rpc/client)
// classifies with them, so neither keeps a copy of the other's.
//
// The package imports nothing, so a gateway that links rpc/client links
// none of the server's dependencies. It holds constants only: which HTTP
// status and message go with each code is the server's error table
// (rpc/table.go), not part of this contract.
package wire

// RedeemPath is where redemptions are POSTed.
const RedeemPath = "/api/redeem"

// MethodRedeem is the JSON-RPC method that redeems a token.
const MethodRedeem = "redeem"

// IssuePath is where issue requests are POSTed (verify/PROTOCOL.md §7),
// and CommitmentsPath where the signing and verifying keys' commitments
// are fetched (GET).
const (
	IssuePath       = "/api/issue"
	CommitmentsPath = "/api/commitments"
)

// The JSON-RPC error codes ppredeem answers with. The issuance codes
// (-32030 to -32035) are ppredeem's own, in the free range between the
// redemption codes (-32020 to -32022) and the refusals of the JSON-RPC
// layer (-32040, -32041) of privacypass/api-redeem.
const (
	CodeBadTag            = -32020 // the tag does not verify under any configured key
	CodeAlreadySpent      = -32021 // the token was spent before
	CodeUnsupportedCurve  = -32022 // data[2] names other curve settings than p256/sha256/increment|swu
	CodeBadIssueRequest   = -32030 // POST /api/issue: the issue request is not base64 of {"type":"Issue","contents":[...]}
	CodeBadPoint          = -32031 // POST /api/issue: a blinded point is not a P-256 point in SEC 1 form
	CodeDuplicatePoint    = -32032 // POST /api/issue: the same blinded point twice
	CodeTooManyTokens     = -32033 // POST /api/issue: more blinded points than max_issue_tokens
	CodeNotAttested       = -32034 // POST /api/issue: no valid attester key (HTTP 401)
	CodeRateLimited       = -32035 // POST /api/issue: open issuance, the client address is over its rate (HTTP 429)
	CodeIssueNotSupported = -32040 // the JSON-RPC method "issue" was called: issuance is POST /api/issue
	CodeHTTPMethod        = -32041 // the HTTP method is not POST
	CodeBusy              = -32050 // no room for the request body now (HTTP 503, Retry-After): nothing was read or spent; retry later
	CodeInvalidRequest    = -32600 // not a JSON-RPC 2.0 request this server takes
	CodeMethodNotFound    = -32601 // no such JSON-RPC method
	CodeInvalidParams     = -32602 // the params are malformed
	CodeInternal          = -32603 // the server failed; the token may or may not be spent
	CodeParse             = -32700 // the body is not JSON
)
