package config

import (
	"os"
	"path/filepath"
	"strings"
)

// Path is the kind of a setting that names a file or directory: its
// default in the settings table is a Path. Given in the config file, a
// relative path is relative to the file's directory.
type Path string

// Paths is the kind of a setting that names a list of files or
// directories (comma-separated on the command line and in the
// environment): its default in the settings table is a Paths. Given in
// the config file, each relative path is relative to the file's directory.
type Paths []string

// NamedPaths is the kind of a setting that lists NAME=PATH entries
// (relay_keys: CLAIMTYPE=FILE): its default in the settings table is a
// NamedPaths. Given in the config file, each relative PATH is relative
// to the file's directory; the NAME is left as it is.
type NamedPaths []string

// plainDefault is d as viper and mapstructure handle it: the kinds Path,
// Paths and NamedPaths as the string and []string they are.
func plainDefault(d any) any {
	switch d := d.(type) {
	case Path:
		return string(d)
	case Paths:
		return []string(d)
	case NamedPaths:
		return []string(d)
	}
	return d
}

// origin is where a setting's value comes from; the highest one in force
// wins (flag, then environment, then file, then default).
type origin int

const (
	fromDefault origin = iota
	fromFile
	fromEnv
	fromFlag
)

// origin tells where the value of the setting key comes from, with viper's
// rules: a flag counts when it was given, an environment variable when it
// is set and not empty.
func (l *Loader) origin(key string) origin {
	if name, ok := l.bound[key]; ok {
		if f := l.flags.Lookup(name); f != nil && f.Changed {
			return fromFlag
		}
	}
	if s, ok := lookup(key); ok {
		if v, ok := os.LookupEnv(s.Env()); ok && v != "" {
			return fromEnv
		}
	}
	if l.v.InConfig(key) {
		return fromFile
	}
	return fromDefault
}

// given lists the settings that a flag, the environment or the config file
// gives a value.
func (l *Loader) given() map[string]bool {
	set := map[string]bool{}
	for _, s := range settings {
		if l.origin(s.Key) != fromDefault {
			set[s.Key] = true
		}
	}
	return set
}

// IsSet reports whether the setting key was given by a flag, the
// environment or the config file, rather than left at its default. A
// setting whose value the config file repeats from the default is set.
func (c *Config) IsSet(key string) bool { return c.given[key] }

// resolvePaths makes the relative paths that the config file gives (for
// settings of kind Path, Paths and NamedPaths) relative to dir, the file's
// directory.
// Paths from flags and the environment are left as they are: relative to
// the working directory, as a shell user expects.
func (l *Loader) resolvePaths(dir string) {
	for _, s := range settings {
		if l.origin(s.Key) != fromFile {
			continue
		}
		value := l.v.Get(s.Key)
		switch s.Default.(type) {
		case Path:
			if p, ok := value.(string); ok {
				l.v.Set(s.Key, resolve(dir, p))
			}
		case Paths:
			if list, ok := asList(value); ok {
				for i, p := range list {
					list[i] = resolve(dir, p)
				}
				l.v.Set(s.Key, list)
			}
		case NamedPaths:
			if list, ok := asList(value); ok {
				for i, entry := range list {
					// An entry without "=" is left for validation to refuse.
					if name, p, ok := strings.Cut(entry, "="); ok {
						list[i] = name + "=" + resolve(dir, strings.TrimSpace(p))
					}
				}
				l.v.Set(s.Key, list)
			}
		}
		// A value of another type is left for Load's decoding to refuse.
	}
}

// asList is a config-file value of a list setting as a list of paths: a
// YAML or JSON list of strings, or a comma-separated string.
func asList(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return splitList([]string{v}), true
	case []string:
		return splitList(v), true
	case []any:
		list := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			list[i] = s
		}
		return splitList(list), true
	}
	return nil, false
}

// resolve is p relative to dir, unless p is absolute or empty.
func resolve(dir, p string) string {
	if strings.TrimSpace(p) == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
