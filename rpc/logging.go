package rpc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/ppredeem/ppredeem/verify"
)

// RequestIDHeader carries the request ID: taken from the client when it is
// a short printable token, generated otherwise, and always echoed.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(RequestIDHeader)
	if !validRequestID(id) {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}

func validRequestID(id string) bool {
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

// RequestID returns the request ID of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func loggerFrom(ctx context.Context, l *slog.Logger) *slog.Logger {
	if id := RequestID(ctx); id != "" {
		return l.With("request_id", id)
	}
	return l
}

// TokenHash is how logs name a token: the first 8 bytes of its SHA-256, in
// hex. Enough to correlate two lines about one token, useless to redeem it.
func TokenHash(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:8])
}

// observe reports one redemption to the observer and the log. Logs carry
// the outcome, key ID and a token hash; never the token, tag or bindings.
// Internal errors are logged with their text (which the client never sees).
func (h *Handler) observe(ctx context.Context, red *verify.Redemption, key *verify.Key, err error, elapsed time.Duration) {
	outcome := outcomeOf(err)
	keyID := ""
	if key != nil {
		keyID = key.ID()
	}
	if h.observer != nil {
		h.observer.ObserveRedemption(outcome, keyID, elapsed)
	}
	level := slog.LevelInfo
	switch outcome {
	case OutcomeSuccess:
		level = slog.LevelDebug
	case OutcomeAlreadySpent:
		level = slog.LevelWarn
	case OutcomeInternal:
		level = slog.LevelError
	}
	if !h.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", RequestID(ctx)),
		slog.String("outcome", string(outcome)),
		slog.Duration("elapsed", elapsed),
	}
	if keyID != "" {
		attrs = append(attrs, slog.String("key_id", keyID))
	}
	if red != nil {
		attrs = append(attrs, slog.String("token_hash", TokenHash(red.Token)), slog.String("method", red.Method.String()))
	}
	if outcome == OutcomeInternal || outcome == OutcomeBadParams {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	h.log.LogAttrs(ctx, level, "redemption", attrs...)
}
