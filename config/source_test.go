package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestPathsInConfigFile: every setting of kind Path, Paths or NamedPaths
// given as a relative path in the config file is relative to the file's directory,
// whatever the working directory; absolute paths stay; the same relative
// path from a flag or the environment stays relative to the working
// directory.
func TestPathsInConfigFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "ppredeem")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var kinds int
	for _, s := range settings {
		var body string
		var want any
		switch s.Default.(type) {
		case Path:
			body = s.Key + ": ./store/x\n"
			want = filepath.Join(dir, "store", "x")
		case Paths:
			body = s.Key + ": [a.pem, /abs/b.pem, sub/c.pem]\n"
			want = []string{filepath.Join(dir, "a.pem"), "/abs/b.pem", filepath.Join(dir, "sub", "c.pem")}
		case NamedPaths:
			body = s.Key + ": [x=a.pem, y=/abs/b.pem, x = sub/c.pem]\n"
			want = []string{"x=" + filepath.Join(dir, "a.pem"), "y=/abs/b.pem", "x =" + filepath.Join(dir, "sub", "c.pem")}
		default:
			continue
		}
		kinds++
		t.Run(s.Key, func(t *testing.T) {
			file := filepath.Join(dir, s.Key+".yaml")
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Chdir(t.TempDir())
			c, err := load(t, []string{"--config", file})
			if err != nil {
				t.Fatal(err)
			}
			if got := field(c, s.Key).Interface(); !reflect.DeepEqual(got, want) {
				t.Errorf("from the file: %s = %q, want %q", s.Key, got, want)
			}

			// From the environment and from a flag: as given.
			rel, relWant := "rel/x", any("rel/x")
			switch s.Default.(type) {
			case Paths:
				relWant = []string{"rel/x"}
			case NamedPaths:
				rel, relWant = "x=rel/x", []string{"x=rel/x"}
			}
			t.Setenv(s.Env(), rel)
			c, err = load(t, []string{"--config", file})
			if err != nil {
				t.Fatal(err)
			}
			if got := field(c, s.Key).Interface(); !reflect.DeepEqual(got, relWant) {
				t.Errorf("from %s: %s = %q, want %q", s.Env(), s.Key, got, relWant)
			}
			t.Setenv(s.Env(), "")
			c, err = load(t, []string{"--config", file, "--" + s.Flag(), rel})
			if err != nil {
				t.Fatal(err)
			}
			if got := field(c, s.Key).Interface(); !reflect.DeepEqual(got, relWant) {
				t.Errorf("from --%s: %s = %q, want %q", s.Flag(), s.Key, got, relWant)
			}
		})
	}
	if kinds < 3 {
		t.Fatalf("only %d settings of kind Path, Paths or NamedPaths; keys, data_dir and relay_keys are", kinds)
	}
}

// TestPathsInConfigFileForms: a relative config-file path (--config
// conf/c.yaml) gives paths relative to the working directory through it;
// a comma-separated keys or relay_keys string resolves like a list; a default stays as
// it is; a value of the wrong type is still an error.
func TestPathsInConfigFileForms(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("conf", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("conf/c.yaml", []byte("keys: a.pem, ../b.pem\nrelay_keys: age=k.pem, no-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, []string{"--config", "conf/c.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"conf/a.pem", "b.pem"}; !slices.Equal(c.Keys, want) {
		t.Errorf("keys = %q, want %q", c.Keys, want)
	}
	if want := []string{"age=conf/k.pem", "no-file"}; !slices.Equal(c.Relay.Keys, want) {
		t.Errorf("relay_keys = %q, want %q (an entry that is not CLAIMTYPE=FILE left for validation)", c.Relay.Keys, want)
	}
	if c.DataDir != "./data" {
		t.Errorf("data_dir left at its default = %q, want ./data", c.DataDir)
	}
	if err := os.WriteFile("conf/bad.yaml", []byte("keys: {a: b.pem}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, []string{"--config", "conf/bad.yaml"}); err == nil || !strings.Contains(err.Error(), "keys") {
		t.Errorf("keys given as a map: got %v, want an error naming keys", err)
	}
}

// TestIsSet: a setting is set when a flag, the environment or the config
// file gives it, even at its default value; an empty environment variable
// does not count (viper ignores it too).
func TestIsSet(t *testing.T) {
	const key = "db_max_conns"
	isSet := func(args ...string) bool {
		t.Helper()
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		l := Bind(fs, key)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c, err := l.Load()
		if err != nil {
			t.Fatal(err)
		}
		return c.IsSet(key)
	}
	if isSet() {
		t.Error("default: set")
	}
	if !isSet("--db-max-conns", "16") {
		t.Error("flag at the default value: not set")
	}
	t.Setenv("PPREDEEM_DB_MAX_CONNS", "")
	if isSet() {
		t.Error("empty environment variable: set")
	}
	t.Setenv("PPREDEEM_DB_MAX_CONNS", "8")
	if !isSet() {
		t.Error("environment: not set")
	}
	t.Setenv("PPREDEEM_DB_MAX_CONNS", "")
	t.Setenv("PPREDEEM_CONFIG", writeFile(t, "c.yaml", "db_max_conns: 16\n"))
	if !isSet() {
		t.Error("config file: not set")
	}
	t.Setenv("PPREDEEM_CONFIG", writeFile(t, "c.yaml", "listen: 127.0.0.1:1\n"))
	if isSet() {
		t.Error("config file without the key: set")
	}
}
