package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMELayoutListsEveryPackage keeps the README's Layout table in
// step with the tree: every directory of the module that holds Go code has
// a row, and every row names such a directory.
func TestREADMELayoutListsEveryPackage(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(raw), "\n## Layout\n")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	rows, seen := map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9/_.-]+)` \\|").FindAllStringSubmatch(layout, -1) {
		rows[m[1]] = true
	}
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != "../.." && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir // .git, .ci (a module of its own), test data
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		dir, err := filepath.Rel("../..", filepath.Dir(path))
		if err != nil {
			return err
		}
		dir = filepath.ToSlash(dir)
		if !rows[dir] && !seen[dir] {
			t.Errorf("README's Layout has no row for %s", dir)
		}
		seen[dir] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range rows {
		if !seen[dir] {
			t.Errorf("README's Layout lists %s, which holds no Go package", dir)
		}
	}
}
