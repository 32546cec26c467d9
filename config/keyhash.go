package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// NamedHash is one entry of a NAME=SHA256HEX list (issue_keys, api_keys,
// verifier_keys): a name and the SHA-256 of the key the name stands for.
// The server is configured with the hash only, never the key.
type NamedHash struct {
	Name string
	Hash [32]byte
}

// namedHashes parses the NAME=SHA256HEX list of the setting key: each
// name 1 to 64 of A-Z a-z 0-9 . _ - (ValidName), each hash the lowercase
// hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`, or what
// `ppredeem apikeys generate` prints); no name and no hash twice (two
// names for one key would leave it to chance which one a request is
// counted under). Every bad entry is reported (and nothing returned); the errors quote names,
// never hashes: an entry may hold a key pasted by mistake.
func namedHashes(key string, list []string) ([]NamedHash, error) {
	var out []NamedHash
	var errs []error
	names := map[string]bool{}
	hashes := map[[32]byte]string{}
	for i, entry := range splitList(list) {
		name, hexHash, ok := strings.Cut(entry, "=")
		name, hexHash = strings.TrimSpace(name), strings.TrimSpace(hexHash)
		nh := NamedHash{Name: name}
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: entry %d is not NAME=SHA256HEX", key, i+1))
			continue
		case !ValidName(name):
			errs = append(errs, fmt.Errorf("%s: entry %d: the name must be 1 to 64 letters, digits, '.', '_' or '-'", key, i+1))
			continue
		case !decodeHash(nh.Hash[:], hexHash):
			errs = append(errs, fmt.Errorf("%s: %s: the hash must be 64 lowercase hex digits (the SHA-256 of the key, as ppredeem apikeys generate prints it)", key, name))
			continue
		case names[name]:
			errs = append(errs, fmt.Errorf("%s: %s is listed twice", key, name))
			continue
		case hashes[nh.Hash] != "":
			errs = append(errs, fmt.Errorf("%s: %s has the same key as %s", key, name, hashes[nh.Hash]))
			continue
		}
		names[name], hashes[nh.Hash] = true, name
		out = append(out, nh)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// decodeHash decodes 64 lowercase hex digits into dst.
func decodeHash(dst []byte, text string) bool {
	if len(text) != 2*len(dst) || strings.ToLower(text) != text {
		return false
	}
	_, err := hex.Decode(dst, []byte(text))
	return err == nil
}

// ValidName reports whether s can name an entry of a NAME=... list (a
// key's owner, a claim type): 1 to 64 ASCII letters, digits, '.', '_' or
// '-'.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
