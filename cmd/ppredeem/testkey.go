package main

import (
	"log/slog"
	"slices"

	"github.com/ppredeem/ppredeem/verify"
)

// testKeyWarning is what serve says, in its log and on /readyz, while its
// keys include the public test key.
const testKeyWarning = "serving the public test key " + verify.PublicTestKeyID +
	": anyone can mint tokens it accepts; for real tokens, configure a key of your own (ppredeem keys generate)"

// keyWarnings lists what an operator should know about the key set ids:
// that it holds the public test key.
func keyWarnings(ids []string) []string {
	if slices.Contains(ids, verify.PublicTestKeyID) {
		return []string{testKeyWarning}
	}
	return nil
}

// warnAboutKeys logs keyWarnings(ids) at WARN, at start and after each
// reload.
func warnAboutKeys(log *slog.Logger, ids []string) {
	for _, w := range keyWarnings(ids) {
		log.Warn(w, "key_id", verify.PublicTestKeyID)
	}
}
