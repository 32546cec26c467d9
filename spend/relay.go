package spend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The relay provider API's storage (package rpc/relay): relay sessions, idempotency records,
// the provider's shared secrets and the issuing history of the Privacy Pass keys. Both
// stores implement RelayStore with the same guarantees; see the package documentation,
// "Relays".

// Sentinel errors of the relay storage.
var (
	// ErrRelayNotFound: no relay with that ID, or it expired.
	ErrRelayNotFound = errors.New("relay not found")
	// ErrClaimReported: the relay's claim result was already reported (a result is final).
	ErrClaimReported = errors.New("claim already reported")
)

// Claim results.
const (
	ClaimPassed = "passed"
	ClaimFailed = "failed"
)

// Relay is one relay session.
type Relay struct {
	ID         [32]byte // SHA-256 of the relay token
	SecretHash [32]byte // SHA-256 of the relay secret
	ClaimType  string
	// EncryptionKey is the DER SubjectPublicKeyInfo of the platform's RSA key the claim
	// payload is encrypted to, nil for a payload in clear.
	EncryptionKey []byte
	Sandbox       bool
	CreatedAt     time.Time
	ExpiresAt     time.Time

	// The verifier's report (set at creation for a sandbox relay).
	ClaimResult string // "", ClaimPassed or ClaimFailed
	Methodology string // the methodology JSON array as reported, "" for none
	ReportedAt  time.Time

	// The redemption: the pass that redeemed the relay.
	RedeemedKeyID   string
	RedeemedSpendID []byte
	RedeemedAt      time.Time
	// ClaimPayload is the claim payload answered first, "" before any; a replay answers it
	// again, byte for byte.
	ClaimPayload string
}

// Redeemed reports whether a pass redeemed the relay.
func (r *Relay) Redeemed() bool { return r.RedeemedKeyID != "" }

// IdempotencyRecord is the first complete answer to a request sent with an Idempotency-Key.
type IdempotencyRecord struct {
	Scope       string   // e.g. the API key's name, or the relay
	Key         string   // the Idempotency-Key
	RequestHash [32]byte // what the request was, to tell a retry from a reuse of the key
	Status      int
	Body        []byte
	ExpiresAt   time.Time
}

// RedeemOutcome is what RedeemRelay did.
type RedeemOutcome int

const (
	// Redeemed: the pass is now spent and the relay marked redeemed by it.
	Redeemed RedeemOutcome = iota + 1
	// Replayed: the relay was already redeemed by this very pass; nothing changed.
	Replayed
	// RelayRedeemedByOther: the relay was redeemed by another pass; nothing changed.
	RelayRedeemedByOther
	// PassSpent: the pass was already spent (on another relay); nothing changed.
	PassSpent
	// RelayGone: the relay does not exist or expired; nothing changed.
	RelayGone
	// NotPassed: the relay's claim is not reported passed; nothing changed.
	NotPassed
)

var redeemOutcomes = map[string]RedeemOutcome{
	"redeemed": Redeemed, "replayed": Replayed, "relay_redeemed": RelayRedeemedByOther,
	"pass_spent": PassSpent, "relay_gone": RelayGone, "not_passed": NotPassed,
}

func (o RedeemOutcome) String() string {
	for s, v := range redeemOutcomes {
		if v == o {
			return s
		}
	}
	return fmt.Sprintf("RedeemOutcome(%d)", int(o))
}

// Redemption is one RedeemRelay request.
type Redemption struct {
	RelayID [32]byte
	KeyID   string // the store key ID of the pass's key (a prepared key)
	SpendID []byte // the pass's double-spend identity under KeyID
	// Payload is the claim payload to answer and store when the relay gets redeemed.
	Payload string
	Now     time.Time
	// Idempotency, if not nil, is recorded with the answer (Redeemed and Replayed).
	Idempotency *IdempotencyRecord
}

// RelaySecret is one of the provider's shared secrets.
type RelaySecret struct {
	Secret    []byte
	CreatedAt time.Time
}

// IssuingKey is when a Privacy Pass key was last seen issuing.
type IssuingKey struct {
	KeyID         string
	LastIssuingAt time.Time
}

// Purged counts what PurgeRelays dropped.
type Purged struct {
	Relays, IdempotencyRecords int64
}

