package spend

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	bolt "go.etcd.io/bbolt"
)

// Usage counters: durable counts of what a subject has used, per item, for billing (the
// Privacy Passes issued to an API key, per claim type) and for accounting of the same kind.
// A count only grows. AddUsage returns once the addition is durable (PostgreSQL: one
// autocommit INSERT ... ON CONFLICT DO UPDATE; bbolt: a write transaction and its fsync);
// concurrent additions to one counter all count. An error means the addition may or may not
// have been recorded (the connection broke after COMMIT, say): a caller that bills must then
// not hand out what it was counting, so that a count is never lower than what was handed out.

// UsageCount is one counter: Count of Item used by Subject.
type UsageCount struct {
	Subject string
	Item    string
	Count   int64
}

// UsageCounter is what a caller that counts usage needs; both stores implement it.
type UsageCounter interface {
	// AddUsage adds n (at least 1) to the counter of (subject, item), creating it at 0 if
	// missing, and returns once the addition is durable.
	AddUsage(ctx context.Context, subject, item string, n int64) error
	// Usage returns every counter, sorted by subject then item.
	Usage(ctx context.Context) ([]UsageCount, error)
}

var (
	_ UsageCounter = (*Postgres)(nil)
	_ UsageCounter = (*Bolt)(nil)
)

// sqlstateOutOfRange: "bigint out of range", a counter past math.MaxInt64.
const sqlstateOutOfRange = "22003"

// MaxUsageNameLen bounds a usage subject or item, in bytes.
const MaxUsageNameLen = 200

// errUsageOverflow: a counter would pass math.MaxInt64.
var errUsageOverflow = errors.New("spend: usage counter would overflow")

// checkUsage validates AddUsage's arguments.
func checkUsage(subject, item string, n int64) error {
	for _, s := range []struct{ what, v string }{{"subject", subject}, {"item", item}} {
		if s.v == "" || len(s.v) > MaxUsageNameLen || !utf8.ValidString(s.v) || strings.ContainsRune(s.v, 0) {
			return fmt.Errorf("spend: usage %s must be 1 to %d bytes of UTF-8 without NUL", s.what, MaxUsageNameLen)
		}
	}
	if n < 1 {
		return fmt.Errorf("spend: usage must grow by at least 1, got %d", n)
	}
	return nil
}

// addUsageSQL adds to one counter in one statement: the primary key decides between insert
// and update, and the row lock of the update serialises concurrent additions.
const addUsageSQL = `INSERT INTO usage_counts (subject, item, count) VALUES ($1, $2, $3)
ON CONFLICT (subject, item) DO UPDATE SET count = usage_counts.count + EXCLUDED.count`

// AddUsage implements UsageCounter.
func (p *Postgres) AddUsage(ctx context.Context, subject, item string, n int64) error {
	if err := checkUsage(subject, item, n); err != nil {
		return err
	}
	conn, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, addUsageSQL, subject, item, n); err != nil {
		return fmt.Errorf("spend: add usage: %w", mapUsageErr(err))
	}
	return nil
}

// Usage implements UsageCounter.
func (p *Postgres) Usage(ctx context.Context) ([]UsageCount, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	rows, err := conn.Query(ctx, `SELECT subject, item, count FROM usage_counts ORDER BY subject COLLATE "C", item COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("spend: read usage: %w", mapUsageErr(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[UsageCount])
	if err != nil {
		return nil, fmt.Errorf("spend: read usage: %w", mapUsageErr(err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// mapUsageErr reports a missing usage_counts table as ErrSchemaBehind, and an overflow.
func mapUsageErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateOutOfRange {
		return errUsageOverflow
	}
	return mapUndefinedTable(err)
}

// boltUsageBucket holds the usage counters, inside the store's own bucket: key
// BE16(len(subject)) || subject || item, value the count (BE64).
var boltUsageBucket = []byte("usage")

func boltUsageKey(subject, item string) []byte {
	k := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(subject)+len(item)), uint16(len(subject)))
	return append(append(k, subject...), item...)
}

// addUsage adds n to a counter inside tx.
func addUsage(tx *bolt.Tx, subject, item string, n int64) error {
	bk, err := tx.Bucket(boltMetaBucket).CreateBucketIfNotExists(boltUsageBucket)
	if err != nil {
		return err
	}
	k := boltUsageKey(subject, item)
	var have int64
	if v := bk.Get(k); v != nil {
		if len(v) != 8 {
			return newError(ErrStoreDamaged, "spend: the usage counter of %q/%q is damaged", subject, item)
		}
		have = int64(binary.BigEndian.Uint64(v))
	}
	if have > math.MaxInt64-n {
		return errUsageOverflow
	}
	return bk.Put(k, binary.BigEndian.AppendUint64(nil, uint64(have+n)))
}

// AddUsage implements UsageCounter: one write transaction (one fsync).
func (b *Bolt) AddUsage(ctx context.Context, subject, item string, n int64) error {
	if err := checkUsage(subject, item, n); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.db.Update(func(tx *bolt.Tx) error { return addUsage(tx, subject, item, n) }); err != nil {
		return fmt.Errorf("spend: bolt: add usage: %w", err)
	}
	return nil
}

// Usage implements UsageCounter.
func (b *Bolt) Usage(ctx context.Context) ([]UsageCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []UsageCount
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltMetaBucket).Bucket(boltUsageBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			if len(k) < 2 || len(v) != 8 || int(binary.BigEndian.Uint16(k)) > len(k)-2 {
				return newError(ErrStoreDamaged, "spend: %s: a usage counter is damaged", b.path)
			}
			n := int(binary.BigEndian.Uint16(k))
			out = append(out, UsageCount{Subject: string(k[2 : 2+n]), Item: string(k[2+n:]), Count: int64(binary.BigEndian.Uint64(v))})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("spend: bolt: read usage: %w", err)
	}
	// Keys sort by subject length first; callers want subject, then item.
	slices.SortFunc(out, func(a, b UsageCount) int {
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return strings.Compare(a.Item, b.Item)
	})
	return out, nil
}
