package relay

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify/pass"
)

// Title is the stable title of an error answer: a contract, clients match on it.
type Title string

// The titles of rpc/relay/PROTOCOL.md §3: the design's, and those ppredeem adds where the
// design is silent (§5).
const (
	TitleNotFound           Title = "Not found"
	TitleInvalidPass        Title = "Invalid Privacy Pass"
	TitlePassExpired        Title = "Privacy Pass expired"
	TitleClaimTypeMismatch  Title = "Claim type mismatch"
	TitleClaimNotReady      Title = "Claim not ready"
	TitlePassRedeemed       Title = "Privacy Pass already redeemed"
	TitleRelayRedeemed      Title = "Relay already redeemed"
	TitleUnavailable        Title = "Service unavailable"
	TitleUnknownClaimType   Title = "Unknown claim type"
	TitleInvalidKey         Title = "Invalid encryption key"
	TitleSandboxNotAllowed  Title = "Sandbox not allowed"
	TitleUnauthorized       Title = "Unauthorized"
	TitleInvalidSession     Title = "Invalid session"
	TitleClaimReported      Title = "Claim already reported"
	TitleBadRequest         Title = "Bad request"
	TitleIdempotencyReused  Title = "Idempotency-Key reused"
	TitleBodyTooLarge       Title = "Request body too large"
	TitleMethodNotAllowed   Title = "Method not allowed"
	TitleInvalidClaim       Title = "Invalid claim"
	TitleInternal           Title = "Internal error"
	TitleUnknownKey         Title = "Unknown key id"
	TitleClaimPayloadTooBig Title = "Claim too large for the encryption key"
)

// row is one row of the error table: an HTTP status, a title, and the outcome label that
// generate-claim's metric counts it under ("" for other endpoints' refusals).
type row struct {
	status  int
	title   Title
	outcome string
}

// The error table: the only place pairing a refusal with a status and a title. classify is
// the only place picking a row for an error.
var (
	rowNotFound          = row{http.StatusNotFound, TitleNotFound, "not_found"}
	rowMalformedPass     = row{http.StatusBadRequest, TitleInvalidPass, "invalid"}
	rowInvalidPass       = row{http.StatusUnauthorized, TitleInvalidPass, "invalid"}
	rowPassExpired       = row{http.StatusUnauthorized, TitlePassExpired, "expired"}
	rowClaimTypeMismatch = row{http.StatusUnprocessableEntity, TitleClaimTypeMismatch, "mismatched"}
	rowClaimNotReady     = row{http.StatusForbidden, TitleClaimNotReady, "not_ready"}
	rowPassRedeemed      = row{http.StatusConflict, TitlePassRedeemed, "double_spent"}
	rowRelayRedeemed     = row{http.StatusConflict, TitleRelayRedeemed, "relay_redeemed"}
	rowUnavailable       = row{http.StatusServiceUnavailable, TitleUnavailable, "unavailable"}
	rowUnknownClaimType  = row{http.StatusUnprocessableEntity, TitleUnknownClaimType, ""}
	rowInvalidKey        = row{http.StatusBadRequest, TitleInvalidKey, ""}
	rowSandbox           = row{http.StatusUnprocessableEntity, TitleSandboxNotAllowed, ""}
	rowUnauthorized      = row{http.StatusUnauthorized, TitleUnauthorized, ""}
	rowInvalidSession    = row{http.StatusUnauthorized, TitleInvalidSession, ""}
	rowClaimReported     = row{http.StatusConflict, TitleClaimReported, ""}
	rowBadRequest        = row{http.StatusBadRequest, TitleBadRequest, "bad_request"}
	rowIdempotency       = row{http.StatusUnprocessableEntity, TitleIdempotencyReused, "bad_request"}
	rowBodyTooLarge      = row{http.StatusRequestEntityTooLarge, TitleBodyTooLarge, "bad_request"}
	rowMethod            = row{http.StatusMethodNotAllowed, TitleMethodNotAllowed, ""}
	rowInvalidClaim      = row{http.StatusBadRequest, TitleInvalidClaim, ""}
	rowPayloadTooBig     = row{http.StatusBadRequest, TitleClaimPayloadTooBig, ""}
	rowUnknownKey        = row{http.StatusNotFound, TitleUnknownKey, ""}
	rowInternal          = row{http.StatusInternalServerError, TitleInternal, "internal"}
)

