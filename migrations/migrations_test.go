package migrations_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/ppredeem/ppredeem/migrations"
)

// TestFiles checks the embedded files are goose migrations with distinct versions starting at 1
// and both directions annotated. Applying them is tested against PostgreSQL in package spend.
func TestFiles(t *testing.T) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded migrations: %v", err)
	}
	seen := map[int64]string{}
	for i, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if v != int64(i+1) {
			t.Errorf("%s: version %d, want %d (no gaps)", name, v, i+1)
		}
		if prev, ok := seen[v]; ok {
			t.Errorf("%s and %s share version %d", prev, name, v)
		}
		seen[v] = name
		b, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		up, down := strings.Index(s, "-- +goose Up"), strings.Index(s, "-- +goose Down")
		if up < 0 || down < up {
			t.Errorf("%s: want a -- +goose Up section followed by a -- +goose Down section", name)
		}
	}
}
