package relay

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/ppredeem/ppredeem/rpc/keyhash"
	"github.com/ppredeem/ppredeem/spend"
)

type relayAnswer struct {
	RelayToken  string `json:"relay-token"`
	RelaySecret string `json:"relay-secret"`
	AccessToken string `json:"relay-session-access-token"`
}

// createRelay serves POST /api/privacy/v1/relays (rpc/relay/PROTOCOL.md §3.1).
func (h *Handler) createRelay(w http.ResponseWriter, r *http.Request, c *Config, res *result) ([]byte, error) {
	o, err := h.readObject(r)
	if err != nil {
		return nil, err
	}
	ct, err := claimType(o, c)
	if err != nil {
		return nil, err
	}
	res.claimType = ct
	var der []byte
	keyPEM, hasKey, err := o.str("encryption-key-pem", "encryptionKeyPem")
	if err != nil {
		return nil, err
	}
	if hasKey {
		if der, err = parseEncryptionKey(keyPEM); err != nil {
			return nil, err
		}
	}
	sandbox, err := o.boolean("sandbox", "sandbox")
	if err != nil {
		return nil, err
	}
	if sandbox && !c.Sandbox {
		return nil, refuse(rowSandbox, "this deployment does not allow sandbox relays")
	}
	now := h.now().UTC()
	token, secret := newRelayToken(), newRelaySecret()
	rel := &spend.Relay{
		ID:            relayID(token),
		SecretHash:    sha256.Sum256([]byte(secret)),
		ClaimType:     ct,
		EncryptionKey: der,
		Sandbox:       sandbox,
		CreatedAt:     now,
		ExpiresAt:     now.Add(c.RelayLifetime),
	}
	if sandbox {
		// A sandbox relay needs no verifier: it reports passed for every claim type.
		rel.ClaimResult, rel.ReportedAt = spend.ClaimPassed, now
	}
	res.relay = shortHash(rel.ID)
	exp := now.Add(AccessTokenLifetime)
	if rel.ExpiresAt.Before(exp) {
		exp = rel.ExpiresAt
	}
	access, err := newAccessToken(c.AccessKeys, c.Issuer.Name(), rel.ID, now, exp)
	if err != nil {
		return nil, err
	}
	if err := h.store.CreateRelay(r.Context(), rel); err != nil {
		return nil, stored(err)
	}
	h.relays.put(rel)
	h.metrics.relaysCreated.WithLabelValues(ct).Inc()
	return json.Marshal(relayAnswer{RelayToken: token, RelaySecret: secret, AccessToken: access})
}

// claimType reads the required claim-type member, a configured claim type.
func claimType(o object, c *Config) (string, error) {
	ct, err := o.required("claim-type", "claimType")
	if err != nil {
		return "", err
	}
	if _, ok := c.Issuer.Keys().Active(ct); !ok {
		return "", refuse(rowUnknownClaimType, "no keys are configured for this claim type")
	}
	return ct, nil
}

type challengeAnswer struct {
	Challenge  string `json:"challenge"`
	TokenKey   string `json:"token-key"`
	TokenKeyID string `json:"token-key-id"`
}

// challenge serves POST /api/privacy/v1/relays/challenge (rpc/relay/PROTOCOL.md §3.2).
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, c *Config, res *result) ([]byte, error) {
	o, err := h.readObject(r)
	if err != nil {
		return nil, err
	}
	ct, err := claimType(o, c)
	if err != nil {
		return nil, err
	}
	res.claimType = ct
	ch, err := c.Issuer.Challenge(ct, h.now())
	if err != nil {
		return nil, err
	}
	return json.Marshal(challengeAnswer{Challenge: ch.Challenge, TokenKey: ch.TokenKey, TokenKeyID: ch.TokenKeyID})
}

type signAnswer struct {
	BlindSig string `json:"blind-sig"`
}

// UsageSubjectPrefix starts the usage subjects of API keys (see spend.UsageCount).
const UsageSubjectPrefix = "apikey:"

// usageSubject is the usage counter's subject for an API key: billing counts passes per
// API key (subject) and claim type (item).
func usageSubject(apiKeyName string) string { return UsageSubjectPrefix + apiKeyName }

