package config

import (
	"errors"
	"reflect"
	"slices"
)

// Reload loads the settings again from the sources c came from: the same
// command-line flags, the environment variables and the config file,
// read again from disk (the file named by --config, or by PPREDEEM_CONFIG
// as the process saw it). Each call decodes with a fresh loader, so
// nothing of an earlier load carries over: a key deleted from the file
// falls back to its default. It validates nothing: the caller runs the
// command's Validate on the result, as at start. A Config not made by
// Load cannot reload.
func (c *Config) Reload() (*Config, error) {
	if c.loader == nil {
		return nil, errors.New("config: this configuration was not loaded from flags, environment and file, so it cannot be reloaded")
	}
	return newLoader(c.loader.flags, c.loader.bound).Load()
}

// Changed returns the keys, among keys and in that order, of the settings
// whose values differ between a and b. It panics on an unknown key, like
// Bind.
func Changed(a, b *Config, keys []string) []string {
	va, vb := values(a), values(b)
	var out []string
	for _, key := range keys {
		x, ok := va[key]
		if !ok {
			panic("config: unknown setting " + key)
		}
		if !reflect.DeepEqual(x, vb[key]) {
			out = append(out, key)
		}
	}
	return out
}

// values maps each setting's key to its value in c, following the
// mapstructure tags (squashed structs included).
func values(c *Config) map[string]any {
	out := make(map[string]any, len(settings))
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, ok := f.Tag.Lookup("mapstructure")
			if !ok || !f.IsExported() {
				continue
			}
			if tag == ",squash" {
				walk(v.Field(i))
				continue
			}
			val := v.Field(i).Interface()
			if s, ok := val.([]string); ok {
				val = slices.Clone(s) // nil and empty compare equal below
				if len(s) == 0 {
					val = []string{}
				}
			}
			out[tag] = val
		}
	}
	walk(reflect.ValueOf(c).Elem())
	return out
}

// With returns a copy of c whose settings named in keys take their values
// from from: a reload applies the settings it can change and keeps the
// others as they were at start. It panics on an unknown key, like Bind.
func (c *Config) With(from *Config, keys []string) *Config {
	out := *c
	src := values(from)
	for _, key := range keys {
		val, ok := src[key]
		if !ok {
			panic("config: unknown setting " + key)
		}
		field(&out, key).Set(reflect.ValueOf(val))
	}
	return &out
}

// field returns the settable field of c tagged key.
func field(c *Config, key string) reflect.Value {
	var find func(v reflect.Value) (reflect.Value, bool)
	find = func(v reflect.Value) (reflect.Value, bool) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			switch tag, ok := f.Tag.Lookup("mapstructure"); {
			case !ok || !f.IsExported():
			case tag == ",squash":
				if fv, ok := find(v.Field(i)); ok {
					return fv, true
				}
			case tag == key:
				return v.Field(i), true
			}
		}
		return reflect.Value{}, false
	}
	fv, ok := find(reflect.ValueOf(c).Elem())
	if !ok {
		panic("config: unknown setting " + key)
	}
	return fv
}
