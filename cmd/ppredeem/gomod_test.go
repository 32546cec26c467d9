package main

import (
	"bytes"
	"encoding/json"
	"errors"
	goversion "go/version"
	"io"
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// ownGoFloor is the newest Go release whose language or standard library
// this module's own code uses: errors.AsType (Go 1.26) in spend; before
// it, sync.WaitGroup.Go (Go 1.25) in rpc and cmd/internal/loadgen. go
// vet's stdversion analyzer reports any use of a newer standard-library
// API than the go directive allows.
const ownGoFloor = "1.26.0"

// TestGoDirectiveIsTheLowestNeeded: go.mod's go directive is the lowest Go
// version the module needs — the newest of its own floor and its
// dependencies' go directives — and there is no toolchain line. A higher
// directive (go 1.26.8 once) forces every module that imports a package of
// this one, rpc/client for one, onto that release for nothing.
func TestGoDirectiveIsTheLowestNeeded(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "-json", "all")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m -json all: %v", err)
	}
	var directive, need, needBy string
	need, needBy = ownGoFloor, "this module's own code"
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct {
			Path      string
			Version   string
			Main      bool
			GoVersion string
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Main:
			directive = m.GoVersion
		case m.GoVersion != "" && goversion.Compare("go"+m.GoVersion, "go"+need) > 0:
			need, needBy = m.GoVersion, m.Path+"@"+m.Version
		}
	}
	if directive == "" {
		t.Fatal("go list -m -json all named no main module with a go directive")
	}
	if directive != need {
		t.Errorf("go.mod says go %s; the lowest Go the module needs is %s (set by %s)", directive, need, needBy)
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^toolchain\s`).Match(mod) {
		t.Error("go.mod has a toolchain line: the go directive alone says what the module needs")
	}
}
