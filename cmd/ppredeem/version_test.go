package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/ppredeem/ppredeem", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "-trimpath", Value: "true"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-11-20T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/ppredeem/ppredeem", Version: "(devel)"}}
	for _, tc := range []struct {
		name                 string
		linkVersion, linkRev string
		info                 *debug.BuildInfo
		want                 buildInfo
	}{
		{"build info only", "", "", vcs, buildInfo{Version: "v1.4.0", GoVersion: "go1.26.8",
			Revision: "0123456789abcdef0123456789abcdef01234567", Time: "2026-11-20T10:00:00Z", Modified: true}},
		{"linker version, recorded revision", "v2.0.0-rc.1", "", vcs, buildInfo{Version: "v2.0.0-rc.1", GoVersion: "go1.26.8",
			Revision: "0123456789abcdef0123456789abcdef01234567", Time: "2026-11-20T10:00:00Z", Modified: true}},
		// A linker-named revision is not described by the recorded time
		// and dirty flag.
		{"linker version and revision", "v2.0.0", "fedcba98", vcs, buildInfo{Version: "v2.0.0", GoVersion: "go1.26.8", Revision: "fedcba98"}},
		{"checkout without vcs stamping", "", "", devel, buildInfo{Version: "(devel)", GoVersion: "go1.26.8"}},
		{"no build info", "", "", nil, buildInfo{Version: "(unknown)", GoVersion: runtime.Version()}},
		{"no build info, linker version", "v3", "", nil, buildInfo{Version: "v3", GoVersion: runtime.Version()}},
	} {
		if got := describeBuild(tc.linkVersion, tc.linkRev, tc.info); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestBuildInfoOutput(t *testing.T) {
	var b strings.Builder
	buildInfo{Version: "v1.4.0", GoVersion: "go1.26.8", Revision: "abc123", Time: "2026-11-20T10:00:00Z", Modified: true}.write(&b)
	want := "ppredeem v1.4.0\n" +
		"go:        go1.26.8\n" +
		"revision:  abc123 (modified)\n" +
		"time:      2026-11-20T10:00:00Z\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	buildInfo{Version: "(devel)", GoVersion: "go1.26.8"}.write(&b)
	if want := "ppredeem (devel)\ngo:        go1.26.8\n"; b.String() != want {
		t.Errorf("without vcs: got %q, want %q", b.String(), want)
	}
}

// TestVersionCommands: `ppredeem version` and `ppredeem --version` print
// the same description of the running binary.
func TestVersionCommands(t *testing.T) {
	var want strings.Builder
	currentBuild().write(&want)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if out != want.String() {
			t.Errorf("%v printed\n%s\nwant\n%s", args, out, want.String())
		}
	}
	if !strings.Contains(want.String(), "go:        "+runtime.Version()+"\n") {
		t.Errorf("no Go version line:\n%s", want.String())
	}
}

// TestVersionLinkerFlags builds the binary as the Dockerfile does, with the
// version and revision set by -ldflags -X, and runs both spellings.
func TestVersionLinkerFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "ppredeem")
	const ver, rev = "v1.2.3-rc.1+test", "4f2c0e1d"
	build := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-X main.version="+ver+" -X main.revision="+rev, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "ppredeem " + ver + "\n" +
		"go:        " + strings.TrimSpace(string(goVersion)) + "\n" +
		"revision:  " + rev + "\n"
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).CombinedOutput()
		if err != nil {
			t.Fatalf("ppredeem %s: %v\n%s", arg, err, out)
		}
		if string(out) != want {
			t.Errorf("ppredeem %s printed\n%s\nwant\n%s", arg, out, want)
		}
	}
}
