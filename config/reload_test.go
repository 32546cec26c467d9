package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestReloadRereadsTheFile: Reload reads the config file again with a
// fresh loader (a key deleted from the file falls back to its default),
// keeps the flags, and reports a broken file without a Config.
func TestReloadRereadsTheFile(t *testing.T) {
	file := writeFile(t, "c.yaml", "keys: [a.pem]\nspend_batch: 7\nlisten: 127.0.0.1:1001\n")
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	l := Bind(fs, "listen", "keys", "spend_batch", "data_dir")
	if err := fs.Parse([]string{"--config", file, "--data-dir", "/flag"}); err != nil {
		t.Fatal(err)
	}
	first, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("keys: [a.pem, b.pem]\nlisten: 127.0.0.1:1002\ndata_dir: /file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := first.Reload()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(file) // the file's relative paths are relative to it
	if !slices.Equal(second.Keys, []string{filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")}) || second.SpendBatch != 256 || second.DataDir != "/flag" {
		t.Fatalf("reloaded: keys %q, spend_batch %d (want the default 256), data_dir %q (the flag wins)", second.Keys, second.SpendBatch, second.DataDir)
	}
	keys := []string{"listen", "admin_listen", "keys", "spend_batch", "data_dir"}
	if got := Changed(first, second, keys); !slices.Equal(got, []string{"listen", "keys", "spend_batch"}) {
		t.Fatalf("Changed = %q", got)
	}
	if got := Changed(second, second, keys); got != nil {
		t.Fatalf("Changed of a config with itself = %q", got)
	}
	if err := os.WriteFile(file, []byte("keys: [a.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := second.Reload(); err == nil || c != nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("reload of a broken file: %v, %v", c, err)
	}
	if _, err := (&Config{}).Reload(); err == nil {
		t.Fatal("a Config made by hand reloaded")
	}
}

// TestChangedSeesGatewaySettings: the squashed gateway settings are
// compared like the others; an empty and a missing list are equal.
func TestChangedSeesGatewaySettings(t *testing.T) {
	a, b := &Config{}, &Config{Keys: []string{}}
	b.Gateway.Upstream = "http://x"
	if got := Changed(a, b, []string{"keys", "gateway_upstream"}); !slices.Equal(got, []string{"gateway_upstream"}) {
		t.Fatalf("Changed = %q", got)
	}
}

// TestWithTakesOnlyTheNamedSettings: With copies the named settings (a
// squashed one too) and leaves the receiver alone.
func TestWithTakesOnlyTheNamedSettings(t *testing.T) {
	running := &Config{Listen: "a:1", Keys: []string{"old.pem"}, MaxBindings: 3}
	next := &Config{Listen: "b:2", Keys: []string{"new.pem"}, MaxBindings: 9}
	next.Gateway.Upstream = "http://u"
	got := running.With(next, []string{"keys", "max_bindings", "gateway_upstream"})
	if got.Listen != "a:1" || !slices.Equal(got.Keys, []string{"new.pem"}) || got.MaxBindings != 9 || got.Gateway.Upstream != "http://u" {
		t.Fatalf("With = %+v", got)
	}
	if running.MaxBindings != 3 || running.Keys[0] != "old.pem" {
		t.Fatalf("With changed its receiver: %+v", running)
	}
}
