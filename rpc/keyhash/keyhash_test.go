package keyhash

import (
	"crypto/sha256"
	"testing"
)

func TestMatch(t *testing.T) {
	keys := []Key{
		{Name: "alice", Hash: sha256.Sum256([]byte("alice-key"))},
		{Name: "bob", Hash: sha256.Sum256([]byte("bob-key"))},
	}
	for presented, want := range map[string]string{
		"alice-key": "alice", "bob-key": "bob", "carol-key": "", "": "", "alice-key ": "", "ALICE-KEY": "",
	} {
		k, ok := Match(keys, presented)
		if ok != (want != "") || k.Name != want {
			t.Errorf("%q: %+v %v, want %q", presented, k, ok, want)
		}
	}
	if _, ok := Match(nil, "alice-key"); ok {
		t.Error("no keys matched")
	}
	// An empty key's hash configured by mistake still admits nobody
	// without a key.
	if _, ok := Match([]Key{{Name: "empty", Hash: sha256.Sum256(nil)}}, ""); ok {
		t.Error("the empty key matched")
	}
}
