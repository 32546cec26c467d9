package spend_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ppredeem/ppredeem/spend"
)

func openBolt(t testing.TB, path string) *spend.Bolt {
	t.Helper()
	b, err := spend.OpenBolt(spend.BoltConfig{Path: path})
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func boltStorage(t *testing.T) func(t *testing.T) spend.Store {
	// A directory that does not exist yet: OpenBolt creates it.
	path := filepath.Join(t.TempDir(), "data", "spent.db")
	return func(t *testing.T) spend.Store { return openBolt(t, path) }
}

func TestBoltConformance(t *testing.T) {
	runConformance(t, boltStorage)
}

// TestBoltFileLocked: a second store on the same file (another process, in production) is
// refused instead of writing alongside the first.
func TestBoltFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spent.db")
	openBolt(t, path)
	start := time.Now()
	if b, err := spend.OpenBolt(spend.BoltConfig{Path: path}); err == nil {
		b.Close()
		t.Fatal("second OpenBolt on a locked file succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second OpenBolt took %v", d)
	}
	if _, err := spend.OpenBolt(spend.BoltConfig{}); err == nil {
		t.Fatal("OpenBolt with an empty path succeeded")
	}
}
