package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// version and revision are set by the linker for release and image builds:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.revision=$(git rev-parse HEAD)" ./cmd/ppredeem
//
// Left empty, they come from the build information the go command records
// (runtime/debug.ReadBuildInfo): the main module's version — v1.2.0 for
// `go install github.com/ppredeem/ppredeem/cmd/ppredeem@v1.2.0`, "(devel)"
// for a build from a checkout — and the VCS revision, which a build from a
// git checkout records unless -buildvcs=false. A Docker build does not see
// .git, so the Dockerfile passes both.
var (
	version  = ""
	revision = ""
)

// buildInfo describes the running binary.
type buildInfo struct {
	Version   string // linker-set, else the main module's version, else "(unknown)"
	GoVersion string // the toolchain that built the binary
	Revision  string // VCS revision, "" when unknown
	Time      string // commit time of Revision (RFC 3339), "" when unknown
	Modified  bool   // the working tree had uncommitted changes
}

// currentBuild describes this binary.
func currentBuild() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return describeBuild(version, revision, bi)
}

// describeBuild combines what the linker set with the recorded build
// information (nil when the binary has none); the linker's values win.
func describeBuild(linkVersion, linkRevision string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: linkVersion, Revision: linkRevision, GoVersion: runtime.Version()}
	if bi == nil {
		if b.Version == "" {
			b.Version = "(unknown)"
		}
		return b
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	if b.Version == "" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" {
		b.Version = "(unknown)"
	}
	if b.Revision != "" {
		// The linker named the revision; the recorded time and dirty
		// flag, if any, may describe another one.
		return b
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// write prints b as `ppredeem version` shows it: the version on the first
// line, then one "name: value" line per known detail.
func (b buildInfo) write(w io.Writer) {
	fmt.Fprintf(w, "ppredeem %s\n", b.Version)
	fmt.Fprintf(w, "go:        %s\n", b.GoVersion)
	if b.Revision != "" {
		rev := b.Revision
		if b.Modified {
			rev += " (modified)"
		}
		fmt.Fprintf(w, "revision:  %s\n", rev)
	}
	if b.Time != "" {
		fmt.Fprintf(w, "time:      %s\n", b.Time)
	}
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the Go version and the VCS revision the binary was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			currentBuild().write(cmd.OutOrStdout())
			return nil
		},
	}
}

// setVersion gives root a --version flag that prints what `ppredeem
// version` prints.
func setVersion(root *cobra.Command) {
	b := currentBuild()
	root.Version = b.Version
	// Cobra renders the template with text/template; the text goes in as
	// one quoted string constant, so nothing a linker-set version holds is
	// taken for template syntax.
	var text strings.Builder
	b.write(&text)
	root.SetVersionTemplate("{{" + strconv.Quote(text.String()) + "}}")
}
