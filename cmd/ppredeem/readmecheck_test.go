package main

// The README check: the README's shell blocks, extracted and run as a
// newcomer would run them (readme_test.go). This file reads the README;
// the runner is below it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"

	"github.com/ppredeem/ppredeem/rpc/rpctest"
)

// A directive is an HTML comment on the line before a fenced block (blank
// lines between are allowed) that says what the check does with it:
//
//	<!-- check: run -->                  run the block with bash; it must exit 0
//	<!-- check: transcript -->           a console block: run each "$ " line, compare its output with the lines below it
//	<!-- check: start URL -->            start the block in the background, wait until GET URL answers 200
//	<!-- check: stop; ACTION -->         first stop the blocks started so far (as Ctrl-C does), then ACTION
//	<!-- not run: REASON -->             skip the block, for the reason given
//
// Every block in a shell language (sh, bash, shell, console) or in none
// needs a directive, so a block added without one fails the check instead of
// going unchecked; other languages (json, yaml...) are not commands and take
// none.
type readmeBlock struct {
	line    int    // the block's first line in the README, 1-based
	lang    string // the fence's info string's first word
	body    string
	skip    string // the reason, for "not run"
	stop    bool   // stop the started blocks first
	action  string // "run", "transcript" or "start"
	url     string // for "start"
	comment string // the directive as written
}

var (
	directiveRE = regexp.MustCompile(`(?s)^\s*<!--\s*(check|not run):(.*?)-->\s*$`)
	shellLangs  = []string{"", "sh", "bash", "shell", "console"}
)

// readmeBlocks returns the README's fenced blocks that need a directive,
// in order, with their directives; or an error for each block without
// one, each directive without a block, and each directive it does not
// understand.
func readmeBlocks(src []byte) ([]readmeBlock, error) {
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	lineOf := func(offset int) int { return bytes.Count(src[:offset], []byte("\n")) + 1 }
	var blocks []readmeBlock
	var errs []error
	err := ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.HTMLBlock:
			comment, ok := htmlComment(n, src)
			if !ok || !directiveRE.MatchString(comment) {
				return ast.WalkContinue, nil
			}
			if _, ok := n.NextSibling().(*ast.FencedCodeBlock); !ok {
				errs = append(errs, fmt.Errorf("README.md:%d: %s is not followed by a fenced block", lineOf(n.Lines().At(0).Start), comment))
			}
		case *ast.FencedCodeBlock:
			b := readmeBlock{lang: string(n.Language(src))}
			var body strings.Builder
			for i := range n.Lines().Len() {
				seg := n.Lines().At(i)
				if i == 0 {
					b.line = lineOf(seg.Start)
				}
				body.Write(seg.Value(src))
			}
			b.body = body.String()
			if b.line == 0 && n.Info != nil {
				b.line = lineOf(n.Info.Segment.Start) + 1
			}
			prev, _ := n.PreviousSibling().(*ast.HTMLBlock)
			var comment string
			if prev != nil {
				comment, _ = htmlComment(prev, src)
			}
			hasDirective := directiveRE.MatchString(comment)
			switch {
			case !slices.Contains(shellLangs, b.lang) && hasDirective:
				errs = append(errs, fmt.Errorf("README.md:%d: a %q block takes no directive (only shell blocks run)", b.line, b.lang))
			case !slices.Contains(shellLangs, b.lang):
			case !hasDirective:
				errs = append(errs, fmt.Errorf("README.md:%d: a shell block without a directive: put <!-- check: run -->, "+
					"<!-- check: transcript -->, <!-- check: start URL --> or <!-- not run: REASON --> on the line before it "+
					"(cmd/ppredeem/readmecheck_test.go)", b.line))
			default:
				if err := b.parseDirective(comment); err != nil {
					errs = append(errs, fmt.Errorf("README.md:%d: %s: %w", b.line, comment, err))
				} else {
					blocks = append(blocks, b)
				}
			}
		}
		return ast.WalkContinue, nil
	})
	if err != nil {
		return nil, err
	}
	return blocks, errors.Join(errs...)
}

// htmlComment is the text of an HTML block that is one comment.
func htmlComment(n *ast.HTMLBlock, src []byte) (string, bool) {
	if n.HTMLBlockType != ast.HTMLBlockType2 {
		return "", false
	}
	var b strings.Builder
	for i := range n.Lines().Len() {
		seg := n.Lines().At(i)
		b.Write(seg.Value(src))
	}
	if n.HasClosure() {
		closure := n.ClosureLine
		b.Write(closure.Value(src))
	}
	return strings.TrimSpace(b.String()), true
}

func (b *readmeBlock) parseDirective(comment string) error {
	m := directiveRE.FindStringSubmatch(comment)
	b.comment = comment
	arg := strings.TrimSpace(m[2])
	if m[1] == "not run" {
		if arg == "" {
			return errors.New("say why it does not run")
		}
		b.skip = arg
		return nil
	}
	actions := strings.Split(arg, ";")
	for i := range actions {
		actions[i] = strings.TrimSpace(actions[i])
	}
	if actions[0] == "stop" {
		b.stop = true
		actions = actions[1:]
	}
	if len(actions) != 1 {
		return errors.New(`want one action ("run", "transcript" or "start URL"), after "stop;" if the started blocks must stop first`)
	}
	word, rest, _ := strings.Cut(actions[0], " ")
	b.action, b.url = word, strings.TrimSpace(rest)
	switch {
	case word == "start" && b.url == "":
		return errors.New("start needs the URL that answers 200 once the block serves")
	case word == "transcript" && b.lang != "console":
		return errors.New("a transcript is a console block")
	case (word == "run" || word == "start") && b.lang == "console":
		return errors.New("a console block is a transcript")
	case word != "start" && b.url != "":
		return fmt.Errorf("%s takes no argument", word)
	case word != "run" && word != "transcript" && word != "start":
		return fmt.Errorf("unknown action %q", word)
	}
	return nil
}

