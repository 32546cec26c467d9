package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/ppredeem/ppredeem/migrations"
	"github.com/ppredeem/ppredeem/spend/pgtest"
)

// TestMigrateNeedsAnAction: `ppredeem migrate` without an action, with an
// unknown one or with two lists the actions and the usage, and exits 1.
func TestMigrateNeedsAnAction(t *testing.T) {
	for _, tc := range []struct {
		args []string
		what string
	}{
		{[]string{"migrate"}, "migrate needs one action"},
		{[]string{"migrate", "sideways"}, `unknown migrate action "sideways"`},
		{[]string{"migrate", "up", "down"}, "migrate takes one action, not 2"},
	} {
		cmd := exec.Command(binary(t), tc.args...)
		cmd.Env = append(cmd.Environ(), "PPREDEEM_CONFIG=", "PPREDEEM_DATABASE_URL=")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != 1 {
			t.Errorf("%q: got %v, want exit status 1", tc.args, err)
		}
		for _, want := range []string{tc.what, "\n  up ", "\n  down ", "\n  status ", "Usage:\n  ppredeem migrate up|down|status [flags]", "--database-url"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.args, want, stderr.String())
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote to stdout: %s", tc.args, stdout.String())
		}
	}
}

// TestMigrateSaysWhatItDid: migrate up names each migration it applies and
// the version it leaves; again, that nothing was left to apply; down names
// the migration it rolled back.
func TestMigrateSaysWhatItDid(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "cmd")
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) < 2 {
		t.Fatalf("embedded migrations: %q %v", files, err)
	}
	var want strings.Builder
	var latest int64
	for _, f := range files {
		if latest, err = goose.NumericComponent(f); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&want, "applied %s (version %d)\n", f, latest)
	}
	fmt.Fprintf(&want, "the schema is at version %d, up to date\n", latest)
	if out, err := run(t, "migrate", "up", "--database-url", dsn); err != nil || out != want.String() {
		t.Fatalf("migrate up on an empty database: %v\n got: %s\nwant: %s", err, out, want.String())
	}
	again := fmt.Sprintf("nothing to apply: the schema is at version %d, up to date\n", latest)
	if out, err := run(t, "migrate", "up", "--database-url", dsn); err != nil || out != again {
		t.Fatalf("migrate up again: %v\n got: %s\nwant: %s", err, out, again)
	}
	last := files[len(files)-1]
	previous, err := goose.NumericComponent(files[len(files)-2])
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Sprintf("rolled back %s (version %d)\nthe schema is at version %d\n", last, latest, previous)
	if out, err := run(t, "migrate", "down", "--database-url", dsn); err != nil || out != down {
		t.Fatalf("migrate down: %v\n got: %s\nwant: %s", err, out, down)
	}
	up := fmt.Sprintf("applied %s (version %d)\nthe schema is at version %d, up to date\n", last, latest, latest)
	if out, err := run(t, "migrate", "up", "--database-url", dsn); err != nil || out != up {
		t.Fatalf("migrate up after down: %v\n got: %s\nwant: %s", err, out, up)
	}
}
