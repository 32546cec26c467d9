package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestREADMEGatewayExample runs the README's gateway example, the issue's
// curl commands with their <placeholders>, as written: each placeholder is
// replaced by the value a platform has at that point (the gateway's
// address, its public key PEM as JSON string content, its API key, and
// what the earlier answers gave), the verifier reports where the example's
// comment says so, and every command runs with bash and curl against the
// gateway's wiring in front of the real provider.
func TestREADMEGatewayExample(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README's example needs curl")
	}
	src, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readmeBlocks(src)
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, b := range blocks {
		if strings.HasPrefix(b.skip, "templates:") && strings.Contains(b.body, "<gateway>/relays") {
			example = b.body
		}
	}
	if example == "" {
		t.Fatal("the README has no gateway example (a block not run as \"templates: ...\")")
	}
	// The commands, continuation lines joined; the comment line is where the
	// verifier reports.
	var commands []string
	for line := range strings.Lines(strings.ReplaceAll(example, "\\\n", "")) {
		commands = append(commands, strings.TrimSpace(line))
	}
	if len(commands) != 4 || !strings.HasPrefix(commands[1], "# ---- the verifier") {
		t.Fatalf("the example is not three curl commands around the verifier's comment:\n%s", example)
	}

	s, _ := newRelayServer(t, relayArgs(embeddedStore(t))...)
	g := startGateway(t, "--upstream", s.base)
	priv, publicPEM := platformKey(t, 2048)
	pemJSON, _ := json.Marshal(publicPEM)
	values := map[string]string{
		"<gateway>":             strings.TrimPrefix(g.base, "http://"),
		"<your_public_key_pem>": strings.Trim(string(pemJSON), `"`),
		"<your_api_key>":        testAPIKey,
	}
	run := func(command string) answer {
		t.Helper()
		for k, v := range values {
			command = strings.ReplaceAll(command, k, v)
		}
		if strings.Contains(command, "<") {
			t.Fatalf("a placeholder without a value: %s", command)
		}
		// curl exits 22 on an HTTP error: the answer is a 2xx.
		out, err := exec.Command("bash", "-c", command+" --silent --show-error --fail-with-body").Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
		return answer{status: 200, body: out}
	}

	created := run(commands[0])
	r := relaySession{created.str(t, "relay-token"), created.str(t, "relay-secret"), created.str(t, "relay-session-access-token")}
	if r.token == "" || r.secret == "" || r.access == "" {
		t.Fatalf("POST /relays: %s", created.body)
	}
	if a := (provider{t, s.base}).report(r, "passed", documentChecked); a.status != 200 {
		t.Fatalf("the verifier's report: %d %s", a.status, a.body)
	}
	values["<relay-token>"], values["<relay-secret>"] = r.token, r.secret
	values["<privacy-pass-token>"] = run(commands[2]).str(t, "privacy-pass-token")
	payload, consumed := sealedClaimOf(t, run(commands[3]), priv)
	if !consumed || payload["claim_type"] != claimAge || payload["claim_result"] != "passed" {
		t.Fatalf("the example's claim %v, token-consumed %v", payload, consumed)
	}
}
