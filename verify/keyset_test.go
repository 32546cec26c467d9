package verify

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// validRedemption is the test key's first increment tuple, which verifies.
func validRedemption(t *testing.T) *Redemption {
	t.Helper()
	v := loadVectors(t).TestKey.Tuples[0]
	return &Redemption{
		Token:    unhex(t, v.TokenHex),
		Tag:      unb64(t, v.TagsB64[0].Tag),
		Bindings: slices.Clone(v.TagsB64[0].Bindings),
		Method:   Increment,
	}
}

func mustKeySet(t *testing.T, keys ...*Key) *KeySet {
	t.Helper()
	ks, err := NewKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func otherKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyNegative(t *testing.T) {
	ks := mustKeySet(t, testKey(t))
	if _, err := ks.Verify(validRedemption(t)); err != nil {
		t.Fatalf("baseline does not verify: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(r *Redemption)
	}{
		{"tag bit 0", func(r *Redemption) { r.Tag[0] ^= 0x01 }},
		{"tag bit 7", func(r *Redemption) { r.Tag[0] ^= 0x80 }},
		{"tag bit 100", func(r *Redemption) { r.Tag[12] ^= 0x10 }},
		{"tag bit 255", func(r *Redemption) { r.Tag[31] ^= 0x80 }},
		{"tag all zero", func(r *Redemption) { r.Tag = make([]byte, 32) }},
		{"tag truncated", func(r *Redemption) { r.Tag = r.Tag[:31] }},
		{"tag extended", func(r *Redemption) { r.Tag = append(r.Tag, 0) }},
		{"tag nil", func(r *Redemption) { r.Tag = nil }},
		{"bindings swapped", func(r *Redemption) { r.Bindings[0], r.Bindings[1] = r.Bindings[1], r.Bindings[0] }},
		{"extra binding", func(r *Redemption) { r.Bindings = append(r.Bindings, "x") }},
		{"extra empty binding", func(r *Redemption) { r.Bindings = append(r.Bindings, "") }}, // same bytes: still valid, see below
		{"binding dropped", func(r *Redemption) { r.Bindings = r.Bindings[:1] }},
		{"binding changed", func(r *Redemption) { r.Bindings[1] = "zo3zzmvq77m3qwch82dytJ" }},
		{"token truncated", func(r *Redemption) { r.Token = r.Token[:31] }},
		{"token extended", func(r *Redemption) { r.Token = append(r.Token, 0) }},
		{"token bit", func(r *Redemption) { r.Token[5] ^= 4 }},
		{"token empty", func(r *Redemption) { r.Token = nil }},
		{"compressed flipped", func(r *Redemption) { r.Compressed = true }},
		{"method swapped", func(r *Redemption) { r.Method = SWU }},
		{"method zero", func(r *Redemption) { r.Method = 0 }},
		{"method unknown", func(r *Redemption) { r.Method = 3 }},
		{"method max", func(r *Redemption) { r.Method = 255 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := validRedemption(t)
			c.mutate(r)
			k, err := ks.Verify(r)
			if c.name == "extra empty binding" {
				// Bindings are concatenated without separators
				// (verify/PROTOCOL.md §6): an empty binding changes nothing.
				if err != nil {
					t.Fatalf("Verify = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, ErrBadTag) || err != ErrBadTag || k != nil {
				t.Fatalf("Verify = %v, %v; want nil, ErrBadTag", k, err)
			}
		})
	}
}

func TestVerifyBindingConcatenation(t *testing.T) {
	// ["ab","c"] and ["a","bc"] have the same tag (verify/PROTOCOL.md §6).
	k := testKey(t)
	tok := []byte("0123456789abcdef0123456789abcdef")
	a, _ := k.Tag(tok, Increment, false, []string{"ab", "c"})
	b, _ := k.Tag(tok, Increment, false, []string{"a", "bc"})
	if !bytes.Equal(a, b) {
		t.Error("concatenation differs")
	}
}

func TestVerifyWrongKey(t *testing.T) {
	ks := mustKeySet(t, otherKey(t))
	if k, err := ks.Verify(validRedemption(t)); err != ErrBadTag || k != nil {
		t.Fatalf("Verify = %v, %v; want ErrBadTag", k, err)
	}
}

func TestVerifyKeyOrder(t *testing.T) {
	tk, ok := testKey(t), otherKey(t)
	g, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, keys := range [][]*Key{{tk}, {ok, tk}, {tk, ok}, {ok, g, tk}, {g, tk, ok}} {
		ks := mustKeySet(t, keys...)
		k, err := ks.Verify(validRedemption(t))
		if err != nil || k != tk {
			t.Errorf("keys %v: Verify = %v, %v; want the test key", keys, k, err)
		}
	}
	// A token minted under the other key verifies under it, in either order.
	tok := []byte("another token")
	tag, err := ok.Tag(tok, SWU, true, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	r := &Redemption{Token: tok, Tag: tag, Bindings: []string{"a"}, Method: SWU, Compressed: true}
	for _, keys := range [][]*Key{{tk, ok}, {ok, tk}} {
		if k, err := mustKeySet(t, keys...).Verify(r); err != nil || k != ok {
			t.Errorf("Verify = %v, %v; want %v", k, err, ok)
		}
	}
}

func TestVerifyNil(t *testing.T) {
	ks := mustKeySet(t, testKey(t))
	if k, err := ks.Verify(nil); err != ErrBadTag || k != nil {
		t.Errorf("Verify(nil) = %v, %v", k, err)
	}
	var nilSet *KeySet
	if k, err := nilSet.Verify(validRedemption(t)); err != ErrBadTag || k != nil {
		t.Errorf("nil KeySet: %v, %v", k, err)
	}
	if k, err := ks.Verify(&Redemption{}); err != ErrBadTag || k != nil {
		t.Errorf("zero Redemption: %v, %v", k, err)
	}
}

func TestNewKeySet(t *testing.T) {
	tk := testKey(t)
	if _, err := NewKeySet(nil); err == nil {
		t.Error("empty set accepted")
	}
	if _, err := NewKeySet([]*Key{tk, testKey(t)}); err == nil {
		t.Error("duplicate key accepted")
	}
	if _, err := NewKeySet([]*Key{tk, nil}); err == nil {
		t.Error("nil key accepted")
	}
	if _, err := NewKeySet([]*Key{new(Key)}); err == nil {
		t.Error("zero Key accepted")
	}

	in := []*Key{otherKey(t), tk}
	ks := mustKeySet(t, in...)
	in[0] = nil // the set keeps its own copy
	got := ks.Keys()
	if len(got) != 2 || got[0] == nil || got[1] != tk {
		t.Fatalf("Keys = %v", got)
	}
	got[0] = nil // and hands out copies
	if ks.Keys()[0] == nil {
		t.Error("Keys aliases the set")
	}
}

func TestVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	r := validRedemption(t)
	count := func(ks *KeySet) float64 {
		return testing.AllocsPerRun(50, func() {
			if _, err := ks.Verify(r); err != nil {
				t.Fatal(err)
			}
		})
	}
	one := count(mustKeySet(t, testKey(t)))
	three := count(mustKeySet(t, otherKey(t), otherKey2(t), testKey(t)))
	t.Logf("allocations: %v (1 key), %v (3 keys)", one, three)
	// The only allocations are crypto/hmac's state for the binding HMAC,
	// keyed per key with the derived key (five with Go 1.26); the request's
	// transcript comes from a pool.
	perKey := (three - one) / 2
	if perKey > 6 {
		t.Errorf("Verify allocates %v times per key", perKey)
	}
	if perRequest := one - perKey; perRequest != 0 {
		t.Errorf("Verify allocates %v times per request beyond the per-key state", perRequest)
	}
}

func otherKey2(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{0x17}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyConcurrent(t *testing.T) {
	ks := mustKeySet(t, otherKey(t), testKey(t))
	good := validRedemption(t)
	bad := validRedemption(t)
	bad.Tag[3] ^= 1
	done := make(chan error)
	for g := range 8 {
		go func() {
			for range 20 {
				r := good
				if g%2 == 1 {
					r = bad
				}
				_, err := ks.Verify(r)
				if (err == nil) != (g%2 == 0) {
					done <- errors.New("wrong verdict under concurrency")
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyDoesNotModifyRequest(t *testing.T) {
	ks := mustKeySet(t, otherKey(t), testKey(t))
	for _, compressed := range []bool{false, true} {
		r := validRedemption(t)
		r.Compressed = compressed
		want := *r
		want.Token, want.Tag, want.Bindings = bytes.Clone(r.Token), bytes.Clone(r.Tag), slices.Clone(r.Bindings)
		ks.Verify(r)
		if !equalRedemptions(r, &want) {
			t.Errorf("Verify changed the request: %+v", r)
		}
	}
}
