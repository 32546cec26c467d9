package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"testing"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
	"github.com/ppredeem/ppredeem/verify"
	"github.com/ppredeem/ppredeem/verify/verifytest"
)

// The README's issuance example: testdata/issue-request.json asks for one
// token, t = 20 21 … 3f blinded with r = 01 02 … 20, signed under the
// test key by the attester "demo" whose key is "demo-key".
const (
	readmeIssueRequest = "testdata/issue-request.json"
	readmeTag          = "qY1ic9wEFHzDSv8gmjRxDpAASV7hK9ZSqxxKLOiw3F8=" // bound to example.com, GET /
	readmeSignedPoint  = "BNQUQzpyVFpngawIH6MLYasFYvi6Ki6rNLFxXnUzC+6Mt0iCDromJF+CAfuuxxhagfhN/+ZLJXn7AICwLvg1fwI="
)

func readmeToken() (t, r []byte) {
	t, r = make([]byte, 32), make([]byte, 32)
	for i := range t {
		t[i], r[i] = byte(0x20+i), byte(1+i)
	}
	return t, r
}

// TestREADMEIssueExample: the request file is what the README says, and
// the server's answer to it verifies, holds the documented signed point,
// and unblinds into a token that redeems.
func TestREADMEIssueExample(t *testing.T) {
	tok, r := readmeToken()
	blind, err := rpctest.BlindWith(tok, r)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(readmeIssueRequest)
	if err != nil {
		t.Fatal(err)
	}
	if want := rpctest.IssueJSON(rpctest.IssueText([][]byte{blind.Blinded})); string(bytes.TrimSpace(file)) != want {
		t.Fatalf("%s holds %s, want %s", readmeIssueRequest, file, want)
	}
	demo := fmt.Sprintf("demo=%x", sha256.Sum256([]byte("demo-key")))
	srv := startServer(t, newConfig(t, "--data-dir", t.TempDir(), "--keys", testKeyFile, "--issue-keys", demo))
	a, err := rpctest.Issue(context.Background(), srv.base+"/api/issue", "application/json", "demo-key", string(file))
	if err != nil || a.Status != 200 {
		t.Fatalf("%v HTTP %d %s", err, a.Status, a.Body)
	}
	cs, err := rpctest.Commitments(context.Background(), srv.base+"/api/commitments")
	if err != nil || len(cs) != 1 {
		t.Fatal(cs, err)
	}
	got, err := verify.VerifyIssueResponse(cs[0].G, cs[0].H, [][]byte{blind.Blinded}, a.Signatures)
	if err != nil || got.Version != verifytest.Key().ID() {
		t.Fatalf("%+v %v", got, err)
	}
	if z := base64.StdEncoding.EncodeToString(got.Signatures[0]); z != readmeSignedPoint {
		t.Errorf("signed point %s, the README says %s", z, readmeSignedPoint)
	}
	redeemed, err := blind.Unblind(got.Signatures[0], []string{"example.com", "GET /"})
	if err != nil {
		t.Fatal(err)
	}
	if tag := base64.StdEncoding.EncodeToString(redeemed.Tag); tag != readmeTag {
		t.Errorf("tag %s, the README says %s", tag, readmeTag)
	}
	if _, r := post(t, srv.url, rpctest.Redeem(1, redeemed)); r.Code() != "success" {
		t.Fatalf("the README's issued token: %s", r.Code())
	}
}
