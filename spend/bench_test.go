package spend_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ppredeem/ppredeem/spend"
	"github.com/ppredeem/ppredeem/spend/pgtest"
)

// benchGoroutines is the number of concurrent spenders, like a server's request handlers.
const benchGoroutines = 64

// benchSpend spends distinct 32-byte tokens under key from benchGoroutines goroutines and
// reports committed spends per second.
func benchSpend(b *testing.B, s spend.Store, key string) {
	ctx := context.Background()
	b.SetParallelism((benchGoroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		tok := make([]byte, 32)
		rand.Read(tok[:24]) // a random prefix per goroutine, then a counter
		var n uint64
		for pb.Next() {
			n++
			binary.BigEndian.PutUint64(tok[24:], n)
			if err := s.Spend(ctx, key, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "spends/s")
}

func BenchmarkSpendParallel(b *testing.B) {
	b.Run("bolt", func(b *testing.B) {
		s := openBolt(b, filepath.Join(b.TempDir(), "spent.db"))
		if err := s.PrepareKeys(context.Background(), []string{keyA}); err != nil {
			b.Fatal(err)
		}
		benchSpend(b, s, keyA)
	})

	dsn := pgtest.NewMigratedDatabase(b, "bench_parallel")
	// The default worker count first, then others for comparison.
	for _, workers := range []int{0, 1, 4, 8} {
		s := openPostgres(b, spend.PostgresConfig{DSN: dsn, FlushWorkers: workers})
		key := fmt.Sprintf("%016x", workers+1)
		if err := s.PrepareKeys(context.Background(), []string{key}); err != nil {
			b.Fatal(err)
		}
		name := "postgres"
		if workers != 0 {
			name += fmt.Sprintf("/workers=%d", workers)
		}
		b.Run(name, func(b *testing.B) { benchSpend(b, s, key) })
	}
}

// BenchmarkSpendLargeTable measures spends into a partition that already holds
// $PPREDEEM_BENCH_ROWS rows (default 0), to see the cost of a deep index. The fill runs in SQL:
//
//	PPREDEEM_BENCH_ROWS=10000000 go test -run '^$' -bench SpendLargeTable -benchtime 20s ./spend/
func BenchmarkSpendLargeTable(b *testing.B) {
	rows := int64(0)
	if s := os.Getenv("PPREDEEM_BENCH_ROWS"); s != "" {
		var err error
		if rows, err = strconv.ParseInt(s, 10, 64); err != nil || rows < 0 {
			b.Fatalf("PPREDEEM_BENCH_ROWS=%q: want a row count", s)
		}
	}
	dsn := pgtest.NewMigratedDatabase(b, "bench_large")
	s := openPostgres(b, spend.PostgresConfig{DSN: dsn})
	ctx := context.Background()
	if err := s.PrepareKeys(ctx, []string{keyA}); err != nil {
		b.Fatal(err)
	}
	if rows > 0 {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		start := time.Now()
		// 32-byte pseudo-random tokens, like real ones, so index pages split as in production.
		_, err = conn.Exec(ctx, `INSERT INTO spent_tokens_`+keyA+` (key_id, token)
			SELECT $1, sha256(int8send(g)) FROM generate_series(1, $2::bigint) AS g`, keyA, rows)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE spent_tokens_"+keyA); err != nil {
			b.Fatal(err)
		}
		var size string
		if err := conn.QueryRow(ctx, "SELECT pg_size_pretty(pg_total_relation_size('spent_tokens_"+keyA+"'))").Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.Logf("filled %d rows in %v; partition with index: %s", rows, time.Since(start).Round(time.Second), size)
	}
	b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) { benchSpend(b, s, keyA) })
}