// issue serves POST /api/v1/privacy-passes (rpc/relay/PROTOCOL.md §3.3): the blind signature, billed
// to the API key durably before it is returned, once per Idempotency-Key.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request, c *Config, res *result) ([]byte, error) {
	cred, ok := keyhash.Match(c.APIKeys, bearer(r))
	if !ok {
		return nil, refuse(rowUnauthorized, "a configured API key is required: Authorization: Bearer <api key>")
	}
	idem, err := idempotencyKey(r)
	if err != nil {
		return nil, err
	}
	o, err := h.readObject(r)
	if err != nil {
		return nil, err
	}
	blindedText, err := o.required("blinded-token", "blindedToken")
	if err != nil {
		return nil, err
	}
	tokenKeyID, err := o.required("key-id", "keyId")
	if err != nil {
		return nil, err
	}
	blinded, ok := decodeB64URL(blindedText)
	if !ok {
		return nil, refuse(rowBadRequest, "blinded-token must be base64url without padding")
	}
	// What the request is, for telling a retry from a reuse of its Idempotency-Key.
	hash := requestHash(tokenKeyID, blinded)
	scope := "issue/" + cred.Name
	now := h.now()
	if idem != "" {
		have, err := h.store.Idempotent(r.Context(), scope, idem, now)
		if err != nil {
			return nil, stored(err)
		}
		if have != nil {
			return replay(have, hash)
		}
	}
	sig, ct, err := c.Issuer.BlindSign(tokenKeyID, blinded)
	if err != nil {
		return nil, err
	}
	res.claimType = ct
	answer, err := json.Marshal(signAnswer{BlindSig: base64.RawURLEncoding.EncodeToString(sig)})
	if err != nil {
		return nil, err
	}
	subject := usageSubject(cred.Name)
	if idem == "" {
		if err := h.store.AddUsage(r.Context(), subject, ct, 1); err != nil {
			return nil, stored(err)
		}
	} else {
		rec := &spend.IdempotencyRecord{Scope: scope, Key: idem, RequestHash: hash, Status: http.StatusOK, Body: answer, ExpiresAt: now.Add(c.IdempotencyTTL)}
		have, err := h.store.AddUsageOnce(r.Context(), rec, subject, ct, 1, now)
		if err != nil {
			return nil, stored(err)
		}
		if have != nil { // a concurrent request with the same key won
			return replay(have, hash)
		}
	}
	h.metrics.passesIssued.WithLabelValues(ct).Inc()
	return answer, nil
}

// requestHash is SHA-256 over length-prefixed parts.
func requestHash(text string, data []byte) [32]byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(text))))
	h.Write([]byte(text))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(data))))
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// replay answers with a stored answer if the request is the one it answered, else 422.
func replay(have *spend.IdempotencyRecord, hash [32]byte) ([]byte, error) {
	if subtle.ConstantTimeCompare(have.RequestHash[:], hash[:]) != 1 {
		return nil, refuse(rowIdempotency, "this Idempotency-Key was used for another request")
	}
	if have.Status != http.StatusOK {
		return nil, errors.New("relay: a stored idempotent answer is not a 200")
	}
	return bytes.Clone(have.Body), nil
}

type claimAnswer struct {
	Payload  string `json:"claim-payload"`
	Consumed bool   `json:"token-consumed"`
}