// refusal is a request refused with a row of the table. Detail is sent: fixed text written
// by this package, never request data or a secret. Err is the cause, for the log only.
type refusal struct {
	row    row
	detail string
	err    error
}

func (r *refusal) Error() string {
	s := string(r.row.title)
	if r.detail != "" {
		s += ": " + r.detail
	}
	if r.err != nil {
		s += ": " + r.err.Error()
	}
	return s
}

func (r *refusal) Unwrap() error { return r.err }

func refuse(r row, detail string) error { return &refusal{row: r, detail: detail} }

// classify is the one mapping from an error to the wire: a refusal is its row; the verdicts
// of package pass and the store's errors are theirs; anything else is an internal error,
// whose text is logged, never sent. It returns the row and the details to send.
func classify(err error) (row, string) {
	var ref *refusal
	var perr *pass.Error
	switch {
	case errors.As(err, &ref):
		return ref.row, ref.detail
	case errors.As(err, &perr) && errors.Is(err, pass.ErrMalformed):
		return rowMalformedPass, perr.Reason
	case errors.Is(err, pass.ErrMalformed):
		return rowMalformedPass, ""
	case errors.As(err, &perr) && errors.Is(err, pass.ErrInvalid):
		return rowInvalidPass, perr.Reason
	case errors.Is(err, pass.ErrInvalid):
		return rowInvalidPass, ""
	case errors.Is(err, pass.ErrExpired):
		return rowPassExpired, ""
	case errors.Is(err, pass.ErrClaimTypeMismatch):
		return rowClaimTypeMismatch, "the pass was issued for another claim type; it was not consumed"
	case errors.Is(err, pass.ErrUnknownClaimType):
		return rowUnknownClaimType, ""
	case errors.Is(err, pass.ErrUnknownKey):
		return rowUnknownKey, "key-id is not the active issuing key of a claim type"
	case errors.As(err, &perr) && errors.Is(err, pass.ErrBlindedToken):
		return rowBadRequest, perr.Reason
	case errors.Is(err, spend.ErrRelayNotFound):
		return rowNotFound, ""
	case errors.Is(err, spend.ErrClaimReported):
		return rowClaimReported, "a claim result is final"
	case errors.Is(err, spend.ErrUnknownKey), errors.Is(err, spend.ErrSchemaBehind):
		return rowInternal, ""
	case isStoreError(err):
		return rowUnavailable, "the store is unavailable; nothing was done, a retry is safe"
	}
	return rowInternal, ""
}

// storeError marks an error of the store (unreachable, timed out): 503, retry is safe.
type storeError struct{ err error }

func (e *storeError) Error() string { return "store: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func isStoreError(err error) bool {
	var se *storeError
	return errors.As(err, &se)
}

// stored wraps an error of a store call, keeping the store's sentinels classifiable.
func stored(err error) error {
	if err == nil {
		return nil
	}
	return &storeError{err: err}
}

type errorItem struct {
	Title   Title  `json:"title"`
	Details string `json:"details,omitempty"`
}

type errorsBody struct {
	Errors []errorItem `json:"errors"`
}

// writeError writes err in the errors shape with its row's status.
func writeError(w http.ResponseWriter, err error) row {
	r, detail := classify(err)
	body, _ := json.Marshal(errorsBody{Errors: []errorItem{{Title: r.title, Details: detail}}})
	switch r.status {
	case http.StatusUnauthorized:
		if r.title == TitleUnauthorized {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, r.status, body)
	return r
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}
