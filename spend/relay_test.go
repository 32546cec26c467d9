package spend_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/spend"
)

// The relay storage tests run against both stores.

func TestRelayStorePostgres(t *testing.T) { runRelayStore(t, postgresStorage) }
func TestRelayStoreBolt(t *testing.T)     { runRelayStore(t, boltStorage) }

func runRelayStore(t *testing.T, newStorage storage) {
	tests := []struct {
		name string
		f    func(t *testing.T, s spend.Store, rs spend.RelayStore)
	}{
		{"Lifecycle", testRelayLifecycle},
		{"OnePassManyRelays", testOnePassManyRelays},
		{"ManyPassesOneRelay", testManyPassesOneRelay},
		{"ReportOnce", testReportOnce},
		{"UsageOnce", testUsageOnce},
		{"Secrets", testRelaySecrets},
		{"Purge", testRelayPurge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStorage(t).open(t)
			rs, ok := s.(spend.RelayStore)
			if !ok {
				t.Fatalf("%T is not a RelayStore", s)
			}
			prepare(t, s, keyA)
			tc.f(t, s, rs)
		})
	}
}

var relayNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func newRelay(t *testing.T, rs spend.RelayStore, result string) *spend.Relay {
	t.Helper()
	r := &spend.Relay{ClaimType: "ct", CreatedAt: relayNow, ExpiresAt: relayNow.Add(time.Hour)}
	rand.Read(r.ID[:])
	rand.Read(r.SecretHash[:])
	if result != "" {
		r.ClaimResult, r.ReportedAt = result, relayNow
	}
	if err := rs.CreateRelay(ctxT(t), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func redeem(t *testing.T, rs spend.RelayStore, id [32]byte, spendID []byte, payload string) (spend.RedeemOutcome, string) {
	t.Helper()
	o, p, err := rs.RedeemRelay(ctxT(t), spend.Redemption{RelayID: id, KeyID: keyA, SpendID: spendID, Payload: payload, Now: relayNow})
	if err != nil {
		t.Fatal(err)
	}
	return o, p
}

func testRelayLifecycle(t *testing.T, s spend.Store, rs spend.RelayStore) {
	ctx := ctxT(t)
	r := newRelay(t, rs, "")
	got, err := rs.Relay(ctx, r.ID, relayNow)
	if err != nil || got.SecretHash != r.SecretHash || got.ClaimType != "ct" || got.ClaimResult != "" || !got.ExpiresAt.Equal(r.ExpiresAt) {
		t.Fatalf("Relay = %+v, %v", got, err)
	}
	if _, err := rs.Relay(ctx, r.ID, r.ExpiresAt); !errors.Is(err, spend.ErrRelayNotFound) {
		t.Fatalf("Relay at its expiry: %v, want ErrRelayNotFound", err)
	}
	pass := randToken(t)
	if o, _ := redeem(t, rs, r.ID, pass, "p"); o != spend.NotPassed {
		t.Fatalf("redeem before the report: %v", o)
	}
	if err := rs.ReportClaim(ctx, r.ID, spend.ClaimPassed, `[{"method":"m","result":"passed"}]`, relayNow); err != nil {
		t.Fatal(err)
	}
	if o, p := redeem(t, rs, r.ID, pass, "payload-1"); o != spend.Redeemed || p != "payload-1" {
		t.Fatalf("redeem: %v %q", o, p)
	}
	// The same pass again: the stored payload, not the new one.
	if o, p := redeem(t, rs, r.ID, pass, "payload-2"); o != spend.Replayed || p != "payload-1" {
		t.Fatalf("replay: %v %q", o, p)
	}
	if o, _ := redeem(t, rs, r.ID, randToken(t), "x"); o != spend.RelayRedeemedByOther {
		t.Fatalf("another pass: %v", o)
	}
	other := newRelay(t, rs, spend.ClaimPassed)
	if o, _ := redeem(t, rs, other.ID, pass, "x"); o != spend.PassSpent {
		t.Fatalf("the pass on another relay: %v", o)
	}
	var missing [32]byte
	if o, _ := redeem(t, rs, missing, randToken(t), "x"); o != spend.RelayGone {
		t.Fatalf("unknown relay: %v", o)
	}
	if _, _, err := rs.RedeemRelay(ctx, spend.Redemption{RelayID: other.ID, KeyID: keyB, SpendID: randToken(t), Now: relayNow}); !errors.Is(err, spend.ErrUnknownKey) {
		t.Fatalf("unprepared key: %v", err)
	}
	// The pass is in the key's spent records, like a legacy token.
	wantSpend(t, s, keyA, pass, spend.ErrAlreadySpent)
	got, err = rs.Relay(ctx, r.ID, relayNow)
	if err != nil || !got.Redeemed() || !bytes.Equal(got.RedeemedSpendID, pass) || got.ClaimPayload != "payload-1" ||
		got.Methodology != `[{"method":"m","result":"passed"}]` {
		t.Fatalf("redeemed relay = %+v, %v", got, err)
	}
	// A failed claim's payload: the first one stays.
	failed := newRelay(t, rs, spend.ClaimFailed)
	for _, p := range []string{"first", "second"} {
		if stored, err := rs.AnswerClaim(ctx, failed.ID, p); err != nil || stored != "first" {
			t.Fatalf("AnswerClaim(%q) = %q, %v", p, stored, err)
		}
	}
}

func testOnePassManyRelays(t *testing.T, _ spend.Store, rs spend.RelayStore) {
	const n = 32
	relays := make([]*spend.Relay, n)
	for i := range relays {
		relays[i] = newRelay(t, rs, spend.ClaimPassed)
	}
	pass := randToken(t)
	outcomes := make([]spend.RedeemOutcome, n)
	errs := spendAll(n, func(i int) error {
		var err error
		outcomes[i], _, err = rs.RedeemRelay(ctxT(t), spend.Redemption{RelayID: relays[i].ID, KeyID: keyA, SpendID: pass, Payload: "p", Now: relayNow})
		return err
	})
	count := map[spend.RedeemOutcome]int{}
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		count[outcomes[i]]++
	}
	if count[spend.Redeemed] != 1 || count[spend.PassSpent] != n-1 {
		t.Fatalf("one pass against %d relays: %v", n, count)
	}
}

func testManyPassesOneRelay(t *testing.T, _ spend.Store, rs spend.RelayStore) {
	const n = 32
	r := newRelay(t, rs, spend.ClaimPassed)
	outcomes := make([]spend.RedeemOutcome, n)
	errs := spendAll(n, func(i int) error {
		var err error
		outcomes[i], _, err = rs.RedeemRelay(ctxT(t), spend.Redemption{RelayID: r.ID, KeyID: keyA, SpendID: randToken(t), Payload: "p", Now: relayNow})
		return err
	})
	count := map[spend.RedeemOutcome]int{}
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		count[outcomes[i]]++
	}
	if count[spend.Redeemed] != 1 || count[spend.RelayRedeemedByOther] != n-1 {
		t.Fatalf("%d passes against one relay: %v", n, count)
	}
}

