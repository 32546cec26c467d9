// Package rpc serves the Privacy Pass redemption API: JSON-RPC 2.0 over
// HTTP, POST /api/redeem, method "redeem" (PROTOCOL.md §1-2), plus the
// liveness and readiness probes of the same listener.
//
// It is the only package that imports gorilla/rpc. Gorilla dispatches to the
// redeem method and json2 decodes params; a small codec wrapper (codec.go)
// adds what json2 lacks: the plain method name "redeem", refusal of
// notifications and null ids before any method runs, and HTTP statuses and
// messages from the protocol's error table.
//
// Contract:
//   - Every answer is a JSON-RPC body, with the status of the error table:
//     200 success; 403 for -32020 and -32021; 405 for -32041 (any HTTP
//     method but POST, on any path but the probes); 500 for -32603; 413 for
//     a body over the limit (-32600); 400 otherwise. The id is echoed when
//     it was a string or a number, null otherwise.
//   - Checks run in the order structure → curve settings → tag → spend, so a
//     request that fails a check spends nothing; a success is only sent
//     after the store reports the spend committed.
//   - wireError (errors.go) is the one place that maps errors to the wire.
//     Errors it does not know become -32603 "Internal error": their text is
//     logged, never sent. No message ever holds the token, tag, a binding,
//     SQL or Go error text.
//   - A JSON array is a batch of at most MaxBatch requests, each answered
//     as if sent alone; notifications inside a batch get no answer and, as
//     everywhere, never reach a method.
//
// Logs carry a request ID (X-Request-Id), the outcome, the key ID and a
// short hash of the token; never the token, tag or bindings.
package rpc