// readmeRun runs blocks as one shell session would: in dir (a copy of the
// repository), with the variables the blocks before exported, the servers
// they started still running.
type readmeRun struct {
	dir     string
	env     map[string]string
	rewrite *strings.Replacer
	started []*startedBlock
}

// startedBlock is a block running in the background, in its own process
// group.
type startedBlock struct {
	block readmeBlock
	cmd   *exec.Cmd
	out   *rpctest.LogBuffer
	done  chan error
}

// preamble starts every block: stop at the first failing command, and
// export every variable a block sets, as an interactive shell keeps them
// for the commands after.
const preamble = "set -euo pipefail\nset -a\n"

// environ is r.env as exec wants it.
func (r *readmeRun) environ() []string {
	var env []string
	for k, v := range r.env {
		env = append(env, k+"="+v)
	}
	return env
}

// command is bash running script in r.dir, in its own process group, which
// ctx's end kills.
func (r *readmeRun) command(ctx context.Context, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-c", preamble+script)
	cmd.Dir = r.dir
	cmd.Env = r.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// shell runs script to its end and keeps the variables it exported.
func (r *readmeRun) shell(script string) (stdout, stderr string, err error) {
	envFile := filepath.Join(r.dir, ".readme-check-env")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := r.command(ctx, script+"\nenv -0 >"+envFile+"\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), errOut.String(), err
	}
	raw, err := os.ReadFile(envFile)
	if err != nil {
		return out.String(), errOut.String(), err
	}
	os.Remove(envFile)
	env := map[string]string{}
	for kv := range strings.SplitSeq(strings.TrimSuffix(string(raw), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PWD", "OLDPWD", "SHLVL", "_": // the shell's own
		default:
			env[k] = v
		}
	}
	r.env = env
	return out.String(), errOut.String(), nil
}

// do runs one block as its directive says.
func (r *readmeRun) do(t *testing.T, b readmeBlock) {
	t.Helper()
	if b.skip != "" {
		t.Logf("README.md:%d: not run: %s", b.line, b.skip)
		return
	}
	if b.stop {
		r.stopAll(t)
	}
	body := r.rewrite.Replace(b.body)
	switch b.action {
	case "run":
		if stdout, stderr, err := r.shell(body); err != nil {
			t.Fatalf("README.md:%d: %v\n%s\nstdout:\n%s\nstderr:\n%s", b.line, err, body, stdout, stderr)
		}
	case "transcript":
		r.transcript(t, b.line, body)
	case "start":
		r.start(t, b, body, r.rewrite.Replace(b.url))
	}
}

// transcript runs each "$ " line of a console block and compares what it
// prints with the lines under it.
func (r *readmeRun) transcript(t *testing.T, line int, body string) {
	t.Helper()
	type step struct {
		line    int
		command string
		want    []string
	}
	var steps []step
	for i, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if c, ok := strings.CutPrefix(l, "$ "); ok {
			steps = append(steps, step{line: line + i, command: c})
			continue
		}
		if len(steps) == 0 {
			t.Fatalf("README.md:%d: a transcript starts with a \"$ \" command line", line+i)
		}
		steps[len(steps)-1].want = append(steps[len(steps)-1].want, l)
	}
	for _, s := range steps {
		stdout, stderr, err := r.shell(s.command)
		if err != nil {
			t.Fatalf("README.md:%d: %s: %v\n%s%s", s.line, s.command, err, stdout, stderr)
		}
		if got, want := strings.TrimSuffix(stdout, "\n"), strings.Join(s.want, "\n"); got != want {
			t.Errorf("README.md:%d: %s printed\n%s\nthe README shows\n%s\nstderr:\n%s", s.line, s.command, got, want, stderr)
		}
	}
}

// start runs a block in the background and waits until url answers 200.
func (r *readmeRun) start(t *testing.T, b readmeBlock, body, url string) {
	t.Helper()
	cmd := r.command(context.Background(), body)
	s := &startedBlock{block: b, cmd: cmd, out: new(rpctest.LogBuffer), done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	r.started = append(r.started, s)
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("README.md:%d: exited before %s answered: %v\n%s\n%s", b.line, url, err, body, s.out.String())
		default:
		}
		if resp, err := client.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("README.md:%d: %s did not answer 200 within 2 minutes\n%s", b.line, url, s.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAll stops the started blocks as Ctrl-C would (SIGINT to each process
// group), newest first; each must exit with status 0.
func (r *readmeRun) stopAll(t *testing.T) {
	t.Helper()
	for i := len(r.started) - 1; i >= 0; i-- {
		s := r.started[i]
		if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Fatal(err)
		}
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("README.md:%d: after Ctrl-C: %v\n%s", s.block.line, err, s.out.String())
			}
		case <-time.After(time.Minute):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("README.md:%d: still running a minute after Ctrl-C\n%s", s.block.line, s.out.String())
		}
	}
	r.started = nil
}

// kill ends whatever is still running, for a test that failed halfway.
func (r *readmeRun) kill() {
	for _, s := range r.started {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	r.started = nil
}
