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

func writeError(w http.ResponseWriter, id []byte, err error) {
	we := wireError(err)
	writeJSON(w, we.status, errorBody(id, we))
}

func errorBody(id []byte, we wireErr) []byte {
	msg, _ := json.Marshal(we.message) // a string always marshals
	buf := make([]byte, 0, 96+len(id)+len(msg))
	buf = append(buf, `{"jsonrpc":"2.0","id":`...)
	buf = append(buf, id...)
	buf = append(buf, `,"error":{"code":`...)
	buf = strconv.AppendInt(buf, int64(we.code), 10)
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
