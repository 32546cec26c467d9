package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestNamedHashLists: issue_keys, api_keys and verifier_keys are parsed by
// one parser: the same entries are refused with the same messages, every
// bad entry is reported, and no message quotes a hash.
func TestNamedHashLists(t *testing.T) {
	h, h2 := hashOf("k"), hashOf("k2")
	parsers := map[string]func(list []string) ([]NamedHash, error){
		"issue_keys": func(list []string) ([]NamedHash, error) {
			return (&Config{Issue: Issue{Keys: list}}).Attesters()
		},
		"api_keys":      func(list []string) ([]NamedHash, error) { return (&Relay{APIKeys: list}).APIKeyHashes() },
		"verifier_keys": func(list []string) ([]NamedHash, error) { return (&Relay{VerifierKeys: list}).VerifierKeyHashes() },
	}
	bad := []struct {
		list []string
		want []string
	}{
		{[]string{h}, []string{"entry 1 is not NAME=SHA256HEX"}},
		{[]string{"a=" + h, "b c=" + h2}, []string{"entry 2: the name must be 1 to 64 letters"}},
		{[]string{"a=" + strings.ToUpper(h)}, []string{"a: the hash must be 64 lowercase hex digits"}},
		{[]string{"a=" + h[:62]}, []string{"a: the hash must be 64 lowercase hex digits"}},
		{[]string{"a=" + h, "a=" + h2}, []string{"a is listed twice"}},
		{[]string{"a=" + h, "b=" + h}, []string{"b has the same key as a"}},
		{[]string{"=" + h, "c=zz"}, []string{"entry 1: the name", "c: the hash"}},
	}
	for key, parse := range parsers {
		for _, c := range bad {
			got, err := parse(c.list)
			if err == nil || got != nil {
				t.Errorf("%s %q: got %v, %v; want an error", key, c.list, got, err)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), key+": "+w) {
					t.Errorf("%s %q: %q does not say %q", key, c.list, err, key+": "+w)
				}
			}
			if strings.Contains(err.Error(), h[:16]) || strings.Contains(err.Error(), h2[:16]) {
				t.Errorf("%s %q: the error quotes a hash: %v", key, c.list, err)
			}
		}
		got, err := parse([]string{" a = " + h + " ,b=" + h2})
		if err != nil || len(got) != 2 || got[0].Name != "a" || fmt.Sprintf("%x", got[0].Hash) != h || got[1].Name != "b" {
			t.Errorf("%s: got %+v, %v", key, got, err)
		}
	}
}
