package config

import (
	"fmt"
	"log/slog"
)

// SlogLevel is the log_level setting as a slog.Level.
func (c *Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// LogFormat is the log_format setting as far as l knows it, even when
// Load failed: from a flag, the environment, and the config file once it
// was read. An error that stops a command is reported in this format.
func (l *Loader) LogFormat() string { return l.v.GetString("log_format") }
