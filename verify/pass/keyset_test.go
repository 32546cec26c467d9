package pass

import (
	"slices"
	"strings"
	"testing"
)

func TestKeySet(t *testing.T) {
	a := loadKey(t, fixturePKCS1)
	b := loadKey(t, fixturePKCS8)
	in := map[string][]*Key{claimAge: {a, b}}
	ks, err := NewKeySet(in)
	if err != nil {
		t.Fatal(err)
	}
	in[claimAge][0] = b // the set keeps its own copy
	if k, ok := ks.Active(claimAge); !ok || k != a {
		t.Error("Active is not the first key")
	}
	if got := ks.Keys(claimAge); !slices.Equal(got, []*Key{a, b}) {
		t.Errorf("Keys = %v", got)
	}
	for _, k := range []*Key{a, b} {
		got, ct, ok := ks.Lookup(k.TokenKeyID())
		if !ok || got != k || ct != claimAge {
			t.Errorf("Lookup(%s) = %v %q %v", k, got, ct, ok)
		}
	}
	if _, _, ok := ks.activeKey(b.TokenKeyID()); ok {
		t.Error("a redeem-only key is active")
	}
	if k, ct, ok := ks.activeKey(a.TokenKeyID()); !ok || k != a || ct != claimAge {
		t.Error("the active key is not active")
	}
	if _, _, ok := ks.Lookup(a.ID()); ok {
		t.Error("Lookup by store ID")
	}
	if _, ok := ks.Active("nope"); ok {
		t.Error("Active of an unknown claim type")
	}
	if ks.Keys("nope") != nil {
		t.Error("Keys of an unknown claim type")
	}
	if got := ks.ClaimTypes(); !slices.Equal(got, []string{claimAge}) {
		t.Errorf("ClaimTypes = %v", got)
	}
	var nilSet *KeySet
	if nilSet.ClaimTypes() != nil {
		t.Error("nil set has claim types")
	}
}

func TestNewKeySetRefusals(t *testing.T) {
	a := loadKey(t, fixturePKCS1)
	b := loadKey(t, fixturePKCS8)
	cases := []struct {
		name string
		in   map[string][]*Key
		want string
	}{
		{"empty", nil, "at least one claim type"},
		{"claim type without keys", map[string][]*Key{claimAge: nil}, "has no keys"},
		{"empty claim type", map[string][]*Key{"": {a}}, "want 1 to 64"},
		{"claim type with space", map[string][]*Key{"age over18": {a}}, "want 1 to 64"},
		{"claim type with =", map[string][]*Key{"a=b": {a}}, "want 1 to 64"},
		{"claim type too long", map[string][]*Key{strings.Repeat("a", 65): {a}}, "want 1 to 64"},
		{"same key twice", map[string][]*Key{claimAge: {a, a}}, "listed twice"},
		{"same key in two claim types", map[string][]*Key{claimAge: {a}, claimOther: {b, a}}, "listed twice"},
		{"nil key", map[string][]*Key{claimAge: {nil}}, "not made by"},
	}
	for _, c := range cases {
		_, err := NewKeySet(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// Valid names.
	if _, err := NewKeySet(map[string][]*Key{"Age.Over-18_UK": {a}, strings.Repeat("z", 64): {b}}); err != nil {
		t.Error(err)
	}
}

func TestNewKeySetStoreIDCollision(t *testing.T) {
	a := loadKey(t, fixturePKCS1)
	b := loadKey(t, fixturePKCS8)
	// Forge the 2^-64 event: b's store ID made equal to a's.
	forged := *b
	forged.id = a.id
	_, err := NewKeySet(map[string][]*Key{claimAge: {a}, claimOther: {&forged}})
	if err == nil || !strings.Contains(err.Error(), "share the store ID") {
		t.Errorf("store ID collision: %v", err)
	}
}
