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
	body, err := readBody(w, r, h.maxBody)
	if err != nil {
		return err
	}
	o, err := parseObject(body, "the body")
	if err != nil {
		return malformed(err)
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
	var res relayResponse
	if err := decodeAnswer(answer, "create_relay", func(o object) (err error) {
		res.RelayToken, err = requiredString(o, "relay-token", "relayToken")
		if err == nil {
			res.RelaySecret, err = requiredString(o, "relay-secret", "relaySecret")
		}
		if err == nil {
			res.AccessToken, err = requiredString(o, "relay-session-access-token", "relaySessionAccessToken")
		}
		return err
	}); err != nil {
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
	body, err := readBody(w, r, h.maxBody)
	if err != nil {
		return err
	}
	o, err := parseObject(body, "the body")
	if err != nil {
		return malformed(err)
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
	var iss passclient.Issuance
	if err := decodeAnswer(answer, "challenge", func(o object) (err error) {
		iss.Challenge, err = requiredString(o, "challenge", "challenge")
		if err == nil {
			iss.TokenKey, err = requiredString(o, "token-key", "tokenKey")
		}
		if err == nil {
			iss.TokenKeyID, err = requiredString(o, "token-key-id", "tokenKeyId")
		}
		return err
	}); err != nil {
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
		var sig []byte
		err = decodeAnswer(answer, "sign", func(o object) error {
			s, err := requiredString(o, "blind-sig", "blindSig")
			if err != nil {
				return err
			}
			sig, err = base64.RawURLEncoding.Strict().DecodeString(s)
			return err
		})
		return sig, err
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
	body, err := readBody(w, r, h.maxBody)
	if err != nil {
		return err
	}
	o, err := parseObject(body, "the body")
	if err != nil {
		return malformed(err)
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
	var res claimResponse
	if err := decodeAnswer(answer, "generate_claim", func(o object) (err error) {
		res.Payload, err = requiredString(o, "claim-payload", "claimPayload")
		if err != nil {
			return err
		}
		consumed, ok, err := o.boolean("token-consumed", "tokenConsumed")
		if err == nil && !ok {
			err = errors.New("token-consumed is missing")
		}
		res.Consumed = consumed
		return err
	}); err != nil {
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

// requiredString returns a non-empty string member of an upstream answer.
func requiredString(o object, kebab, camel string) (string, error) {
	s, ok, err := o.str(kebab, camel)
	if err == nil && (!ok || s == "") {
		err = errors.New(kebab + " is missing")
	}
	return s, err
}

// decodeAnswer parses a 2xx upstream body as a JSON object and hands it to
// read; any failure is a badUpstreamError (the details never quote the
// upstream).
func decodeAnswer(body []byte, callName string, read func(object) error) error {
	o, err := parseObject(body, "the answer")
	if err == nil {
		err = read(o)
	}
	if err != nil {
		return &badUpstreamError{call: callName, reason: "unexpected answer: " + err.Error()}
	}
	return nil
}
