package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/spf13/pflag"
)

// TestExampleFileListsEverySettingWithItsDefault keeps ppredeem.example.yaml
// honest: every setting appears, and loading the file changes nothing.
func TestExampleFileListsEverySettingWithItsDefault(t *testing.T) {
	const path = "../ppredeem.example.yaml"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !regexp.MustCompile(`(?m)^` + s.Key + `:`).Match(raw) {
			t.Errorf("%s does not list %s", path, s.Key)
		}
	}
	fromFile, err := load(t, []string{"--config", path})
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := Bind(pflag.NewFlagSet("d", pflag.ContinueOnError)).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(fromFile.Keys) != 0 || len(defaults.Keys) != 0 {
		t.Fatalf("keys: file %q, default %q", fromFile.Keys, defaults.Keys)
	}
	fromFile.Keys, defaults.Keys = nil, nil
	// The file's data_dir is relative to the file's directory.
	if want := filepath.Join(filepath.Dir(path), "data"); fromFile.DataDir != want {
		t.Errorf("data_dir from the example file is %q, want %q", fromFile.DataDir, want)
	}
	fromFile.DataDir = defaults.DataDir
	fromFile.given, defaults.given = nil, nil
	fromFile.loader, defaults.loader = nil, nil // where each came from
	if !reflect.DeepEqual(fromFile, defaults) {
		t.Fatalf("the example file's values differ from the defaults:\nfile:     %+v\ndefaults: %+v", *fromFile, *defaults)
	}
}