// generateClaim serves POST /api/privacy/v1/relays/{relay-token}/generate-claim
// (rpc/relay/PROTOCOL.md §3.4), its checks in the order of the table there.
func (h *Handler) generateClaim(w http.ResponseWriter, r *http.Request, c *Config, res *result) ([]byte, error) {
	token := r.PathValue("relayToken")
	if !validRelayToken(token) {
		return nil, refuse(rowNotFound, "")
	}
	id := relayID(token)
	res.relay = shortHash(id)
	now := h.now()
	rel := h.relays.get(id, now)
	if rel == nil {
		var err error
		rel, err = h.store.Relay(r.Context(), id, now)
		if errors.Is(err, spend.ErrRelayNotFound) {
			return nil, refuse(rowNotFound, "")
		}
		if err != nil {
			return nil, stored(err)
		}
		h.relays.put(rel)
	}
	secret := sha256.Sum256([]byte(r.Header.Get("Persona-Relay-Secret")))
	if subtle.ConstantTimeCompare(secret[:], rel.SecretHash[:]) != 1 {
		return nil, refuse(rowNotFound, "") // indistinguishable from an unknown relay
	}
	res.claimType = rel.ClaimType
	if _, err := h.readBody(r); err != nil { // the body ({}) carries nothing
		return nil, err
	}
	idem, err := idempotencyKey(r)
	if err != nil {
		return nil, err
	}
	passText, err := privateToken(r)
	if err != nil {
		return nil, err
	}
	var rec *spend.IdempotencyRecord
	if idem != "" {
		// Only final answers are stored, and only after the secret was checked: a replayed
		// 403 would keep a retry from ever seeing the verifier's report.
		hash := requestHash(passText, nil)
		scope := "claim/" + hex.EncodeToString(id[:])
		have, err := h.store.Idempotent(r.Context(), scope, idem, now)
		if err != nil {
			return nil, stored(err)
		}
		if have != nil {
			res.outcome = "replayed"
			return replay(have, hash)
		}
		rec = &spend.IdempotencyRecord{Scope: scope, Key: idem, RequestHash: hash,
			Status: http.StatusOK, ExpiresAt: now.Add(c.IdempotencyTTL)}
	}
	v, err := c.Issuer.Verify(passText, now)
	if err != nil {
		return nil, err
	}
	res.keyID = v.KeyID
	if err := v.CheckClaimType(rel.ClaimType); err != nil {
		return nil, err
	}
	switch rel.ClaimResult {
	case "":
		return nil, refuse(rowClaimNotReady, "the verifier has not reported the claim yet; retry later")
	case spend.ClaimFailed:
		return h.answerFailed(r, rel, rec, now, res)
	}
	if rel.Redeemed() {
		if rel.RedeemedKeyID == v.KeyID && bytes.Equal(rel.RedeemedSpendID, v.SpendID[:]) {
			res.outcome = "replayed"
			return json.Marshal(claimAnswer{Payload: rel.ClaimPayload, Consumed: true})
		}
		return nil, refuse(rowRelayRedeemed, "the relay was redeemed by another Privacy Pass")
	}
	payload, err := sealPayload(rel.EncryptionKey, payloadText(rel.ClaimType, rel.ClaimResult, rel.Methodology))
	if err != nil {
		return nil, err
	}
	answer, err := json.Marshal(claimAnswer{Payload: payload, Consumed: true})
	if err != nil {
		return nil, err
	}
	if rec != nil {
		rec.Body = answer
	}
	outcome, storedPayload, err := h.store.RedeemRelay(r.Context(), spend.Redemption{
		RelayID: id, KeyID: v.KeyID, SpendID: v.SpendID[:], Payload: payload, Now: now, Idempotency: rec,
	})
	if err != nil {
		return nil, stored(err)
	}
	switch outcome {
	case spend.Redeemed:
		res.outcome = "redeemed"
		return answer, nil
	case spend.Replayed:
		res.outcome = "replayed"
		return json.Marshal(claimAnswer{Payload: storedPayload, Consumed: true})
	case spend.RelayRedeemedByOther:
		return nil, refuse(rowRelayRedeemed, "the relay was redeemed by another Privacy Pass")
	case spend.PassSpent:
		return nil, refuse(rowPassRedeemed, "the Privacy Pass was already redeemed")
	case spend.RelayGone:
		return nil, refuse(rowNotFound, "")
	}
	return nil, refuse(rowClaimNotReady, "") // NotPassed: a result is final, so unreachable
}

// answerFailed answers a failed claim: the payload says failed and the pass is not spent
// (refunded). The first payload answered is kept, so every answer is the same.
func (h *Handler) answerFailed(r *http.Request, rel *spend.Relay, rec *spend.IdempotencyRecord, now time.Time, res *result) ([]byte, error) {
	payload := rel.ClaimPayload
	if payload == "" {
		sealed, err := sealPayload(rel.EncryptionKey, payloadText(rel.ClaimType, rel.ClaimResult, rel.Methodology))
		if err != nil {
			return nil, err
		}
		if payload, err = h.store.AnswerClaim(r.Context(), rel.ID, sealed); err != nil {
			return nil, stored(err)
		}
	}
	answer, err := json.Marshal(claimAnswer{Payload: payload, Consumed: false})
	if err != nil {
		return nil, err
	}
	if rec != nil {
		rec.Body = answer
		if _, err := h.store.SaveIdempotent(r.Context(), rec, now); err != nil {
			return nil, stored(err)
		}
	}
	res.outcome = "refunded"
	return answer, nil
}

