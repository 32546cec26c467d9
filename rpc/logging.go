package rpc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/ppredeem/ppredeem/rpc/requestid"
)

// RequestIDHeader carries the request ID (package requestid): taken from
// the client when it is a short printable token, generated otherwise, and
// always echoed.
const RequestIDHeader = requestid.Header

type requestIDKey struct{}

func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := requestid.Take(w, r)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
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
// the outcome, key ID, a hash of the token's spend identity and the kind's
// attributes; never the token, tag or bindings. Internal errors are logged
// with their text (which the client never sees).
func (h *Handler) observe(ctx context.Context, v Verdict, err error, elapsed time.Duration) {
	r, _ := classify(err)
	outcome := r.outcome
	if !r.redemption {
		// A kind refused with a row of the JSON-RPC layer: a bug in the
		// kind, answered as the table says but counted as internal.
		outcome = OutcomeInternal
	}
	if h.observer != nil {
		h.observer.ObserveRedemption(outcome, v.KeyID, elapsed)
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
	attrs := make([]slog.Attr, 0, 6+len(v.Attrs))
	attrs = append(attrs,
		slog.String("request_id", RequestID(ctx)),
		slog.String("outcome", string(outcome)),
		slog.Duration("elapsed", elapsed),
	)
	if v.KeyID != "" {
		attrs = append(attrs, slog.String("key_id", v.KeyID))
	}
	if v.SpendID != nil {
		attrs = append(attrs, slog.String("token_hash", TokenHash(v.SpendID)))
	}
	attrs = append(attrs, v.Attrs...)
	if outcome == OutcomeInternal || outcome == OutcomeBadParams {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	h.log.LogAttrs(ctx, level, "redemption", attrs...)
}
