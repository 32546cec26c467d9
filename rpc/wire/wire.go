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

// The JSON-RPC error codes ppredeem answers with.
const (
	CodeBadTag            = -32020 // the tag does not verify under any configured key
	CodeAlreadySpent      = -32021 // the token was spent before
	CodeUnsupportedCurve  = -32022 // data[2] names other curve settings than p256/sha256/increment|swu
	CodeIssueNotSupported = -32040 // the method "issue" was called: the server only redeems
	CodeHTTPMethod        = -32041 // the HTTP method is not POST
	CodeBusy              = -32050 // no room for the request body now (HTTP 503, Retry-After): nothing was read or spent; retry later
	CodeInvalidRequest    = -32600 // not a JSON-RPC 2.0 request this server takes
	CodeMethodNotFound    = -32601 // no such JSON-RPC method
	CodeInvalidParams     = -32602 // the params are malformed
	CodeInternal          = -32603 // the server failed; the token may or may not be spent
	CodeParse             = -32700 // the body is not JSON
)
