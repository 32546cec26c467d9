package deploycheck

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// neverSent are paths, present or not, that must stay out of the build
// context: version control, local data, keys, local configuration and
// build outputs, at the top and inside the package folders.
var neverSent = []string{
	".git/HEAD",
	".git/config",
	".ci/run",
	".env",
	"data/spent.db",
	"cmd/ppredeem/data/spent.db",
	"cmd/ppredeem/data/notes.txt",
	"spent.db",
	"key.pem",
	"key-2026-11.pem",
	"cmd/ppredeem/key.pem",
	"cmd/ppredeem/testdata/test-key.pem",
	"verify/testdata/vectors.json",
	"ppredeem.yaml",
	"docker-compose.override.yml",
	"ppredeem",
	"cmd/ppredeem/ppredeem",
	"cmd/ppredeem/ppredeem.test",
	"spend/cpu.prof",
}

// Dockerignore is a parsed .dockerignore.
type Dockerignore struct {
	File    string
	matcher *patternmatcher.PatternMatcher
}

// ParseDockerignore parses data as Docker does (moby/patternmatcher's
// ignorefile and matcher).
func ParseDockerignore(file string, data []byte) (*Dockerignore, error) {
	patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	return &Dockerignore{File: file, matcher: pm}, nil
}

// Sent reports whether the file at rel (slash-separated, relative to the
// context) goes into the build context.
func (di *Dockerignore) Sent(rel string) bool {
	if di == nil {
		return true
	}
	excluded, err := di.matcher.MatchesOrParentMatches(rel)
	return err == nil && !excluded
}

// CheckDockerignore checks data, the repository's .dockerignore (nil: there
// is none), against what the Dockerfile's build reads and what must never
// be sent.
func CheckDockerignore(ctx context.Context, repo Repo, data []byte) []Problem {
	ps := problems{file: ".dockerignore"}
	if data == nil {
		ps.add("dockerignore", "there is none: COPY . . sends .git, local data and key files into the build")
		return ps.list
	}
	di, err := ParseDockerignore(ps.file, data)
	if err != nil {
		ps.add("dockerignore", "%v", err)
		return ps.list
	}
	needed, err := repo.BuildFiles(ctx)
	if err != nil {
		ps.add("dockerignore", "%v", err)
		return ps.list
	}
	for _, f := range needed {
		if !di.Sent(f) {
			ps.add("dockerignore", "the build reads %s but it is left out", f)
		}
	}
	for _, f := range neverSent {
		if di.Sent(f) {
			ps.add("dockerignore", "%s would be sent into the build", f)
		}
	}
	tracked, err := trackedFiles(ctx, repo)
	if err != nil {
		ps.add("dockerignore", "%v", err)
		return ps.list
	}
	isNeeded := map[string]bool{}
	for _, f := range needed {
		isNeeded[f] = true
	}
	for _, f := range tracked {
		if di.Sent(f) && !isNeeded[f] && !isPackageSource(f) {
			ps.add("dockerignore", "%s is sent but the build does not read it", f)
		}
	}
	return ps.list
}

// isPackageSource reports whether f is a Go package's non-test source,
// which the build context may carry even where this binary does not
// import the package (spend/pgtest).
func isPackageSource(f string) bool {
	return strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, "_test.go") && strings.Contains(f, "/") &&
		!strings.Contains("/"+path.Dir(f)+"/", "/testdata/")
}

// trackedFiles lists the files git tracks in the repository.
func trackedFiles(ctx context.Context, repo Repo) ([]string, error) {
	cmd := exec.CommandContext(ctx, "git", "ls-files", "-z")
	cmd.Dir = repo.Root
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New("git ls-files: " + err.Error())
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"), nil
}
