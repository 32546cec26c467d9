// Package requestid names each HTTP request for the log lines about it:
// the caller's X-Request-Id when it is a short printable token (so a
// platform's ID follows its request through the gateway and the
// provider), a fresh random one otherwise, and echoed in the answer.
// The main listener (package rpc) and the relay gateway (rpc/gateway)
// share it, so an ID one of them forwards is one the other keeps.
//
// An ID is 1 to 64 of A-Z a-z 0-9 - _ . : nothing that could break a log
// line or a header. A generated one is 16 lowercase hex digits from
// crypto/rand.
package requestid

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Header carries the request ID, in requests and answers.
const Header = "X-Request-Id"

// Take returns the ID of r, the caller's if Valid, else a New one, and
// sets it on w's header.
func Take(w http.ResponseWriter, r *http.Request) string {
	id := r.Header.Get(Header)
	if !Valid(id) {
		id = New()
	}
	w.Header().Set(Header, id)
	return id
}

// New returns a fresh random ID.
func New() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Valid reports whether id is 1 to 64 of A-Z a-z 0-9 - _ . (a caller's ID
// that is not is replaced).
func Valid(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