func testReportOnce(t *testing.T, _ spend.Store, rs spend.RelayStore) {
	r := newRelay(t, rs, "")
	const n = 16
	errs := spendAll(n, func(i int) error {
		return rs.ReportClaim(ctxT(t), r.ID, []string{spend.ClaimPassed, spend.ClaimFailed}[i%2], "", relayNow)
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, spend.ErrClaimReported):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent reports won", won, n)
	}
	var missing [32]byte
	if err := rs.ReportClaim(ctxT(t), missing, spend.ClaimPassed, "", relayNow); !errors.Is(err, spend.ErrRelayNotFound) {
		t.Fatalf("report on an unknown relay: %v", err)
	}
	if err := rs.ReportClaim(ctxT(t), r.ID, "maybe", "", relayNow); err == nil {
		t.Fatal("a result other than passed or failed was recorded")
	}
}

func testUsageOnce(t *testing.T, _ spend.Store, rs spend.RelayStore) {
	ctx := ctxT(t)
	rec := func(key, body string) *spend.IdempotencyRecord {
		return &spend.IdempotencyRecord{Scope: "apikey:a", Key: key, Status: 200, Body: []byte(body), ExpiresAt: relayNow.Add(time.Hour)}
	}
	const n = 16
	errs := spendAll(n, func(i int) error {
		have, err := rs.AddUsageOnce(ctx, rec(fmt.Sprint("k", i%4), fmt.Sprint("body", i%4)), "apikey:a", "ct", 1, relayNow)
		if have != nil && string(have.Body) != fmt.Sprint("body", i%4) {
			return fmt.Errorf("the record of key k%d holds %q", i%4, have.Body)
		}
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantUsage(t, rs, []spend.UsageCount{{"apikey:a", "ct", 4}})
	// Expired: the key counts again.
	renewed := rec("k0", "new")
	renewed.ExpiresAt = relayNow.Add(3 * time.Hour)
	if have, err := rs.AddUsageOnce(ctx, renewed, "apikey:a", "ct", 1, relayNow.Add(2*time.Hour)); err != nil || have != nil {
		t.Fatalf("AddUsageOnce after expiry = %v, %v", have, err)
	}
	wantUsage(t, rs, []spend.UsageCount{{"apikey:a", "ct", 5}})
	if have, err := rs.Idempotent(ctx, "apikey:a", "k0", relayNow.Add(2*time.Hour)); err != nil || string(have.Body) != "new" {
		t.Fatalf("Idempotent = %+v, %v", have, err)
	}
	if have, err := rs.Idempotent(ctx, "apikey:b", "k0", relayNow); err != nil || have != nil {
		t.Fatalf("another scope: %+v, %v", have, err)
	}
}

func testRelaySecrets(t *testing.T, _ spend.Store, rs spend.RelayStore) {
	ctx := ctxT(t)
	const n = 8
	got := make([][]spend.RelaySecret, n)
	errs := spendAll(n, func(i int) error {
		var err error
		got[i], err = rs.RelaySecrets(ctx, "mac", randToken(t))
		return err
	})
	for i, err := range errs {
		if err != nil || len(got[i]) != 1 || !bytes.Equal(got[i][0].Secret, got[0][0].Secret) {
			t.Fatalf("RelaySecrets %d = %v, %v; want the one secret all agree on", i, got[i], err)
		}
	}
	newer := randToken(t)
	if err := rs.AddRelaySecret(ctx, "mac", newer); err != nil {
		t.Fatal(err)
	}
	s, err := rs.RelaySecrets(ctx, "mac", randToken(t))
	if err != nil || len(s) != 2 || !bytes.Equal(s[0].Secret, newer) || !bytes.Equal(s[1].Secret, got[0][0].Secret) {
		t.Fatalf("after rotation: %v, %v", s, err)
	}
	if other, err := rs.RelaySecrets(ctx, "jwt", newer); err != nil || len(other) != 1 {
		t.Fatalf("another purpose: %v, %v", other, err)
	}
	if _, err := rs.RelaySecrets(ctx, "mac", []byte("short")); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

func testRelayPurge(t *testing.T, _ spend.Store, rs spend.RelayStore) {
	ctx := ctxT(t)
	old := newRelay(t, rs, spend.ClaimPassed)
	later := &spend.Relay{ClaimType: "ct", CreatedAt: relayNow, ExpiresAt: relayNow.Add(3 * time.Hour)}
	rand.Read(later.ID[:])
	if err := rs.CreateRelay(ctx, later); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.SaveIdempotent(ctx, &spend.IdempotencyRecord{Scope: "s", Key: "k", Status: 200, ExpiresAt: relayNow.Add(time.Hour)}, relayNow); err != nil {
		t.Fatal(err)
	}
	p, err := rs.PurgeRelays(ctx, relayNow.Add(2*time.Hour))
	if err != nil || p.Relays != 1 || p.IdempotencyRecords != 1 {
		t.Fatalf("PurgeRelays = %+v, %v", p, err)
	}
	if _, err := rs.Relay(ctx, old.ID, relayNow); !errors.Is(err, spend.ErrRelayNotFound) {
		t.Fatalf("a purged relay: %v", err)
	}
	if _, err := rs.Relay(ctx, later.ID, relayNow); err != nil {
		t.Fatalf("a live relay after the purge: %v", err)
	}
	if err := rs.MarkIssuing(ctx, []string{keyA, keyB}, relayNow); err != nil {
		t.Fatal(err)
	}
	if err := rs.MarkIssuing(ctx, []string{keyA}, relayNow.Add(-time.Hour)); err != nil { // never goes back
		t.Fatal(err)
	}
	keys, err := rs.IssuingKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].KeyID != keyA || !keys[0].LastIssuingAt.Equal(relayNow) {
		t.Fatalf("IssuingKeys = %v, %v", keys, err)
	}
}
