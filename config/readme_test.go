package config

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestREADMEListsEverySetting keeps the README's settings tables honest:
// every setting has exactly one row, with its flag (a gateway_ setting's
// flag without the prefix, as `ppredeem gateway` names it), its
// environment variable and its default; no row names a setting that does
// not exist. A default in parentheses ("(off)", "(none)") or left blank
// stands for an empty one.
func TestREADMEListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| ([a-z_]+) \| (--[a-z-]+) \| (PPREDEEM_[A-Z_]+) \|([^|]*)\|`)
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		if _, ok := rows[m[1]]; ok {
			t.Errorf("README: %s has two rows", m[1])
		}
		rows[m[1]] = m[2:]
	}
	for _, s := range settings {
		r, ok := rows[s.Key]
		if !ok {
			t.Errorf("README: no row for %s", s.Key)
			continue
		}
		delete(rows, s.Key)
		flag := "--" + s.Flag()
		if rest, ok := strings.CutPrefix(s.Key, "gateway_"); ok {
			flag = "--" + strings.ReplaceAll(rest, "_", "-")
		}
		if r[0] != flag || r[1] != s.Env() {
			t.Errorf("README: %s is %s %s, want %s %s", s.Key, r[0], r[1], flag, s.Env())
		}
		if !sameDefault(s.Default, strings.TrimSpace(r[2])) {
			t.Errorf("README: %s defaults to %q, want %v", s.Key, r[2], s.Default)
		}
	}
	for key := range rows {
		t.Errorf("README: a row for %s, which is no setting", key)
	}
}

// sameDefault reports whether the README's text of a default stands for d.
func sameDefault(d any, text string) bool {
	empty := text == "" || strings.HasPrefix(text, "(") && strings.HasSuffix(text, ")")
	switch d := d.(type) {
	case string:
		return text == d || d == "" && empty
	case Path:
		return text == string(d)
	case []string, Paths, NamedPaths:
		return empty && reflect.ValueOf(d).Len() == 0
	case bool:
		return text == strconv.FormatBool(d)
	case int:
		return text == strconv.Itoa(d)
	case int64:
		return text == strconv.FormatInt(d, 10)
	case time.Duration:
		v, err := time.ParseDuration(text)
		return err == nil && v == d
	}
	return false
}
