package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ppredeem/ppredeem/config"
	"github.com/ppredeem/ppredeem/spend"
)

// logStore logs which store serve opened: its identity (made once, by
// `ppredeem migrate up` or the embedded store's first start) and, for the
// embedded store, whether it was created, upgraded or its marker restored
// just now.
func logStore(ctx context.Context, log *slog.Logger, cfg *config.Config, store spend.Store) error {
	id, err := store.Identity(ctx)
	if err != nil {
		return fmt.Errorf("reading the spent-token store's identity: %w", err)
	}
	attrs := []any{"store", storeName(cfg), "store_id", id.ID, "store_created_at", id.CreatedAt.Format(time.RFC3339)}
	b, ok := store.(*spend.Bolt)
	if !ok {
		log.Info("spent-token store opened", attrs...)
		return nil
	}
	switch b.Opened() {
	case spend.BoltCreated:
		log.Info("spent-token store created: the data directory was new and empty", attrs...)
	case spend.BoltUpgraded:
		log.Warn("spent-token store upgraded: the file predates store identities; its identity and key registry were added, every record kept", attrs...)
	case spend.BoltMarkerRestored:
		log.Warn("spent-token store opened; its marker file was missing or unreadable and was written again from the identity in the store file", attrs...)
	default:
		log.Info("spent-token store opened", attrs...)
	}
	return nil
}

// holdRenewals is HoldConfig.OnRenew for serve: a failing renewal is logged
// at error (while it fails, the hold runs out and the keys could be retired
// under this server), and the first success after failures once.
func holdRenewals(log *slog.Logger) func(error) {
	var failing atomic.Bool
	return func(err error) {
		switch {
		case err != nil:
			failing.Store(true)
			log.Error("renewing this server's hold on its keys in the spent-token store failed; "+
				"if it keeps failing for the hold's lifetime, the keys can be retired while this server serves them",
				"ttl", spend.DefaultHoldTTL, "err", err)
		case failing.Swap(false):
			log.Info("renewing this server's hold on its keys succeeds again")
		}
	}
}

// stopHolding releases this server's hold on its keys as it stops, so they
// can be retired at once.
func stopHolding(hold *spend.Holding, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
	defer cancel()
	if err := hold.Stop(ctx); err != nil {
		log.Warn("releasing this server's hold on its keys failed; it runs out by itself", "ttl", spend.DefaultHoldTTL, "err", err)
	}
}
