package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Limits bounds untrusted request input. Zero (or negative) fields mean "use
// the DefaultLimits value".
type Limits struct {
	MaxTokenBytes    int // default 256
	MaxBindings      int // default 32
	MaxBindingsBytes int // default 16384 (sum of UTF-8 lengths of all bindings)
}

// DefaultLimits returns the limits used for every zero field of a Limits.
// Every known client sends a 32-byte token and two short bindings
// (verify/PROTOCOL.md §1).
func DefaultLimits() Limits {
	return Limits{MaxTokenBytes: 256, MaxBindings: 32, MaxBindingsBytes: 16384}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxTokenBytes <= 0 {
		l.MaxTokenBytes = d.MaxTokenBytes
	}
	if l.MaxBindings <= 0 {
		l.MaxBindings = d.MaxBindings
	}
	if l.MaxBindingsBytes <= 0 {
		l.MaxBindingsBytes = d.MaxBindingsBytes
	}
	return l
}

// Redemption is a parsed redeem request.
type Redemption struct {
	Token      []byte   // t, the decoded data[0]; the double-spend identity (verify/PROTOCOL.md §6)
	Tag        []byte   // 32 bytes, the decoded data[1]
	Bindings   []string // in request order, hashed as their UTF-8 bytes
	Method     Method   // from data[2]; Increment when data has 2 elements
	Compressed bool     // SEC1 compressed N in the key derivation (verify/PROTOCOL.md §1, §6)
}

// tagLen is the length of an HMAC-SHA256 tag.
const tagLen = 32

// Fixed reasons. None of them may ever include request data.
const (
	reasonNotObject       = "params must be a JSON object"
	reasonNotJSON         = "params is not valid JSON"
	reasonDataShape       = "data must be an array of 2 or 3 strings"
	reasonDataString      = "data elements must be strings"
	reasonTokenBase64     = "data[0] must be canonical standard base64"
	reasonTokenEmpty      = "token must not be empty"
	reasonTagBase64       = "data[1] must be canonical standard base64"
	reasonTagLen          = "tag must be 32 bytes"
	reasonSettingsBase64  = "data[2] must be canonical standard base64"
	reasonSettingsObject  = "data[2] must be base64 of a JSON object"
	reasonSettingsStrings = "data[2] curve, hash and method must be strings"
	reasonBindingsShape   = "bindings must be an array of strings"
	reasonBindingsUTF8    = "bindings must be valid UTF-8"
	reasonCompressed      = "compressed must be a boolean"
)

// wireParams is the params object (verify/PROTOCOL.md §1). Member names are
// matched by encoding/json: case-insensitively, and a repeated member
// overrides the earlier one. Unknown members are ignored.
type wireParams struct {
	Data       []dataString    `json:"data"`
	Bindings   []bindingString `json:"bindings"`
	Compressed optionalBool    `json:"compressed"`

	// dataBuf backs Data so that decoding a valid data array allocates
	// no slice (encoding/json appends to the existing slice).
	dataBuf [3]dataString
}

// wireSettings is the JSON object inside data[2].
type wireSettings struct {
	Curve  settingString `json:"curve"`
	Hash   settingString `json:"hash"`
	Method settingString `json:"method"`
}

// ParseParams parses the JSON value of the JSON-RPC "params" member of a redeem
// request. It returns a *ParamsError (errors.Is ErrBadParams) when the
// structure is wrong, or an error that errors.Is ErrUnsupportedCurve when the
// structure is right but data[2] names settings other than p256/sha256 and
// increment or swu. All structural checks, including the base64 and JSON of
// data[2], run before the curve settings are looked at (verify/PROTOCOL.md §2).
//
// The caller must bound the size of params (the body limit of the HTTP
// server): the limits in lim are checked after JSON decoding.
func ParseParams(params []byte, lim Limits) (*Redemption, error) {
	lim = lim.withDefaults()

	// encoding/json would accept null here (and leave everything unset);
	// insist on an object so the reason is the right one.
	if trimmed := bytes.TrimLeft(params, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) == 0 || !json.Valid(params) {
			return nil, badParams(reasonNotJSON)
		}
		return nil, badParams(reasonNotObject)
	}
	var w wireParams
	w.Data = w.dataBuf[:0]
	if err := json.Unmarshal(params, &w); err != nil {
		return nil, jsonError(err)
	}

	// data (verify/PROTOCOL.md §1).
	if len(w.Data) < 2 || len(w.Data) > 3 {
		return nil, badParams(reasonDataShape)
	}
	token, err := decodeBase64(string(w.Data[0]), lim.MaxTokenBytes)
	switch {
	case errors.Is(err, errTooLong):
		return nil, badParams("token longer than " + strconv.Itoa(lim.MaxTokenBytes) + " bytes")
	case err != nil:
		return nil, badParams(reasonTokenBase64)
	case len(token) == 0:
		return nil, badParams(reasonTokenEmpty)
	}
	tag, err := decodeBase64(string(w.Data[1]), tagLen)
	switch {
	case errors.Is(err, errTooLong):
		return nil, badParams(reasonTagLen)
	case err != nil:
		return nil, badParams(reasonTagBase64)
	case len(tag) != tagLen:
		return nil, badParams(reasonTagLen)
	}
	// Older clients send two elements; the reference server then assumes
	// p256/sha256/increment (verify/PROTOCOL.md §1).
	settings := wireSettings{
		Curve:  settingString{set: true, s: "p256"},
		Hash:   settingString{set: true, s: "sha256"},
		Method: settingString{set: true, s: "increment"},
	}
	if len(w.Data) == 3 {
		settings, err = parseSettings(string(w.Data[2]))
		if err != nil {
			return nil, err
		}
	}

	// bindings.
	if w.Bindings == nil {
		return nil, badParams(reasonBindingsShape)
	}
	if len(w.Bindings) > lim.MaxBindings {
		return nil, badParams("at most " + strconv.Itoa(lim.MaxBindings) + " bindings")
	}
	total := 0
	for _, b := range w.Bindings {
		total += len(b)
	}
	if total > lim.MaxBindingsBytes {
		return nil, badParams("bindings longer than " + strconv.Itoa(lim.MaxBindingsBytes) + " bytes in total")
	}

	// Structure is fine; now the curve settings (verify/PROTOCOL.md §2 order).
	method, err := settings.method()
	if err != nil {
		return nil, err
	}

	bindings := make([]string, len(w.Bindings))
	for i, b := range w.Bindings {
		bindings[i] = string(b)
	}
	return &Redemption{
		Token:      token,
		Tag:        tag,
		Bindings:   bindings,
		Method:     method,
		Compressed: w.Compressed.v,
	}, nil
}