// RelayStore is the relay provider API's storage; both stores implement it.
type RelayStore interface {
	UsageCounter

	// CreateRelay stores a new relay.
	CreateRelay(ctx context.Context, r *Relay) error
	// Relay returns the relay, or ErrRelayNotFound when it is missing or expired at now.
	Relay(ctx context.Context, id [32]byte, now time.Time) (*Relay, error)
	// ReportClaim records the verifier's result once: ErrClaimReported when one is recorded,
	// ErrRelayNotFound when the relay is missing or expired at now.
	ReportClaim(ctx context.Context, id [32]byte, result, methodology string, now time.Time) error
	// AnswerClaim stores payload as the relay's answered claim payload unless one is
	// stored, and returns the stored one (for claims that spend nothing: a failed claim).
	AnswerClaim(ctx context.Context, id [32]byte, payload string) (string, error)
	// RedeemRelay spends the pass and marks the relay redeemed by it in one atomic step
	// (see RedeemOutcome). The payload returned is the one stored (Redeemed, Replayed).
	RedeemRelay(ctx context.Context, r Redemption) (RedeemOutcome, string, error)

	// Idempotent returns the live record of (scope, key), or nil.
	Idempotent(ctx context.Context, scope, key string, now time.Time) (*IdempotencyRecord, error)
	// SaveIdempotent stores rec unless a live record of its (scope, key) exists, which it
	// returns instead (nil when rec was stored).
	SaveIdempotent(ctx context.Context, rec *IdempotencyRecord, now time.Time) (*IdempotencyRecord, error)
	// AddUsageOnce is AddUsage counted once per idempotency record: in one transaction it
	// stores rec and adds n to (subject, item), or, when a live record of rec's (scope,
	// key) exists, changes nothing and returns that record.
	AddUsageOnce(ctx context.Context, rec *IdempotencyRecord, subject, item string, n int64, now time.Time) (*IdempotencyRecord, error)

	// RelaySecrets returns the secrets of purpose, newest first; when there are none it
	// stores initial as the first (atomically: every server sharing the store gets the
	// same).
	RelaySecrets(ctx context.Context, purpose string, initial []byte) ([]RelaySecret, error)
	// AddRelaySecret adds a newer secret of purpose (rotation).
	AddRelaySecret(ctx context.Context, purpose string, secret []byte) error

	// MarkIssuing records that keyIDs issue passes at now.
	MarkIssuing(ctx context.Context, keyIDs []string, now time.Time) error
	// IssuingKeys lists every key ever marked issuing, sorted by ID.
	IssuingKeys(ctx context.Context) ([]IssuingKey, error)
	// PurgeRelays drops the relays and idempotency records expired at now.
	PurgeRelays(ctx context.Context, now time.Time) (Purged, error)
}

var (
	_ RelayStore = (*Postgres)(nil)
	_ RelayStore = (*Bolt)(nil)
)

// Bounds of stored relay fields.
const (
	maxScopeLen   = 256
	maxSecretLen  = 64
	minSecretLen  = 32
	maxPurposeLen = 64
)

func checkRedemption(r Redemption) error {
	if !ValidKeyID(r.KeyID) {
		return fmt.Errorf("spend: malformed key ID: %w", ErrUnknownKey)
	}
	if len(r.SpendID) == 0 || len(r.SpendID) > MaxTokenLen {
		return errors.New("spend: a spend ID must be 1 to MaxTokenLen bytes")
	}
	return checkIdempotency(r.Idempotency)
}

func checkIdempotency(rec *IdempotencyRecord) error {
	if rec == nil {
		return nil
	}
	if rec.Scope == "" || rec.Key == "" || len(rec.Scope) > maxScopeLen || len(rec.Key) > maxScopeLen {
		return fmt.Errorf("spend: idempotency scope and key must be 1 to %d bytes", maxScopeLen)
	}
	return nil
}

// checkUsageOnce checks the arguments of AddUsageOnce and SaveIdempotent
// (AddUsageOnce with an empty subject and item and n 0: counting is false).
func checkUsageOnce(rec *IdempotencyRecord, subject, item string, n int64) (counting bool, err error) {
	if rec == nil {
		return false, errors.New("spend: no idempotency record")
	}
	if err := checkIdempotency(rec); err != nil {
		return false, err
	}
	counting = subject != "" || item != "" || n != 0
	if counting {
		if err := checkUsage(subject, item, n); err != nil {
			return false, err
		}
	}
	return counting, nil
}

func checkSecret(purpose string, secret []byte) error {
	if purpose == "" || len(purpose) > maxPurposeLen {
		return fmt.Errorf("spend: secret purpose must be 1 to %d bytes", maxPurposeLen)
	}
	if len(secret) < minSecretLen || len(secret) > maxSecretLen {
		return fmt.Errorf("spend: a relay secret must be %d to %d bytes", minSecretLen, maxSecretLen)
	}
	return nil
}

func checkClaimResult(result string) error {
	if result != ClaimPassed && result != ClaimFailed {
		return fmt.Errorf("spend: claim result must be %q or %q", ClaimPassed, ClaimFailed)
	}
	return nil
}
