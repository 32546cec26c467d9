package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ppredeem/ppredeem/config"
)

// fatalError is the error a command ends with, and the logger its settings
// configure: main reports it as one more record of the command's log, in
// the command's format, so that a log collector reading JSON lines sees the
// reason a server did not start or stopped.
type fatalError struct {
	err error
	msg string
	log *slog.Logger
}

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// logErrors makes the error cmd's RunE returns reach main with the logger
// of cmd's log_format: a flag, the environment or the config file, as far
// as they were read before the error (an unreadable config file says
// nothing; an invalid format gives text). Set cmd.RunE first.
func logErrors(cmd *cobra.Command, loader *config.Loader) {
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		err := run(c, args)
		if err == nil {
			return nil
		}
		var h slog.Handler = slog.NewTextHandler(c.ErrOrStderr(), nil)
		if loader.LogFormat() == "json" {
			h = slog.NewJSONHandler(c.ErrOrStderr(), nil)
		}
		return &fatalError{err: err, msg: c.CommandPath() + " failed", log: slog.New(h)}
	}
}

// report writes err, which a command ended with, to w: as a log record
// when the command has a logger (logErrors), else as "ppredeem: <err>".
// Either way main then exits with status 1.
func report(w io.Writer, err error) {
	if fe, ok := errors.AsType[*fatalError](err); ok {
		fe.log.Error(fe.msg, "err", fe.err.Error())
		return
	}
	fmt.Fprintln(w, "ppredeem:", err)
}
