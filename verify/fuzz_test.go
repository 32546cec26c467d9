package verify

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
)

// knownReasons is every Reason ParseParams can give under DefaultLimits(). A
// reason outside this set could be carrying request data.
func knownReasons() map[string]bool {
	m := map[string]bool{
		"token longer than " + strconv.Itoa(DefaultLimits().MaxTokenBytes) + " bytes":                true,
		"at most " + strconv.Itoa(DefaultLimits().MaxBindings) + " bindings":                         true,
		"bindings longer than " + strconv.Itoa(DefaultLimits().MaxBindingsBytes) + " bytes in total": true,
	}
	for _, r := range []string{
		reasonNotObject, reasonNotJSON, reasonDataShape, reasonDataString, reasonTokenBase64,
		reasonTokenEmpty, reasonTagBase64, reasonTagLen, reasonSettingsBase64, reasonSettingsObject,
		reasonSettingsStrings, reasonBindingsShape, reasonBindingsUTF8, reasonCompressed,
	} {
		m[r] = true
	}
	return m
}

// encodeParams is the inverse of ParseParams.
func encodeParams(tb testing.TB, r *Redemption) []byte {
	settings, err := json.Marshal(map[string]string{"curve": "p256", "hash": "sha256", "method": r.Method.String()})
	if err != nil {
		tb.Fatal(err)
	}
	out, err := json.Marshal(map[string]any{
		"data": []string{
			base64.StdEncoding.EncodeToString(r.Token),
			base64.StdEncoding.EncodeToString(r.Tag),
			base64.StdEncoding.EncodeToString(settings),
		},
		"bindings":   r.Bindings,
		"compressed": r.Compressed,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func equalRedemptions(a, b *Redemption) bool {
	return bytes.Equal(a.Token, b.Token) && bytes.Equal(a.Tag, b.Tag) &&
		slices.Equal(a.Bindings, b.Bindings) && a.Method == b.Method && a.Compressed == b.Compressed
}

func FuzzParseParams(f *testing.F) {
	v := loadVectors(f)
	f.Add([]byte(v.TestKey.ReadyRequest.Params))
	f.Add([]byte(v.Published.Readme.Request.Params))
	for _, c := range paramsCases() {
		// Large seeds make the fuzzer's minimisation of every new input
		// they lead to crawl; the table test covers them.
		if p := expand(c.params); len(p) <= 2048 {
			f.Add([]byte(p))
		}
	}
	reasons := knownReasons()

	f.Fuzz(func(t *testing.T, params []byte) {
		r, err := ParseParams(params, Limits{})
		if err != nil {
			if r != nil {
				t.Fatal("result with error")
			}
			isBad, isCurve := errors.Is(err, ErrBadParams), errors.Is(err, ErrUnsupportedCurve)
			if isBad == isCurve {
				t.Fatalf("error %v: ErrBadParams %v, ErrUnsupportedCurve %v", err, isBad, isCurve)
			}
			if isBad {
				var pe *ParamsError
				if !errors.As(err, &pe) || !reasons[pe.Reason] {
					t.Fatalf("unexpected reason in %v", err)
				}
			}
			return
		}
		checkLimits(t, r, Limits{})
		again, err := ParseParams(encodeParams(t, r), Limits{})
		if err != nil {
			t.Fatalf("re-encoded params do not parse: %v", err)
		}
		if !equalRedemptions(r, again) {
			t.Fatalf("round trip changed %+v into %+v", r, again)
		}
	})
}

func FuzzVerify(f *testing.F) {
	for _, tu := range loadVectors(f).TestKey.Tuples {
		for _, tg := range tu.TagsB64 {
			b := append(tg.Bindings, "", "")
			m := byte(Increment)
			if tu.Method == "swu" {
				m = byte(SWU)
			}
			f.Add(unhex(f, tu.TokenHex), unb64(f, tg.Tag), b[0], b[1], m, tu.Compressed)
		}
	}
	f.Add([]byte{}, []byte{}, "", "", byte(0), false)
	f.Add(unhex(f, "000000000000000000000000000000000000000000000000000000000009edb1"), make([]byte, 32), "a", "b", byte(Increment), false)
	k := testKey(f)
	ks, _ := NewKeySet([]*Key{otherKey2(f), k})

	f.Fuzz(func(t *testing.T, token, tag []byte, b1, b2 string, method byte, compressed bool) {
		r := &Redemption{Token: token, Tag: tag, Bindings: []string{b1, b2}, Method: Method(method), Compressed: compressed}
		got, err := ks.Verify(r)
		if err != nil && err != ErrBadTag {
			t.Fatalf("Verify error %v", err)
		}
		want, terr := k.Tag(token, Method(method), compressed, r.Bindings)
		if err == nil && (got != k || terr != nil || !bytes.Equal(want, tag)) {
			t.Fatalf("Verify accepted a tag Key.Tag does not make")
		}
		if terr != nil {
			return
		}
		r.Tag = want
		if got, err := ks.Verify(r); err != nil || got != k {
			t.Fatalf("Verify rejects the tag Key.Tag makes: %v", err)
		}
	})
}
