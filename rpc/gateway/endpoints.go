package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/http"

	"github.com/ppredeem/ppredeem/rpc/gateway/passclient"
)

// createRelay serves POST /relays: forward to POST /api/privacy/v1/relays.
func (h *Handler) createRelay(w http.ResponseWriter, r *http.Request) error {
	o, err := h.readObject(r)
	if err != nil {
		return err
	}
	claimType, err := requiredClaimType(o)
	if err != nil {
		return err
	}
	keyPEM, hasKey, err := o.str("encryption-key-pem", "encryptionKeyPem")
	if err != nil {
		return malformed(err)
	}
	sandbox, hasSandbox, err := o.boolean("sandbox", "sandbox")
	if err != nil {
		return malformed(err)
	}
	req := relayRequest{ClaimType: claimType}
	if hasKey {
		req.EncryptionKeyPEM = &keyPEM
	}
	if hasSandbox {
		req.Sandbox = &sandbox
	}
	answer, err := h.up.do(r.Context(), call{name: "create_relay", path: pathRelays, body: marshal(req)})
	if err != nil {
		return err
	}
	a := readAnswer(answer, "create_relay")
	res := relayResponse{
		RelayToken:  a.str("relay-token", "relayToken"),
		RelaySecret: a.str("relay-secret", "relaySecret"),
		AccessToken: a.str("relay-session-access-token", "relaySessionAccessToken"),
	}
	if err := a.check(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, marshal(res))
	return nil
}

// relayRequest is the body of POST /api/privacy/v1/relays. The key is
// always sent (null without one); sandbox only when the caller gave it.
type relayRequest struct {
	ClaimType        string  `json:"claim-type"`
	EncryptionKeyPEM *string `json:"encryption-key-pem"`
	Sandbox          *bool   `json:"sandbox,omitempty"`
}

type relayResponse struct {
	RelayToken  string `json:"relay-token"`
	RelaySecret string `json:"relay-secret"`
	AccessToken string `json:"relay-session-access-token"`
}

// issuePass serves POST /relays/privacy-passes: get a challenge, build and
// blind the token input, have it signed with the caller's API key, check,
// unblind, verify and assemble the pass (package passclient).
func (h *Handler) issuePass(w http.ResponseWriter, r *http.Request) error {
	apiKey, err := bearerKey(r)
	if err != nil {
		return err
	}
	o, err := h.readObject(r)
	if err != nil {
		return err
	}
	claimType, err := requiredClaimType(o)
	if err != nil {
		return err
	}
	ctx := r.Context()
	answer, err := h.up.do(ctx, call{name: "challenge", path: pathChallenge, body: marshal(challengeRequest{ClaimType: claimType})})
	if err != nil {
		return err
	}
	a := readAnswer(answer, "challenge")
	iss := passclient.Issuance{
		Challenge:  a.str("challenge", "challenge"),
		TokenKey:   a.str("token-key", "tokenKey"),
		TokenKeyID: a.str("token-key-id", "tokenKeyId"),
	}
	if err := a.check(); err != nil {
		return err
	}

	// One key per issuance, the same on every retry: the provider signs and
	// bills a retried request once.
	var k [16]byte
	if _, err := io.ReadFull(h.random, k[:]); err != nil {
		return err
	}
	header := http.Header{
		"Authorization":      {"Bearer " + apiKey},
		IdempotencyKeyHeader: {hex.EncodeToString(k[:])},
	}
	sign := func(ctx context.Context, blinded []byte, keyID string) ([]byte, error) {
		req := signRequest{BlindedToken: base64.RawURLEncoding.EncodeToString(blinded), KeyID: keyID}
		answer, err := h.up.do(ctx, call{name: "sign", path: pathSign, header: header, body: marshal(req)})
		if err != nil {
			return nil, err
		}
		a := readAnswer(answer, "sign")
		sig := a.base64URL("blind-sig", "blindSig")
		return sig, a.check()
	}
	pass, err := passclient.Issue(ctx, h.random, iss, sign)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, marshal(passResponse{Token: pass.Token}))
	return nil
}

type challengeRequest struct {
	ClaimType string `json:"claim-type"`
}

type signRequest struct {
	BlindedToken string `json:"blinded-token"`
	KeyID        string `json:"key-id"`
}

type passResponse struct {
	Token string `json:"privacy-pass-token"`
}

