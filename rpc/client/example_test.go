package client_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/ppredeem/ppredeem/rpc/client"
	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// A gateway redeems the token a browser presented, bound to the request's
// host and "METHOD path", and serves the request only on success.
func ExampleClient_Redeem() {
	srv, err := rpctest.Start(rpctest.Options{}) // a ppredeem server with the test key
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := client.New(srv.Endpoint, nil)
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
