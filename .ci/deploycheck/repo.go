package deploycheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v4"
)

// Problem is one rule a deployment file breaks.
type Problem struct {
	File    string // relative to the repository
	Rule    string // the rule's name, as listed in the package doc
	Message string
}

func (p Problem) String() string { return p.File + ": " + p.Rule + ": " + p.Message }

// problems collects the Problems of one file.
type problems struct {
	file string
	list []Problem
}

func (ps *problems) add(rule, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.file, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// Repo is a checkout of ppredeem: the files the checks read besides the
// deployment files themselves.
type Repo struct {
	Root string // absolute

	buildFiles *onceValue // what `go list` says, asked once per Repo
}

// onceValue remembers the first answer of a slow question.
type onceValue struct {
	once  sync.Once
	value []string
	err   error
}

// FindRepo returns the repository holding dir: the nearest parent with the
// example config file and a go.mod.
func FindRepo(dir string) (Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Repo{}, err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if fileExists(filepath.Join(d, "ppredeem.example.yaml")) && fileExists(filepath.Join(d, "go.mod")) {
			return Repo{Root: d, buildFiles: &onceValue{}}, nil
		}
		if filepath.Dir(d) == d {
			return Repo{}, fmt.Errorf("no ppredeem repository above %s", abs)
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Path is rel inside the repository.
func (r Repo) Path(rel string) string { return filepath.Join(r.Root, filepath.FromSlash(rel)) }

// GoDirective is go.mod's go line, e.g. "1.26.8".
func (r Repo) GoDirective() (string, error) {
	data, err := os.ReadFile(r.Path("go.mod"))
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "go" {
			return f[1], nil
		}
	}
	return "", errors.New("go.mod has no go line")
}

// Defaults are the serve settings the checks need, as the example config
// file lists them (a test in cmd/ppredeem keeps that file equal to the
// built-in defaults).
type Defaults struct {
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration
	Listen          string
}

// ExampleDefaults reads ppredeem.example.yaml.
func (r Repo) ExampleDefaults() (Defaults, error) {
	data, err := os.ReadFile(r.Path("ppredeem.example.yaml"))
	if err != nil {
		return Defaults{}, err
	}
	var raw struct {
		ShutdownTimeout string `yaml:"shutdown_timeout"`
		DrainDelay      string `yaml:"drain_delay"`
		Listen          string `yaml:"listen"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return Defaults{}, fmt.Errorf("ppredeem.example.yaml: %w", err)
	}
	var d Defaults
	if d.ShutdownTimeout, err = time.ParseDuration(raw.ShutdownTimeout); err != nil {
		return Defaults{}, fmt.Errorf("ppredeem.example.yaml: shutdown_timeout: %w", err)
	}
	if d.DrainDelay, err = time.ParseDuration(raw.DrainDelay); err != nil {
		return Defaults{}, fmt.Errorf("ppredeem.example.yaml: drain_delay: %w", err)
	}
	d.Listen = raw.Listen
	return d, nil
}

// BuildFiles lists, relative to the root and slash-separated, every file
// `go build ./cmd/ppredeem` reads in the Dockerfile's build: go.mod, go.sum
// and the Go and embedded files of the main module's packages it imports,
// for linux with cgo off.
func (r Repo) BuildFiles(ctx context.Context) ([]string, error) {
	if r.buildFiles == nil {
		return r.listBuildFiles(ctx)
	}
	r.buildFiles.once.Do(func() { r.buildFiles.value, r.buildFiles.err = r.listBuildFiles(ctx) })
	return slices.Clone(r.buildFiles.value), r.buildFiles.err
}

func (r Repo) listBuildFiles(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module", "./cmd/ppredeem")
	cmd.Dir = r.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v\n%s", err, stderr.Bytes())
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			Dir        string
			GoFiles    []string
			EmbedFiles []string
			Module     *struct{ Main bool }
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		rel, err := filepath.Rel(r.Root, pkg.Dir)
		if err != nil {
			return nil, err
		}
		for _, f := range append(pkg.GoFiles, pkg.EmbedFiles...) {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	return files, nil
}
