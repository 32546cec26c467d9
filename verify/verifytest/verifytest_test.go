package verifytest

import (
	"testing"

	"github.com/ppredeem/ppredeem/verify"
)

func TestKeyIsTheTestKey(t *testing.T) {
	// The test key's ID: the first 8 bytes of SHA-256 over commitment_H_hex
	// of the shared vectors (verify/PROTOCOL.md §8).
	if got, want := Key().ID(), "0b4ef6b6786ca08d"; got != want {
		t.Fatalf("test key ID %s, want %s", got, want)
	}
}

func TestVectorVerifies(t *testing.T) {
	ks := KeySet(t, Key())
	tok := Vector()
	k, err := ks.Verify(&verify.Redemption{Token: tok.Token, Tag: tok.Tag, Bindings: tok.Bindings, Method: tok.Method})
	if err != nil || k.ID() != Key().ID() {
		t.Fatalf("the published vector does not verify under the test key: %v", err)
	}
}

func TestMintedTokensVerify(t *testing.T) {
	other := NewKey(t)
	ks := KeySet(t, Key(), other)
	for _, m := range []verify.Method{verify.Increment, verify.SWU} {
		for _, compressed := range []bool{false, true} {
			tok := MintFor(t, other, m, compressed, []string{"a", "b"})
			red := &verify.Redemption{Token: tok.Token, Tag: tok.Tag, Bindings: tok.Bindings, Method: m, Compressed: compressed}
			if k, err := ks.Verify(red); err != nil || k.ID() != other.ID() {
				t.Errorf("%s compressed=%v: %v", m, compressed, err)
			}
			red.Bindings = []string{"ab"} // same bytes, so the same tag
			if _, err := ks.Verify(red); err != nil {
				t.Errorf("%s: bindings are hashed without separators: %v", m, err)
			}
			red.Bindings = []string{"a", "c"}
			if _, err := ks.Verify(red); err == nil {
				t.Errorf("%s: a token verified for other bindings", m)
			}
		}
	}
}

// TestPublicTestKeyID: verify names the public test key by this key's ID.
func TestPublicTestKeyID(t *testing.T) {
	if got := Key().ID(); got != verify.PublicTestKeyID {
		t.Fatalf("the test key's ID is %s, verify.PublicTestKeyID %s", got, verify.PublicTestKeyID)
	}
}
