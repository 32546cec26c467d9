package passclient_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/cloudflare/circl/blindsign/blindrsa"

	"github.com/ppredeem/ppredeem/rpc/gateway/passclient"
)

// A provider's test builds a pass with this independent client: it hands
// over its challenge and token key, and signs blinded tokens with its own
// key (here circl's signer stands in for the provider).
func ExampleIssue() {
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&sk.PublicKey)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(der)
	iss := passclient.Issuance{
		Challenge:  base64.RawURLEncoding.EncodeToString([]byte(`{"token_type":2,"issuer_name":"example","origin_info":"/api/privacy/v1/relays","expires_at":"2030-01-01T10:00:00Z","mac":"opaque"}`)),
		TokenKey:   base64.RawURLEncoding.EncodeToString(der),
		TokenKeyID: hex.EncodeToString(sum[:]),
	}
	sign := func(_ context.Context, blinded []byte, keyID string) ([]byte, error) {
		return blindrsa.NewSigner(sk).BlindSign(blinded)
	}
	pass, err := passclient.Issue(context.Background(), rand.Reader, iss, sign)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(pass.TokenInput), len(pass.Nonce), pass.KeyID == iss.TokenKeyID)
	// Output: 98 64 true
}
