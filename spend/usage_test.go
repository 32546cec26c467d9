package spend_test

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/ppredeem/ppredeem/spend"
)

// The usage tests run against both stores.

func TestUsagePostgres(t *testing.T) { runUsage(t, postgresStorage) }
func TestUsageBolt(t *testing.T)     { runUsage(t, boltStorage) }

func runUsage(t *testing.T, newStorage storage) {
	tests := []struct {
		name string
		f    func(t *testing.T, k kit)
	}{
		{"AddAndList", testUsageAddAndList},
		{"Concurrent", testUsageConcurrent},
		{"Refused", testUsageRefused},
		{"Reopen", testUsageReopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, newStorage(t))
		})
	}
}

func counter(t *testing.T, s spend.Store) spend.UsageCounter {
	t.Helper()
	c, ok := s.(spend.UsageCounter)
	if !ok {
		t.Fatalf("%T is not a UsageCounter", s)
	}
	return c
}

func wantUsage(t *testing.T, c spend.UsageCounter, want []spend.UsageCount) {
	t.Helper()
	got, err := c.Usage(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Usage() = %v, want %v", got, want)
	}
}

func testUsageAddAndList(t *testing.T, k kit) {
	c := counter(t, k.open(t))
	ctx := ctxT(t)
	wantUsage(t, c, nil)
	for _, a := range []spend.UsageCount{
		{"apikey:b", "claim", 1}, {"apikey:a", "x", 2}, {"apikey:a", "x", 3},
		{"apikey:ab", "a", 7}, {"apikey:a", "w", 1}, {"é", "ü", 1},
	} {
		if err := c.AddUsage(ctx, a.Subject, a.Item, a.Count); err != nil {
			t.Fatal(err)
		}
	}
	// Sorted by subject, then item, byte-wise; a subject that is a prefix of another is not
	// confused with it.
	wantUsage(t, c, []spend.UsageCount{
		{"apikey:a", "w", 1}, {"apikey:a", "x", 5}, {"apikey:ab", "a", 7}, {"apikey:b", "claim", 1}, {"é", "ü", 1},
	})
}

func testUsageConcurrent(t *testing.T, k kit) {
	c := counter(t, k.open(t))
	ctx := ctxT(t)
	const goroutines, each = 64, 10
	errs := spendAll(goroutines, func(i int) error {
		for range each {
			if err := c.AddUsage(ctx, "subject", fmt.Sprint("item", i%2), 1); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantUsage(t, c, []spend.UsageCount{{"subject", "item0", goroutines * each / 2}, {"subject", "item1", goroutines * each / 2}})
}

func testUsageRefused(t *testing.T, k kit) {
	c := counter(t, k.open(t))
	ctx := ctxT(t)
	long := string(make([]byte, spend.MaxUsageNameLen+1))
	for _, a := range []spend.UsageCount{
		{"", "i", 1}, {"s", "", 1}, {"s", "i", 0}, {"s", "i", -1}, {long, "i", 1}, {"s", "bad\xff", 1}, {"s\x00", "i", 1},
	} {
		if err := c.AddUsage(ctx, a.Subject, a.Item, a.Count); err == nil {
			t.Errorf("AddUsage(%q, %q, %d) succeeded", a.Subject, a.Item, a.Count)
		}
	}
	if err := c.AddUsage(ctx, "s", "i", math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if err := c.AddUsage(ctx, "s", "i", 1); err == nil {
		t.Fatal("a counter passed math.MaxInt64")
	}
	wantUsage(t, c, []spend.UsageCount{{"s", "i", math.MaxInt64}})
}

func testUsageReopen(t *testing.T, k kit) {
	s := k.open(t)
	if err := counter(t, s).AddUsage(ctxT(t), "s", "i", 41); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := counter(t, k.open(t))
	if err := c.AddUsage(ctxT(t), "s", "i", 1); err != nil {
		t.Fatal(err)
	}
	wantUsage(t, c, []spend.UsageCount{{"s", "i", 42}})
}
