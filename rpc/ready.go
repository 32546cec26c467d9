package rpc

import "encoding/json"

// readyBody is the body of a /readyz answer: {"status":"..."}, with
// "warnings":[...] when warnings (Options.Warnings, may be nil) lists any.
func readyBody(status string, warnings func() []string) []byte {
	body := struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings,omitempty"`
	}{Status: status}
	if warnings != nil {
		body.Warnings = warnings()
	}
	b, _ := json.Marshal(body) // cannot fail: strings only (invalid UTF-8 becomes U+FFFD)
	return append(b, '\n')
}