// method checks the curve settings of data[2] (verify/PROTOCOL.md §1: only
// P-256 with SHA-256, and a known map).
func (s *wireSettings) method() (Method, error) {
	if !s.Curve.set || s.Curve.s != "p256" {
		return 0, errCurveNotP256
	}
	if !s.Hash.set || s.Hash.s != "sha256" {
		return 0, errHashNotSHA256
	}
	if s.Method.set {
		switch s.Method.s {
		case "increment":
			return Increment, nil
		case "swu":
			return SWU, nil
		}
	}
	return 0, errMethodUnknown
}

// knownSettings memoizes parseSettings for the data[2] texts that shipped
// clients send (the extension's encodings of the two methods). The values
// are computed by decodeSettings itself at init, so this is a cache of the
// JSON parse, not a byte comparison that could ever disagree with it
// (BenchmarkParseParams: 10.2 µs before, 8.2 µs with it).
var knownSettings = func() map[string]wireSettings {
	m := make(map[string]wireSettings)
	for _, method := range []string{"increment", "swu"} {
		text := base64.StdEncoding.EncodeToString([]byte(`{"curve":"p256","hash":"sha256","method":"` + method + `"}`))
		ws, err := decodeSettings(text)
		if err != nil {
			panic("verify: known settings do not parse: " + err.Error())
		}
		m[text] = ws
	}
	return m
}()

// parseSettings decodes data[2]: base64 of a JSON object (verify/PROTOCOL.md
// §1). It is compared as parsed JSON, never as bytes.
func parseSettings(s string) (wireSettings, error) {
	if ws, ok := knownSettings[s]; ok {
		return ws, nil
	}
	return decodeSettings(s)
}

func decodeSettings(s string) (wireSettings, error) {
	var ws wireSettings
	// 1 KiB of JSON is far more than {"curve","hash","method"} needs.
	raw, err := decodeBase64(s, 1024)
	if err != nil {
		return ws, badParams(reasonSettingsBase64)
	}
	if trimmed := bytes.TrimLeft(raw, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return ws, badParams(reasonSettingsObject)
	}
	if err := json.Unmarshal(raw, &ws); err != nil {
		var pe *ParamsError
		if errors.As(err, &pe) {
			return ws, pe
		}
		return ws, badParams(reasonSettingsObject)
	}
	return ws, nil
}

var errTooLong = errors.New("too long")

// decodeBase64 decodes canonical, padded, standard base64 (verify/PROTOCOL.md
// §1: the extension's encoding). Strict() rejects non-zero padding bits, so
// every byte string has exactly one accepted text; Go's decoder silently skips
// '\r' and '\n', so those are refused here. It returns errTooLong without
// decoding when the text cannot fit in max bytes.
func decodeBase64(s string, max int) ([]byte, error) {
	if len(s) > base64.StdEncoding.EncodedLen(max) {
		return nil, errTooLong
	}
	if strings.ContainsAny(s, "\r\n") {
		return nil, base64.CorruptInputError(0)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, errTooLong
	}
	return b, nil
}

// jsonError turns an encoding/json error into a *ParamsError with a fixed
// reason. The JSON error itself is dropped: its text can quote the input.
func jsonError(err error) error {
	var pe *ParamsError
	if errors.As(err, &pe) {
		return pe
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		switch {
		case te.Field == "data" || strings.HasPrefix(te.Field, "data."):
			return badParams(reasonDataShape)
		case te.Field == "bindings" || strings.HasPrefix(te.Field, "bindings."):
			return badParams(reasonBindingsShape)
		case te.Field == "":
			return badParams(reasonNotObject)
		}
	}
	return badParams(reasonNotJSON)
}
