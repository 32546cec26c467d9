package main

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ppredeem/ppredeem/spend/pgtest"
)

// TestREADMECommands runs the README's shell blocks, top to bottom, as a
// newcomer with a fresh clone would: in a copy of the repository (its
// tracked and untracked, not ignored, files), with the binary the README
// says to install, one shell session's variables carried from block to
// block, and the servers it starts running until a block stops them. Each
// block's directive (readmecheck_test.go) says how it runs; a block without
// one fails the test.
//
// The only changes to the commands are the addresses and the database:
// 127.0.0.1:8080, :8081 and :9090 become free ports (so are the defaults,
// through PPREDEEM_LISTEN, PPREDEEM_GATEWAY_LISTEN and
// PPREDEEM_GATEWAY_UPSTREAM), the database the README creates becomes a
// fresh one on the test server (pgtest), and `go install` installs into a
// temporary GOBIN at the front of PATH.
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the README's commands; skipped with -short")
	}
	src, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeBlocks(src)
	if err != nil {
		t.Fatal(err)
	}
	db, dsn := pgtest.NewDatabaseName(t, "readme")
	pg, err := url.Parse(pgtest.BaseDSN())
	if err != nil || pg.Scheme != "postgres" && pg.Scheme != "postgresql" {
		t.Fatalf("the README check needs %s as a postgres:// URL: %v", pgtest.EnvURL, err)
	}
	dsnHost, dsnPort := pg.Hostname(), pg.Port()
	if dsnPort == "" {
		dsnPort = "5432"
	}

	dir := t.TempDir()
	copyRepository(t, "../..", filepath.Join(dir, "repo"))
	bin := filepath.Join(dir, "bin")
	listen, gateway, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	r := &readmeRun{dir: filepath.Join(dir, "repo"), env: map[string]string{}}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "PPREDEEM_") {
			r.env[k] = v
		}
	}
	r.env["GOBIN"] = bin
	r.env["PATH"] = bin + string(os.PathListSeparator) + os.Getenv("PATH")
	r.env["PPREDEEM_LISTEN"] = listen
	r.env["PPREDEEM_GATEWAY_LISTEN"] = gateway
	r.env["PPREDEEM_GATEWAY_UPSTREAM"] = "http://" + listen
	if pw, ok := pg.User.Password(); ok {
		r.env["PGPASSWORD"] = pw
	}
	r.rewrite = strings.NewReplacer(
		"127.0.0.1:8080", listen,
		"127.0.0.1:8081", gateway,
		"127.0.0.1:9090", admin,
		"postgres://postgres@127.0.0.1:5432/ppredeem", dsn,
		"createdb -h 127.0.0.1 -U postgres ppredeem", "createdb -h "+dsnHost+" -p "+dsnPort+" -U "+pg.User.Username()+" "+db,
	)
	t.Cleanup(r.kill)
	for _, b := range blocks {
		r.do(t, b)
	}
	r.stopAll(t)
}

// TestREADMEDirectives: the check refuses a shell block without a
// directive, a directive it does not understand, and a directive that is
// not before a block.
func TestREADMEDirectives(t *testing.T) {
	for _, tc := range []struct{ md, err string }{
		{"text\n\n```sh\nppredeem serve\n```\n", "README.md:4: a shell block without a directive"},
		{"```\nppredeem serve\n```\n", "README.md:2: a shell block without a directive"},
		{"<!-- check: sprint -->\n```sh\nls\n```\n", `unknown action "sprint"`},
		{"<!-- check: start -->\n```sh\nppredeem serve\n```\n", "start needs the URL"},
		{"<!-- check: run -->\n```console\n$ ls\n```\n", "a console block is a transcript"},
		{"<!-- not run: -->\n```sh\nls\n```\n", "say why"},
		{"<!-- check: run -->\n\ntext\n\n```sh\nls\n```\n", "README.md:1: <!-- check: run --> is not followed by a fenced block"},
		{"<!-- check: run -->\n```json\n{}\n```\n", `a "json" block takes no directive`},
	} {
		if _, err := readmeBlocks([]byte(tc.md)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: got %v, want an error with %q", tc.md, err, tc.err)
		}
	}
	blocks, err := readmeBlocks([]byte("<!-- check: stop; start http://127.0.0.1:8080/readyz -->\n\n```sh\nppredeem serve\n```\n\n```json\n{}\n```\n" +
		"<!-- not run: needs a Docker engine -->\n```sh\ndocker compose up\n```\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || !blocks[0].stop || blocks[0].action != "start" || blocks[0].url != "http://127.0.0.1:8080/readyz" ||
		blocks[0].line != 4 || blocks[0].body != "ppredeem serve\n" || blocks[1].skip != "needs a Docker engine" {
		t.Errorf("parsed %+v", blocks)
	}
}

// copyRepository copies the repository at root (tracked files and
// untracked ones that are not ignored, as they are in the working tree) to
// dst.
func copyRepository(t *testing.T, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		from := filepath.Join(root, name)
		st, err := os.Lstat(from)
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
