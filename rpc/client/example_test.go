package client_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/ppredeem/ppredeem/rpc"
	"github.com/ppredeem/ppredeem/rpc/client"
	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/verify"
)

// A gateway redeems the token a browser presented, bound to the request's
// host and "METHOD path", and serves the request only on success.
func ExampleClient_Redeem() {
	endpoint, stop := exampleServer() // a ppredeem server with the test key
	defer stop()

	c, err := client.New(endpoint, nil)
	if err != nil {
		log.Fatal(err)
	}

	// What the browser sent (a published test vector of the test key).
	token, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	tag, _ := base64.StdEncoding.DecodeString("8toXDPdSF4sDOH4Jk3zfKJI85ziIGiAMjvgEsx05vEo=")
	bindings := []string{"www.example.com", "GET /"}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		err := c.Redeem(ctx, token, tag, bindings, nil)
		var e *client.Error
		switch {
		case err == nil:
			fmt.Println("redeemed: serve the request")
		case errors.Is(err, client.ErrAlreadySpent):
			errors.As(err, &e)
			fmt.Printf("refused: already spent (code %d, HTTP %d)\n", e.Code, e.HTTPStatus)
		case errors.Is(err, client.ErrAmbiguous):
			// The token may have been spent by this very request: do not
			// redeem it again; fail the request or ask for a new token.
			fmt.Println("outcome unknown")
		case errors.Is(err, client.ErrNotSent):
			// The server was unreachable; the token is still good.
			fmt.Println("server unavailable")
		default:
			fmt.Println("refused:", err)
		}
	}
	// Output:
	// redeemed: serve the request
	// refused: already spent (code -32021, HTTP 403)
}

// exampleServer starts the real ppredeem handler with the test key and a
// bbolt store in a temporary directory.
func exampleServer() (endpoint string, stop func()) {
	pemBytes, err := os.ReadFile(filepath.Join("testdata", "test_key.pem"))
	if err != nil {
		log.Fatal(err)
	}
	keys, err := verify.ParseKeysPEM(pemBytes)
	if err != nil {
		log.Fatal(err)
	}
	ks, err := verify.NewKeySet(keys)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "ppredeem-client-example")
	if err != nil {
		log.Fatal(err)
	}
	store, err := spend.OpenBolt(spend.BoltConfig{Path: filepath.Join(dir, "spent.db")})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.PrepareKeys(context.Background(), []string{keys[0].ID()}); err != nil {
		log.Fatal(err)
	}
	h, err := rpc.NewHandler(rpc.Options{Keys: func() *verify.KeySet { return ks }, Spender: store, Ready: store.Ping})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	return srv.URL + rpc.RedeemPath, func() {
		srv.Close()
		store.Close()
		os.RemoveAll(dir)
	}
}
