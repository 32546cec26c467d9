package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// Values of the test key's ready_request (testdata/vectors.json).
const (
	tokB64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	tagB64 = "ppGNgiT3m/vUJPnz++mcjS8NVIb+vrcZCTZU75K2yqM="
	// secret-looking bindings: no reason may repeat them.
	bindA = "hushhush-a.example"
	bindB = "hushhush GET /b"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

var (
	setInc = b64(`{"curve":"p256","hash":"sha256","method":"increment"}`)
	setSWU = b64(`{"curve":"p256","hash":"sha256","method":"swu"}`)
)

// expand replaces TOK, TAG, SET, SWU and BIND in a params template.
func expand(tmpl string) string {
	return strings.NewReplacer(
		"TOK", `"`+tokB64+`"`,
		"TAG", `"`+tagB64+`"`,
		"SET", `"`+setInc+`"`,
		"SWU", `"`+setSWU+`"`,
		"BIND", `["`+bindA+`","`+bindB+`"]`,
	).Replace(tmpl)
}

// data3 is a full params object with the given data[2] (base64 of s).
func data3(s string) string {
	return `{"data":[TOK,TAG,"` + b64(s) + `"],"bindings":BIND}`
}

type verdict int

const (
	ok verdict = iota
	bad
	curve
)

func (v verdict) String() string { return [...]string{"ok", "ErrBadParams", "ErrUnsupportedCurve"}[v] }

type paramsCase struct {
	name   string
	params string // template for expand
	lim    Limits
	want   verdict
	reason string // for bad: the exact Reason, if set
	check  func(t *testing.T, r *Redemption)
}

func paramsCases() []paramsCase {
	long := func(n int) string { return `"` + base64.StdEncoding.EncodeToString(make([]byte, n)) + `"` }
	many := func(n int, s string) string {
		b, _ := json.Marshal(slices.Repeat([]string{s}, n))
		return string(b)
	}
	return []paramsCase{
		// Accepted.
		{name: "ready request", params: `{"data":[TOK,TAG,SET],"bindings":BIND}`, check: func(t *testing.T, r *Redemption) {
			if r.Method != Increment || r.Compressed || len(r.Token) != 32 || len(r.Tag) != 32 ||
				!slices.Equal(r.Bindings, []string{bindA, bindB}) {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "two elements mean increment", params: `{"data":[TOK,TAG],"bindings":BIND}`, check: func(t *testing.T, r *Redemption) {
			if r.Method != Increment {
				t.Errorf("method %v", r.Method)
			}
		}},
		{name: "swu", params: `{"data":[TOK,TAG,SWU],"bindings":BIND}`, check: func(t *testing.T, r *Redemption) {
			if r.Method != SWU {
				t.Errorf("method %v", r.Method)
			}
		}},
		{name: "settings parsed as JSON", params: data3(" {\"method\" : \"swu\", \"hash\":\"sha256\",\n\"curve\":\"p256\", \"extra\": [1, {}]} "), check: func(t *testing.T, r *Redemption) {
			if r.Method != SWU {
				t.Errorf("method %v", r.Method)
			}
		}},
		{name: "settings with escapes", params: data3(`{"curve":"p\u0032\u00356","hash":"sha256","method":"increment"}`)},
		{name: "compressed true", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"compressed":true}`, check: func(t *testing.T, r *Redemption) {
			if !r.Compressed {
				t.Error("compressed not set")
			}
		}},
		{name: "compressed false", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"compressed":false}`},
		{name: "member order and whitespace", params: " \n{ \"compressed\" : false , \"bindings\" : BIND , \"data\" : [ TOK , TAG , SET ] }\t\n"},
		{name: "unknown members ignored", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"jsonrpc":"2.0","x":{"y":[null,1.5e3,"z"]},"extra":null}`},
		{name: "empty bindings", params: `{"data":[TOK,TAG,SET],"bindings":[]}`, check: func(t *testing.T, r *Redemption) {
			if r.Bindings == nil || len(r.Bindings) != 0 {
				t.Errorf("bindings %#v", r.Bindings)
			}
		}},
		{name: "bindings with escapes and unicode", params: `{"data":[TOK,TAG,SET],"bindings":["caf\u00e9","café","a\"b\\c\n","\ud83d\ude00"]}`, check: func(t *testing.T, r *Redemption) {
			if !slices.Equal(r.Bindings, []string{"café", "café", "a\"b\\c\n", "😀"}) {
				t.Errorf("bindings %q", r.Bindings)
			}
		}},
		{name: "escaped base64", params: `{"data":["\u0041AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",TAG],"bindings":[]}`},
		{name: "token 1 byte", params: `{"data":["AA==",TAG],"bindings":[]}`},
		{name: "token at limit", params: `{"data":[` + long(256) + `,TAG],"bindings":[]}`},
		{name: "token at custom limit", params: `{"data":[` + long(8) + `,TAG],"bindings":[]}`, lim: Limits{MaxTokenBytes: 8}},
		{name: "32 bindings", params: `{"data":[TOK,TAG],"bindings":` + many(32, "x") + `}`},
		{name: "bindings bytes at limit", params: `{"data":[TOK,TAG],"bindings":` + many(16, strings.Repeat("é", 512)) + `}`},
		{name: "negative limits mean default", params: `{"data":[TOK,TAG],"bindings":` + many(32, "x") + `}`, lim: Limits{-1, -1, -1}},

		// Not JSON, not an object.
		{name: "empty", params: ``, want: bad, reason: reasonNotJSON},
		{name: "whitespace", params: "  \n", want: bad, reason: reasonNotJSON},
		{name: "truncated", params: `{"data":[TOK,TAG,SET],"bindings":BIND`, want: bad, reason: reasonNotJSON},
		{name: "trailing garbage", params: `{"data":[TOK,TAG,SET],"bindings":BIND} x`, want: bad, reason: reasonNotJSON},
		{name: "two objects", params: `{"data":[TOK,TAG,SET],"bindings":BIND}{}`, want: bad, reason: reasonNotJSON},
		{name: "invalid unknown member", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"x":[1,]}`, want: bad, reason: reasonNotJSON},
		{name: "garbage", params: `nul`, want: bad, reason: reasonNotJSON},
		{name: "array", params: `[TOK,TAG,SET]`, want: bad, reason: reasonNotObject},
		{name: "null", params: `null`, want: bad, reason: reasonNotObject},
		{name: "string", params: `"data"`, want: bad, reason: reasonNotObject},
		{name: "number", params: `1`, want: bad, reason: reasonNotObject},
		{name: "true", params: `true`, want: bad, reason: reasonNotObject},

		// data.
		{name: "data missing", params: `{"bindings":BIND}`, want: bad, reason: reasonDataShape},
		{name: "data null", params: `{"data":null,"bindings":BIND}`, want: bad, reason: reasonDataShape},
		{name: "data string", params: `{"data":TOK,"bindings":BIND}`, want: bad, reason: reasonDataShape},
		{name: "data object", params: `{"data":{"0":TOK},"bindings":BIND}`, want: bad, reason: reasonDataShape},
		{name: "data empty", params: `{"data":[],"bindings":BIND}`, want: bad, reason: reasonDataShape},
		{name: "data one element", params: `{"data":[TOK],"bindings":BIND}`, want: bad, reason: reasonDataShape},
		{name: "data four elements", params: `{"data":[TOK,TAG,SET,SET],"bindings":BIND}`, want: bad, reason: reasonDataShape},
		{name: "data element number", params: `{"data":[TOK,1,SET],"bindings":BIND}`, want: bad, reason: reasonDataString},
		{name: "data element null", params: `{"data":[TOK,TAG,null],"bindings":BIND}`, want: bad, reason: reasonDataString},
		{name: "data element object", params: `{"data":[{},TAG],"bindings":BIND}`, want: bad, reason: reasonDataString},
		{name: "data element array", params: `{"data":[[TOK],TAG],"bindings":BIND}`, want: bad, reason: reasonDataString},

		// data[0], the token.
		{name: "token empty", params: `{"data":["",TAG],"bindings":[]}`, want: bad, reason: reasonTokenEmpty},
		{name: "token not base64", params: `{"data":["!!!!",TAG],"bindings":[]}`, want: bad, reason: reasonTokenBase64},
		{name: "token url-safe base64", params: `{"data":["-_-_",TAG],"bindings":[]}`, want: bad, reason: reasonTokenBase64},
		{name: "token unpadded", params: `{"data":["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",TAG],"bindings":[]}`, want: bad, reason: reasonTokenBase64},
		{name: "token non-canonical padding bits", params: `{"data":["AB==",TAG],"bindings":[]}`, want: bad, reason: reasonTokenBase64},
		{name: "token with newline", params: `{"data":["AAECAwQFBgcICQoLDA0ODxAREhMU\nFRYXGBkaGxwdHh8=",TAG],"bindings":[]}`, want: bad, reason: reasonTokenBase64},
		{name: "token with CRLF at end", params: `{"data":["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n",TAG],"bindings":[]}`, want: bad, reason: reasonTokenBase64},
		{name: "token with space", params: `{"data":["AAEC AwQF",TAG],"bindings":[]}`, want: bad, reason: reasonTokenBase64},
		{name: "token too long", params: `{"data":[` + long(257) + `,TAG],"bindings":[]}`, want: bad, reason: "token longer than 256 bytes"},
		{name: "token over custom limit", params: `{"data":[` + long(9) + `,TAG],"bindings":[]}`, lim: Limits{MaxTokenBytes: 8}, want: bad, reason: "token longer than 8 bytes"},
		{name: "token huge", params: `{"data":[` + long(1<<16) + `,TAG],"bindings":[]}`, want: bad, reason: "token longer than 256 bytes"},

		// data[1], the tag.
		{name: "tag 31 bytes", params: `{"data":[TOK,` + long(31) + `],"bindings":[]}`, want: bad, reason: reasonTagLen},
		{name: "tag 33 bytes", params: `{"data":[TOK,` + long(33) + `],"bindings":[]}`, want: bad, reason: reasonTagLen},
		{name: "tag empty", params: `{"data":[TOK,""],"bindings":[]}`, want: bad, reason: reasonTagLen},
		{name: "tag huge", params: `{"data":[TOK,` + long(4096) + `],"bindings":[]}`, want: bad, reason: reasonTagLen},
		{name: "tag not base64", params: `{"data":[TOK,"ppGNgiT3m/vUJPnz++mcjS8NVIb+vrcZCTZU75K2yq*="],"bindings":[]}`, want: bad, reason: reasonTagBase64},
		{name: "tag non-canonical", params: `{"data":[TOK,"ppGNgiT3m/vUJPnz++mcjS8NVIb+vrcZCTZU75K2yqN="],"bindings":[]}`, want: bad, reason: reasonTagBase64},

		// data[2], the curve settings: structure first.
		{name: "settings not base64", params: `{"data":[TOK,TAG,"{\"curve\":\"p256\"}"],"bindings":BIND}`, want: bad, reason: reasonSettingsBase64},
		{name: "settings with newline", params: `{"data":[TOK,TAG,"` + setInc[:20] + `\n` + setInc[20:] + `"],"bindings":BIND}`, want: bad, reason: reasonSettingsBase64},
		{name: "settings empty", params: `{"data":[TOK,TAG,""],"bindings":BIND}`, want: bad, reason: reasonSettingsObject},
		{name: "settings array", params: data3(`["p256","sha256","increment"]`), want: bad, reason: reasonSettingsObject},
		{name: "settings null", params: data3(`null`), want: bad, reason: reasonSettingsObject},
		{name: "settings string", params: data3(`"p256"`), want: bad, reason: reasonSettingsObject},
		{name: "settings not JSON", params: data3(`{"curve":"p256",`), want: bad, reason: reasonSettingsObject},
		{name: "settings trailing garbage", params: data3(`{"curve":"p256","hash":"sha256","method":"increment"} x`), want: bad, reason: reasonSettingsObject},
		{name: "settings curve number", params: data3(`{"curve":256,"hash":"sha256","method":"increment"}`), want: bad, reason: reasonSettingsStrings},
		{name: "settings curve null", params: data3(`{"curve":null,"hash":"sha256","method":"increment"}`), want: bad, reason: reasonSettingsStrings},
		{name: "settings method array", params: data3(`{"curve":"p256","hash":"sha256","method":["increment"]}`), want: bad, reason: reasonSettingsStrings},
		{name: "settings hash bool", params: data3(`{"curve":"p256","hash":true,"method":"increment"}`), want: bad, reason: reasonSettingsStrings},
		{name: "settings invalid UTF-8", params: data3("{\"curve\":\"p256\xff\",\"hash\":\"sha256\",\"method\":\"increment\"}"), want: bad, reason: reasonSettingsStrings},

		// bindings.
		{name: "bindings missing", params: `{"data":[TOK,TAG,SET]}`, want: bad, reason: reasonBindingsShape},
		{name: "bindings null", params: `{"data":[TOK,TAG,SET],"bindings":null}`, want: bad, reason: reasonBindingsShape},
		{name: "bindings string", params: `{"data":[TOK,TAG,SET],"bindings":"` + bindA + `"}`, want: bad, reason: reasonBindingsShape},
		{name: "bindings object", params: `{"data":[TOK,TAG,SET],"bindings":{"a":"` + bindA + `"}}`, want: bad, reason: reasonBindingsShape},
		{name: "bindings number element", params: `{"data":[TOK,TAG,SET],"bindings":["` + bindA + `",1]}`, want: bad, reason: reasonBindingsShape},
		{name: "bindings null element", params: `{"data":[TOK,TAG,SET],"bindings":["` + bindA + `",null]}`, want: bad, reason: reasonBindingsShape},
		{name: "bindings bool element", params: `{"data":[TOK,TAG,SET],"bindings":[true]}`, want: bad, reason: reasonBindingsShape},
		{name: "bindings nested array", params: `{"data":[TOK,TAG,SET],"bindings":[["` + bindA + `"]]}`, want: bad, reason: reasonBindingsShape},
		{name: "bindings invalid UTF-8", params: "{\"data\":[TOK,TAG,SET],\"bindings\":[\"" + bindA + "\xff\"]}", want: bad, reason: reasonBindingsUTF8},
		{name: "bindings invalid UTF-8 with escape", params: "{\"data\":[TOK,TAG,SET],\"bindings\":[\"\\n" + bindA + "\xc3\"]}", want: bad, reason: reasonBindingsUTF8},
		{name: "33 bindings", params: `{"data":[TOK,TAG],"bindings":` + many(33, bindA) + `}`, want: bad, reason: "at most 32 bindings"},
		{name: "3 bindings over custom limit", params: `{"data":[TOK,TAG],"bindings":` + many(3, bindA) + `}`, lim: Limits{MaxBindings: 2}, want: bad, reason: "at most 2 bindings"},
		{name: "bindings bytes over limit", params: `{"data":[TOK,TAG],"bindings":` + many(16, strings.Repeat("é", 512)) + `,"x":["a"]}`, lim: Limits{MaxBindingsBytes: 16383}, want: bad, reason: "bindings longer than 16383 bytes in total"},
		{name: "bindings bytes over default", params: `{"data":[TOK,TAG],"bindings":["` + strings.Repeat(bindA, 1171) + `"]}`, want: bad, reason: "bindings longer than 16384 bytes in total"},

		// compressed.
		{name: "compressed null", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"compressed":null}`, want: bad, reason: reasonCompressed},
		{name: "compressed string", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"compressed":"true"}`, want: bad, reason: reasonCompressed},
		{name: "compressed number", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"compressed":1}`, want: bad, reason: reasonCompressed},
		{name: "compressed zero", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"compressed":0}`, want: bad, reason: reasonCompressed},
		{name: "compressed object", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"compressed":{}}`, want: bad, reason: reasonCompressed},
		{name: "compressed array", params: `{"data":[TOK,TAG,SET],"bindings":BIND,"compressed":[true]}`, want: bad, reason: reasonCompressed},

		// Curve settings, once the structure is fine.
		{name: "curve p384", params: data3(`{"curve":"p384","hash":"sha256","method":"increment"}`), want: curve},
		{name: "curve upper case", params: data3(`{"curve":"P256","hash":"sha256","method":"increment"}`), want: curve},
		{name: "curve missing", params: data3(`{"hash":"sha256","method":"increment"}`), want: curve},
		{name: "hash sha512", params: data3(`{"curve":"p256","hash":"sha512","method":"increment"}`), want: curve},
		{name: "hash missing", params: data3(`{"curve":"p256","method":"increment"}`), want: curve},
		{name: "method unknown", params: data3(`{"curve":"p256","hash":"sha256","method":"sswu"}`), want: curve},
		{name: "method empty", params: data3(`{"curve":"p256","hash":"sha256","method":""}`), want: curve},
		{name: "method missing", params: data3(`{"curve":"p256","hash":"sha256"}`), want: curve},
		{name: "settings empty object", params: data3(`{}`), want: curve},
		{name: "settings with padding", params: data3(` {"curve":"p256 ","hash":"sha256","method":"increment"}`), want: curve},

		// Order: structure before curve settings (verify/PROTOCOL.md §2).
		{name: "bad curve and no bindings", params: `{"data":[TOK,TAG,"` + b64(`{"curve":"p384"}`) + `"]}`, want: bad, reason: reasonBindingsShape},
		{name: "bad curve and compressed null", params: `{"data":[TOK,TAG,"` + b64(`{"curve":"p384"}`) + `"],"bindings":[],"compressed":null}`, want: bad, reason: reasonCompressed},
		{name: "bad curve and long token", params: `{"data":[` + long(300) + `,TAG,"` + b64(`{"curve":"p384"}`) + `"],"bindings":[]}`, want: bad, reason: "token longer than 256 bytes"},
		{name: "bad curve and bad tag", params: `{"data":[TOK,"AA==","` + b64(`{"curve":"p384"}`) + `"],"bindings":[]}`, want: bad, reason: reasonTagLen},
		{name: "bad curve and too many bindings", params: `{"data":[TOK,TAG,"` + b64(`{"curve":"p384"}`) + `"],"bindings":` + many(40, "x") + `}`, want: bad, reason: "at most 32 bindings"},
	}
}

func TestParseParams(t *testing.T) {
	secrets := []string{tokB64, tagB64, bindA, bindB, "AAECAwQF", "ppGNgiT3"}
	for _, c := range paramsCases() {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseParams([]byte(expand(c.params)), c.lim)
			got := ok
			switch {
			case err == nil:
			case errors.Is(err, ErrBadParams) && !errors.Is(err, ErrUnsupportedCurve):
				got = bad
			case errors.Is(err, ErrUnsupportedCurve) && !errors.Is(err, ErrBadParams):
				got = curve
			default:
				t.Fatalf("error %v is neither ErrBadParams nor ErrUnsupportedCurve", err)
			}
			if got != c.want {
				t.Fatalf("got %v (%v), want %v", got, err, c.want)
			}
			if err != nil {
				if r != nil {
					t.Errorf("non-nil result with error")
				}
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains request data %q", err, s)
					}
				}
			}
			if got == bad {
				var pe *ParamsError
				if !errors.As(err, &pe) {
					t.Fatalf("%T is not a *ParamsError", err)
				}
				if c.reason != "" && pe.Reason != c.reason {
					t.Errorf("reason %q, want %q", pe.Reason, c.reason)
				}
				if err.Error() != "invalid params: "+pe.Reason {
					t.Errorf("Error() = %q", err.Error())
				}
			}
			if got == ok {
				checkLimits(t, r, c.lim)
				if c.check != nil {
					c.check(t, r)
				}
			}
		})
	}
}

func checkLimits(t testing.TB, r *Redemption, lim Limits) {
	t.Helper()
	lim = lim.withDefaults()
	if len(r.Token) == 0 || len(r.Token) > lim.MaxTokenBytes {
		t.Errorf("token of %d bytes", len(r.Token))
	}
	if len(r.Tag) != 32 {
		t.Errorf("tag of %d bytes", len(r.Tag))
	}
	if r.Bindings == nil || len(r.Bindings) > lim.MaxBindings {
		t.Errorf("%d bindings (nil: %v)", len(r.Bindings), r.Bindings == nil)
	}
	n := 0
	for _, b := range r.Bindings {
		n += len(b)
	}
	if n > lim.MaxBindingsBytes {
		t.Errorf("%d bytes of bindings", n)
	}
	if r.Method != Increment && r.Method != SWU {
		t.Errorf("method %v", r.Method)
	}
}

func TestParseParamsTwoEncodingsOneToken(t *testing.T) {
	// A JSON escape in the base64 text gives the same token bytes: the spend
	// identity is the decoded token, never the request text (verify/PROTOCOL.md §6).
	a, err1 := ParseParams([]byte(expand(`{"data":[TOK,TAG],"bindings":[]}`)), Limits{})
	b, err2 := ParseParams([]byte(expand(`{"data":["\u0041AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",TAG],"bindings":[]}`)), Limits{})
	if err1 != nil || err2 != nil || !bytes.Equal(a.Token, b.Token) {
		t.Fatalf("%v %v", err1, err2)
	}
}

func TestParamsErrorText(t *testing.T) {
	e := &ParamsError{Reason: "tag must be 32 bytes"}
	if e.Error() != "invalid params: tag must be 32 bytes" || !errors.Is(e, ErrBadParams) || errors.Is(e, ErrUnsupportedCurve) {
		t.Errorf("%v", e)
	}
	if !errors.Is(errCurveNotP256, ErrUnsupportedCurve) || errors.Is(errCurveNotP256, ErrBadParams) {
		t.Error("curve error does not unwrap to ErrUnsupportedCurve")
	}
}

func TestMethodString(t *testing.T) {
	for m, want := range map[Method]string{Increment: "increment", SWU: "swu", 0: "Method(0)", 7: "Method(7)", 255: "Method(255)"} {
		if got := m.String(); got != want {
			t.Errorf("%d: %q, want %q", m, got, want)
		}
	}
}
