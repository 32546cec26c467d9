package verify

import "errors"

// The three sentinels below are the only verdicts verify reports for request
// input. The rpc package maps them to JSON-RPC codes (verify/PROTOCOL.md §2);
// nothing in verify knows about the wire.
var (
	// ErrBadParams: the params object has an invalid structure, bad base64 or
	// wrong lengths (wire -32602). Returned as a *ParamsError.
	ErrBadParams = errors.New("invalid params")
	// ErrUnsupportedCurve: data[2] names a curve, hash or method other than
	// p256, sha256 and increment/swu (wire -32022).
	ErrUnsupportedCurve = errors.New("unsupported curve settings")
	// ErrBadTag: the tag does not verify under any configured key (wire
	// -32020). Also returned when the token cannot be hashed to the curve.
	ErrBadTag = errors.New("tag does not verify")
)

// ParamsError says which structural rule the params broke. Reason is a fixed
// human string (e.g. "tag must be 32 bytes", "at most 32 bindings") that never
// contains request data (token, tag, bindings): it may be echoed to the client
// and logged. errors.Is(e, ErrBadParams) is true.
type ParamsError struct{ Reason string }

// Error returns "invalid params: " + Reason.
func (e *ParamsError) Error() string { return ErrBadParams.Error() + ": " + e.Reason }

// Unwrap returns ErrBadParams.
func (e *ParamsError) Unwrap() error { return ErrBadParams }

func badParams(reason string) error { return &ParamsError{Reason: reason} }

// curveError is an ErrUnsupportedCurve with a fixed explanation. The values are
// package-level constants in all but name: they carry no request data and are
// never modified.
type curveError struct{ reason string }

func (e *curveError) Error() string { return ErrUnsupportedCurve.Error() + ": " + e.reason }
func (e *curveError) Unwrap() error { return ErrUnsupportedCurve }

var (
	errCurveNotP256   error = &curveError{`curve must be "p256"`}
	errHashNotSHA256  error = &curveError{`hash must be "sha256"`}
	errMethodUnknown  error = &curveError{`method must be "increment" or "swu"`}
	errMethodArgument error = &curveError{"unknown hash-to-curve method"}
)
