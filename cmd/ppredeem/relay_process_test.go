package main

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestRelayCrashSafety redeems passes on relays concurrently while a real `serve` process
// is killed with SIGKILL, on both stores. After a restart, every relay that answered
// token-consumed:true is still redeemed by that pass (the same pass replays it), and that
// pass is spent (it cannot redeem another relay).
func TestRelayCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes; skipped with -short")
	}
	forEachStore(t, func(t *testing.T, storeArgs []string) {
		args := relayArgs(storeArgs)
		type redeemed struct {
			r    relaySession
			pass string
		}
		var mu sync.Mutex
		var consumed []redeemed
		for round := range 2 {
			proc := startProcess(t, args...)
			p := provider{t, proc.base}
			const n = 300
			relays := make([]relaySession, n)
			passes := make([]string, n)
			for i := range n {
				relays[i] = p.createRelay(map[string]any{"claim-type": claimAge, "sandbox": true})
				passes[i] = p.pass(claimAge)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var next, answered atomic.Int32
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for ctx.Err() == nil {
						i := int(next.Add(1)) - 1
						if i >= n {
							return
						}
						a, err := callErr(ctx, p.claimURL(relays[i]), "{}",
							"Persona-Relay-Secret", relays[i].secret, "Authorization", "PrivateToken token="+passes[i])
						switch {
						case err != nil:
							return // the process is gone
						case a.status == 200:
							if _, ok := claimOf(t, a); ok {
								mu.Lock()
								consumed = append(consumed, redeemed{relays[i], passes[i]})
								mu.Unlock()
								answered.Add(1)
							}
						case a.status != 503 && a.status != 500:
							t.Errorf("round %d: unexpected %d %s", round, a.status, a.body)
						}
					}
				})
			}
			waitFor(t, "50 redemptions in this round", func() bool { return answered.Load() >= 50 })
			proc.signal(t, syscall.SIGKILL)
			proc.exit(t, 30*time.Second)
			cancel()
			wg.Wait()
		}
		proc := startProcess(t, args...)
		p := provider{t, proc.base}
		for _, c := range consumed {
			if _, ok := claimOf(t, p.generateClaim(c.r, c.pass)); !ok {
				t.Fatal("a relay answered token-consumed:true before a crash is not redeemed by its pass")
			}
			fresh := p.createRelay(map[string]any{"claim-type": claimAge, "sandbox": true})
			wantStatus(t, "a pass consumed before a crash", p.generateClaim(fresh, c.pass), 409, "Privacy Pass already redeemed")
		}
		t.Logf("%d redemptions across 2 SIGKILLs, all kept", len(consumed))
	})
}
