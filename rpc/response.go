package rpc

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Responses are assembled by hand: they have a fixed shape, and this is the
// hot path of every redemption.

func writeResult(w http.ResponseWriter, id, result []byte) {
	buf := make([]byte, 0, 64+len(id)+len(result))
	buf = append(buf, `{"jsonrpc":"2.0","id":`...)
	buf = append(buf, id...)
	buf = append(buf, `,"result":`...)
	buf = append(buf, result...)
	buf = append(buf, "}\n"...)
	writeJSON(w, http.StatusOK, buf)
}

// writeError answers err with its row of the error table. A 503 says when
// to try again (Retry-After, RFC 9110 §10.2.3 and §15.6.4).
func writeError(w http.ResponseWriter, id []byte, err error) {
	r, msg := classify(err)
	if r.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, r.status, errorBody(id, r.code, msg))
}

func errorBody(id []byte, code int, message string) []byte {
	msg, _ := json.Marshal(message) // a string always marshals
	buf := make([]byte, 0, 96+len(id)+len(msg))
	buf = append(buf, `{"jsonrpc":"2.0","id":`...)
	buf = append(buf, id...)
	buf = append(buf, `,"error":{"code":`...)
	buf = strconv.AppendInt(buf, int64(code), 10)
	buf = append(buf, `,"message":`...)
	buf = append(buf, msg...)
	buf = append(buf, "}}\n"...)
	return buf
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // a client that left cannot be answered
}