// redeem serves POST /relays/{relay-token}/redeem: forward to POST
// /api/privacy/v1/relays/{relay-token}/generate-claim with the pass, the
// relay secret and the derived Idempotency-Key.
func (h *Handler) redeem(w http.ResponseWriter, r *http.Request) error {
	relayToken := r.PathValue("relayToken")
	if !validRelayToken(relayToken) {
		return refuse(http.StatusBadRequest, TitleInvalidRelayToken, "a relay token is 1 to 256 letters, digits, '-' or '_'")
	}
	traceFrom(r.Context()).relay = relayHash(relayToken)
	secret, err := relaySecret(r)
	if err != nil {
		return err
	}
	o, err := h.readObject(r)
	if err != nil {
		return err
	}
	pass, ok, err := o.str("privacy-pass-token", "privacyPassToken")
	switch {
	case err != nil:
		return malformed(err)
	case !ok || pass == "":
		return refuse(http.StatusBadRequest, TitleMissingPass, "privacy-pass-token is required")
	case !isBase64URL(pass):
		return refuse(http.StatusBadRequest, TitleInvalidPass, "privacy-pass-token is not base64url")
	}
	header := http.Header{
		"Authorization":      {"PrivateToken token=" + pass},
		RelaySecretHeader:    {secret},
		IdempotencyKeyHeader: {RedeemIdempotencyKey(relayToken, pass)},
	}
	answer, err := h.up.do(r.Context(), call{
		name:          "generate_claim",
		path:          pathClaimStart + relayToken + pathClaimEnd,
		header:        header,
		body:          []byte("{}"),
		notReadyRetry: true,
	})
	if err != nil {
		return err
	}
	a := readAnswer(answer, "generate_claim")
	res := claimResponse{
		Payload:  a.str("claim-payload", "claimPayload"),
		Consumed: a.boolean("token-consumed", "tokenConsumed"),
	}
	if err := a.check(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, marshal(res))
	return nil
}

type claimResponse struct {
	Payload  string `json:"claim-payload"`
	Consumed bool   `json:"token-consumed"`
}

// redeemKeyLabel starts the input of RedeemIdempotencyKey; the version
// lets a future derivation never collide with this one.
const redeemKeyLabel = "ppredeem gateway redeem idempotency key v1"

// RedeemIdempotencyKey is the Idempotency-Key the gateway sends upstream
// with a redeem: the lowercase hex SHA-256 of
//
//	label || uint32be(len(relayToken)) || relayToken || uint32be(len(pass)) || pass
//
// with label "ppredeem gateway redeem idempotency key v1". It depends only
// on the relay token and the pass, so every retry of a redeem, through any
// gateway instance, sends the same key, and two different (relay, pass)
// pairs never share one. The length prefixes keep the encoding of the pair
// unambiguous.
func RedeemIdempotencyKey(relayToken, pass string) string {
	h := sha256.New()
	buf := make([]byte, 0, len(redeemKeyLabel)+8)
	buf = append(buf, redeemKeyLabel...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(relayToken)))
	h.Write(buf)
	h.Write([]byte(relayToken))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(pass))))
	h.Write([]byte(pass))
	return hex.EncodeToString(h.Sum(nil))
}

// requiredClaimType returns the claim-type (or claimType) member.
func requiredClaimType(o object) (string, error) {
	ct, ok, err := o.str("claim-type", "claimType")
	switch {
	case err != nil:
		return "", malformed(err)
	case !ok || ct == "":
		return "", refuse(http.StatusBadRequest, TitleMissingClaimType, "claim-type is required")
	}
	return ct, nil
}

// answerReader reads the members of a 2xx upstream answer. The first
// problem sticks: check turns it into a badUpstreamError, whose reason
// names the member, never quotes the upstream.
type answerReader struct {
	call string
	o    object
	err  error
}

func readAnswer(body []byte, callName string) *answerReader {
	o, err := parseObject(body, "the answer")
	return &answerReader{call: callName, o: o, err: err}
}

// str returns a required, non-empty string member.
func (a *answerReader) str(kebab, camel string) string {
	if a.err != nil {
		return ""
	}
	s, ok, err := a.o.str(kebab, camel)
	if err == nil && (!ok || s == "") {
		err = errors.New(kebab + " is missing")
	}
	a.err = err
	return s
}

// boolean returns a required boolean member.
func (a *answerReader) boolean(kebab, camel string) bool {
	if a.err != nil {
		return false
	}
	b, ok, err := a.o.boolean(kebab, camel)
	if err == nil && !ok {
		err = errors.New(kebab + " is missing")
	}
	a.err = err
	return b
}

// base64URL returns a required member holding base64url without padding.
func (a *answerReader) base64URL(kebab, camel string) []byte {
	s := a.str(kebab, camel)
	if a.err != nil {
		return nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		a.err = errors.New(kebab + " is not base64url without padding")
	}
	return b
}

func (a *answerReader) check() error {
	if a.err != nil {
		return &badUpstreamError{call: a.call, reason: "unexpected answer: " + a.err.Error()}
	}
	return nil
}