// Bounds of a verifier's report.
const (
	maxMethods      = 32
	maxMethodLen    = 128
	accessTokenMax  = 4096
	methodologyMax  = 8192
	reportResultMsg = `claim-result must be "passed" or "failed"`
)

// reportClaim serves POST /api/privacy/v1/relay-sessions/claim (rpc/relay/PROTOCOL.md §3.5).
func (h *Handler) reportClaim(w http.ResponseWriter, r *http.Request, c *Config, res *result) ([]byte, error) {
	if _, ok := keyhash.Match(c.VerifierKeys, bearer(r)); !ok {
		return nil, refuse(rowUnauthorized, "a configured verifier key is required: Authorization: Bearer <verifier key>")
	}
	o, err := h.readObject(r)
	if err != nil {
		return nil, err
	}
	access, err := o.required("relay-session-access-token", "relaySessionAccessToken")
	if err != nil {
		return nil, err
	}
	result, err := o.required("claim-result", "claimResult")
	if err != nil {
		return nil, err
	}
	if result != spend.ClaimPassed && result != spend.ClaimFailed {
		return nil, refuse(rowInvalidClaim, reportResultMsg)
	}
	methodology, err := parseMethodology(o)
	if err != nil {
		return nil, err
	}
	if len(access) > accessTokenMax {
		return nil, refuse(rowInvalidSession, "the access token is invalid or expired")
	}
	now := h.now()
	id, err := parseAccessToken(c.AccessKeys, access, now)
	if err != nil {
		return nil, err
	}
	res.relay = shortHash(id)
	rel, err := h.store.Relay(r.Context(), id, now)
	if errors.Is(err, spend.ErrRelayNotFound) {
		return nil, refuse(rowInvalidSession, "the relay of this access token has expired")
	}
	if err != nil {
		return nil, stored(err)
	}
	res.claimType = rel.ClaimType
	if rel.ClaimResult != "" {
		return nil, refuse(rowClaimReported, "a claim result is final")
	}
	if rel.EncryptionKey != nil {
		// The payload must fit in one RSA-OAEP block of the relay's key: refuse the report
		// now rather than fail the platform's redemption later.
		pub, err := encryptionKey(rel.EncryptionKey)
		if err != nil {
			return nil, err
		}
		if len(payloadText(rel.ClaimType, result, methodology)) > oaepCapacity(pub.Size()) {
			return nil, refuse(rowPayloadTooBig, "the methodology is too long to encrypt to the relay's key")
		}
	}
	switch err := h.store.ReportClaim(r.Context(), id, result, methodology, now); {
	case errors.Is(err, spend.ErrRelayNotFound):
		return nil, refuse(rowInvalidSession, "the relay of this access token has expired")
	case err != nil:
		return nil, stored(err)
	}
	rel.ClaimResult, rel.Methodology, rel.ReportedAt = result, methodology, now
	h.relays.put(rel)
	h.metrics.reports.WithLabelValues(result).Inc()
	return []byte("{}"), nil
}

// parseMethodology reads the optional methodology: an array of at most 32
// {"method","result"} objects, methods of 1 to 128 characters, results passed or failed.
// It returns the canonical JSON ("" for none or an empty array).
func parseMethodology(o object) (string, error) {
	raw, ok, err := o.member("methodology", "methodology")
	if err != nil || !ok || string(bytes.TrimSpace(raw)) == "null" {
		return "", err
	}
	bad := refuse(rowInvalidClaim, `methodology must be an array of at most 32 {"method","result"} objects, results "passed" or "failed"`)
	if len(raw) > methodologyMax {
		return "", bad
	}
	var in []map[string]json.RawMessage
	if json.Unmarshal(raw, &in) != nil || len(in) > maxMethods {
		return "", bad
	}
	out := make([]method, 0, len(in))
	for _, m := range in {
		var e method
		if json.Unmarshal(m["method"], &e.Method) != nil || json.Unmarshal(m["result"], &e.Result) != nil ||
			e.Method == "" || len(e.Method) > maxMethodLen || !slices.Contains([]string{spend.ClaimPassed, spend.ClaimFailed}, e.Result) {
			return "", bad
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return "", nil
	}
	b, err := json.Marshal(out)
	return string(b), err
}
