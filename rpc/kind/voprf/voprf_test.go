package voprf

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

func params(t *testing.T, p map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func outcome(err error) rpc.Outcome {
	var r *rpc.Refusal
	if errors.As(err, &r) {
		return r.Outcome
	}
	return "not a refusal"
}

func TestVerify(t *testing.T) {
	other := verifytest.NewKey(t)
	s := New(verifytest.KeySet(t, verifytest.Key(), other), verify.Limits{MaxBindings: 3})
	if got := strings.Join(s.KeyIDs(), ","); got != verifytest.Key().ID()+","+other.ID() {
		t.Fatalf("KeyIDs = %s", got)
	}
	for _, m := range []verify.Method{verify.Increment, verify.SWU} {
		tok := verifytest.Mint(t, other, m)
		v, err := s.Verify(params(t, tok.Params()))
		if err != nil || v.KeyID != other.ID() || !bytes.Equal(v.SpendID, tok.Token) {
			t.Fatalf("%s: verdict %+v, %v", m, v, err)
		}
		if len(v.Attrs) != 1 || v.Attrs[0].String() != "method="+m.String() {
			t.Errorf("%s: attrs %v", m, v.Attrs)
		}
	}

	tok := verifytest.Mint(t, other, verify.Increment)
	tok.Tag[0] ^= 1
	v, err := s.Verify(params(t, tok.Params()))
	if outcome(err) != rpc.OutcomeBadTag || !errors.Is(err, verify.ErrBadTag) || v.KeyID != "" || !bytes.Equal(v.SpendID, tok.Token) {
		t.Errorf("bad tag: verdict %+v, %v", v, err)
	}

	tok.Bindings = []string{"a", "b", "c", "d"}
	_, err = s.Verify(params(t, tok.Params()))
	var r *rpc.Refusal
	if !errors.As(err, &r) || r.Outcome != rpc.OutcomeBadParams || !strings.Contains(r.Detail, "3") {
		t.Errorf("over the bindings limit: %v", err)
	}

	p := tok.Params()
	p["data"] = []string{"AAAA", "AAAA", verifytest.Settings("p384", "sha256", "increment")}
	if _, err := s.Verify(params(t, p)); outcome(err) != rpc.OutcomeBadParams {
		t.Errorf("short tag: %v", err)
	}
	tok = verifytest.Mint(t, other, verify.Increment)
	p = tok.Params()
	p["data"] = []string{p["data"].([]string)[0], p["data"].([]string)[1], verifytest.Settings("p384", "sha256", "increment")}
	if _, err := s.Verify(params(t, p)); outcome(err) != rpc.OutcomeUnsupportedCurve || !errors.Is(err, verify.ErrUnsupportedCurve) {
		t.Errorf("p384: %v", err)
	}
}

func TestRefusal(t *testing.T) {
	for _, c := range []struct {
		err     error
		outcome rpc.Outcome
		detail  string
	}{
		{&verify.ParamsError{Reason: "tag must be 32 bytes"}, rpc.OutcomeBadParams, "tag must be 32 bytes"},
		{verify.ErrBadParams, rpc.OutcomeBadParams, ""},
		{verify.ErrUnsupportedCurve, rpc.OutcomeUnsupportedCurve, ""},
		{verify.ErrBadTag, rpc.OutcomeBadTag, ""},
	} {
		var r *rpc.Refusal
		if err := refusal(c.err); !errors.As(err, &r) || r.Outcome != c.outcome || r.Detail != c.detail || !errors.Is(err, c.err) {
			t.Errorf("%v: got %v", c.err, err)
		}
	}
	other := errors.New("something else")
	if err := refusal(other); err != other {
		t.Errorf("an unknown error became %v", err)
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := verifytest.NewKey(t), verifytest.NewKey(t)
	fileA, fileAB := verifytest.WriteKeyFile(t, dir, a), verifytest.WriteKeyFile(t, dir, a, b)
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileB := verifytest.WriteKeyFile(t, dir, b)
	s, err := Load([]string{fileA, fileB}, verify.Limits{})
	if err != nil || strings.Join(s.KeyIDs(), ",") != a.ID()+","+b.ID() || len(s.Keys().Keys()) != 2 {
		t.Fatalf("two files: %v", err)
	}
	for _, bad := range [][]string{{fileA, garbage}, {filepath.Join(dir, "missing.pem")}, {fileA, fileAB}, nil} {
		_, err := Load(bad, verify.Limits{})
		if err == nil {
			t.Errorf("%q loaded", bad)
			continue
		}
		if len(bad) > 0 && bad[len(bad)-1] != fileAB && !strings.Contains(err.Error(), bad[len(bad)-1]) {
			t.Errorf("%q: the error does not name the file: %v", bad, err)
		}
	}
}
