package deploycheck

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"
)

func testRepo(t *testing.T) Repo {
	t.Helper()
	repo, err := FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func repoFiles(t *testing.T, repo Repo) Files {
	t.Helper()
	return Files{
		Dockerfile:   readFile(t, repo.Path("Dockerfile")),
		Compose:      readFile(t, repo.Path("docker-compose.yml")),
		Dockerignore: readFile(t, repo.Path(".dockerignore")),
	}
}

func check(t *testing.T, repo Repo, files Files) []Problem {
	t.Helper()
	problems, err := CheckFiles(context.Background(), repo, files, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return problems
}

// TestDeploymentFiles: the repository's Dockerfile, .dockerignore and
// docker-compose.yml break no rule.
func TestDeploymentFiles(t *testing.T) {
	repo := testRepo(t)
	problems, err := Check(context.Background(), repo, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestIssue12Files: the files as issue 12 found them (testdata/issue12, no
// .dockerignore) break the rule of each of its complaints.
func TestIssue12Files(t *testing.T) {
	repo := testRepo(t)
	problems := check(t, repo, Files{
		Dockerfile: readFile(t, filepath.Join("testdata", "issue12", "Dockerfile")),
		Compose:    readFile(t, filepath.Join("testdata", "issue12", "docker-compose.yml")),
	})
	t.Logf("the files of issue 12:\n%s", list(problems))
	for _, want := range []struct{ file, rule, text string }{
		// docker-compose: stop_grace_period above shutdown_timeout.
		{"docker-compose.yml", "stop-grace", "Docker's default is 10s"},
		// The key mounted so that the container's user can read it.
		{"docker-compose.yml", "keys", "is not numeric"},
		// A named volume for the embedded store's data.
		{"docker-compose.yml", "embedded-volume", "no service runs the embedded store"},
		// The public test key is served without a word.
		{"docker-compose.yml", "test-key", "PUBLIC-TEST-KEY"},
		// The healthcheck follows the configured port (and distroless has no wget).
		{"docker-compose.yml", "healthcheck", "`ppredeem healthcheck`"},
		{"Dockerfile", "healthcheck", "exec form"},
		// A supported base image, pinned by digest.
		{"Dockerfile", "base-supported", "FROM alpine:3.20: alpine3.20 left security support on 2026-04-01"},
		{"Dockerfile", "base-pinned", "FROM alpine:3.20"},
		{"Dockerfile", "base-pinned", "FROM golang:1.26-bookworm"},
		{"Dockerfile", "builder-go", "must name a Go release"},
		// VOLUME /data.
		{"Dockerfile", "volume", "is not a VOLUME"},
		// OCI labels and the version baked in.
		{"Dockerfile", "labels", "org.opencontainers.image.version"},
		{"Dockerfile", "go-build", "does not bake the version in"},
		{"Dockerfile", "user", `"ppredeem"`},
		// A .dockerignore.
		{".dockerignore", "dockerignore", "there is none"},
	} {
		if !hasProblem(problems, want.file, want.rule, want.text) {
			t.Errorf("no %s problem %q in %s; got:\n%s", want.rule, want.text, want.file, list(problems))
		}
	}
}

func hasProblem(problems []Problem, file, rule, text string) bool {
	for _, p := range problems {
		if p.File == file && p.Rule == rule && strings.Contains(p.Message, text) {
			return true
		}
	}
	return false
}

func list(problems []Problem) string {
	var b strings.Builder
	for _, p := range problems {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// mutation is a change to one of the repository's files that must break
// one rule.
type mutation struct {
	name       string
	file       string // Dockerfile, docker-compose.yml or .dockerignore
	old, new   string // replaced once (every time with replaceAll); old must occur
	replaceAll bool
	extra      []string // more old, new pairs, replaced once each
	rule       string   // the problem expected, in file
	text       string   // in its message
}

// TestMutations: each rule fails on a file that breaks it, starting from
// the repository's files (which pass), so that a check cannot pass by
// checking nothing.
func TestMutations(t *testing.T) {
	repo := testRepo(t)
	base := repoFiles(t, repo)
	const distroless = "gcr.io/distroless/static-debian13:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3\n"
	for _, m := range []mutation{
		// Dockerfile: BuildKit's own rules run.
		{name: "lint", file: "Dockerfile", old: " AS build\n", new: " as build\n", rule: "buildkit/FromAsCasing"},
		{name: "lint legacy ENV", file: "Dockerfile", old: "ENV PPREDEEM_LISTEN=0.0.0.0:8080 PPREDEEM_DATA_DIR=/data", new: "ENV PPREDEEM_LISTEN=0.0.0.0:8080\nENV PPREDEEM_DATA_DIR /data", rule: "buildkit/LegacyKeyValueFormat"},
		{name: "unpinned", file: "Dockerfile", old: distroless, new: "gcr.io/distroless/static-debian13:nonroot\n", rule: "base-pinned", text: "static-debian13:nonroot:"},
		{name: "digest without tag", file: "Dockerfile", old: distroless, new: "gcr.io/distroless/static-debian13@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3\n", rule: "base-pinned"},
		{name: "unsupported release", file: "Dockerfile", old: "static-debian13:nonroot@", new: "static-debian12:nonroot@", rule: "base-supported", text: "debian12 left security support on 2026-06-10"},
		{name: "unknown release", file: "Dockerfile", old: "golang:1.26.8-trixie@", new: "golang:1.26.8-alpine@", rule: "base-supported", text: "cannot tell"},
		{name: "old builder", file: "Dockerfile", old: "golang:1.26.8-trixie@", new: "golang:1.25.9-trixie@", rule: "builder-go", text: "older than go.mod"},
		{name: "no volume", file: "Dockerfile", old: "VOLUME /data\n", new: "", rule: "volume", text: "is not a VOLUME"},
		{name: "no revision label", file: "Dockerfile", old: "      org.opencontainers.image.revision=\"${REVISION}\" \\\n", new: "", rule: "labels", text: "revision"},
		{name: "version label without ARG", file: "Dockerfile", old: "ARG VERSION=dev\nARG REVISION=\nLABEL", new: "ARG REVISION=\nLABEL", rule: "labels", text: "declares no ARG VERSION"},
		{name: "version not baked", file: "Dockerfile", old: "-X main.version=${VERSION} ", new: "", rule: "go-build", text: "bake the version"},
		{name: "cgo", file: "Dockerfile", old: "CGO_ENABLED=0 ", new: "", rule: "go-build", text: "CGO_ENABLED=0"},
		{name: "root", file: "Dockerfile", old: "USER 65532:65532", new: "USER 0:0", rule: "user", text: "root"},
		{name: "loopback listen", file: "Dockerfile", old: "PPREDEEM_LISTEN=0.0.0.0:8080", new: "PPREDEEM_LISTEN=127.0.0.1:8080", rule: "listen", text: "not every interface"},
		{name: "port not exposed", file: "Dockerfile", old: "EXPOSE 8080", new: "EXPOSE 9090", rule: "listen", text: "not EXPOSEd"},
		{name: "healthcheck port", file: "Dockerfile", old: `"healthcheck"]`, new: `"healthcheck", "--url", "http://127.0.0.1:8080/readyz"]`, rule: "healthcheck", text: "hard-codes"},
		{name: "healthcheck shell", file: "Dockerfile", old: `CMD ["/usr/local/bin/ppredeem", "healthcheck"]`, new: `CMD /usr/local/bin/ppredeem healthcheck`, rule: "healthcheck", text: "exec form"},

		// .dockerignore.
		{name: "keys sent", file: ".dockerignore", old: "**/*.pem\n", new: "", rule: "dockerignore", text: "cmd/ppredeem/key.pem would be sent"},
		{name: "package left out", file: ".dockerignore", old: "!rpc/\n", new: "", rule: "dockerignore", text: "the build reads rpc/"},
		{name: "embedded file left out", file: ".dockerignore", old: "**/*.db\n", new: "**/*.db\n**/*.json\n", rule: "dockerignore", text: "the build reads rpc/openrpc.json"},
		{name: "data sent", file: ".dockerignore", old: "**/data\n", new: "", rule: "dockerignore", text: "cmd/ppredeem/data/notes.txt would be sent"},
		{name: "extra files sent", file: ".dockerignore", old: "**/testdata\n", new: "", rule: "dockerignore", text: "verify/testdata/vectors.json"},

		// docker-compose.yml.
		{name: "grace equals timeout", file: "docker-compose.yml", old: "stop_grace_period: 30s", new: "stop_grace_period: 20s", rule: "stop-grace", text: "service ppredeem: stop_grace_period is 20s"},
		{name: "grace below drain", file: "docker-compose.yml", old: "PPREDEEM_LOG_FORMAT: json\n    secrets:", new: "PPREDEEM_LOG_FORMAT: json\n      PPREDEEM_DRAIN_DELAY: 10s\n    secrets:", rule: "stop-grace", text: "drain_delay 10s"},
		{name: "no chown advice", file: "docker-compose.yml", old: "sudo chown 65532:65532 key.pem", new: "sudo chmod 0644 key.pem", rule: "keys", text: "chown"},
		{name: "key not mounted", file: "docker-compose.yml", old: "PPREDEEM_KEYS: /run/secrets/PUBLIC-TEST-KEY-DO-NOT-USE.pem\n      PPREDEEM_LOG_FORMAT: json\n    secrets:", new: "PPREDEEM_KEYS: /keys/key.pem\n      PPREDEEM_LOG_FORMAT: json\n    secrets:", rule: "keys", text: "no secret or bind mount provides it"},
		{name: "key read-write", file: "docker-compose.yml", old: "      - ppredeem-data:/data\n", new: "      - ppredeem-data:/data\n      - ./cmd/ppredeem/testdata/test-key.pem:/keys/PUBLIC-TEST-KEY.pem\n", rule: "keys", text: "read-write",
			extra: []string{"PPREDEEM_KEYS: /run/secrets/PUBLIC-TEST-KEY-DO-NOT-USE.pem\n      PPREDEEM_LOG_FORMAT: json\n    secrets:\n      - source: public_test_key\n        target: PUBLIC-TEST-KEY-DO-NOT-USE.pem\n    volumes:", "PPREDEEM_KEYS: /keys/PUBLIC-TEST-KEY.pem\n      PPREDEEM_LOG_FORMAT: json\n    secrets:\n      - source: public_test_key\n        target: PUBLIC-TEST-KEY-DO-NOT-USE.pem\n    volumes:"}},
		{name: "test key unnamed", file: "docker-compose.yml", old: "PUBLIC-TEST-KEY-DO-NOT-USE.pem", new: "key.pem", replaceAll: true, rule: "test-key", text: "name it so"},
		{name: "test key uncommented", file: "docker-compose.yml", old: "THIS FILE SERVES THE PUBLIC TEST KEY", new: "THIS FILE SERVES A KEY", rule: "test-key", text: "no comment"},
		{name: "embedded on a bind mount", file: "docker-compose.yml", old: "- ppredeem-data:/data", new: "- ./data:/data", rule: "embedded-volume", text: "a bind mount"},
		{name: "embedded without volume", file: "docker-compose.yml", old: "    volumes:\n      - ppredeem-data:/data\n", new: "", rule: "embedded-volume", text: "mounts no named volume"},
		{name: "gateway probe port", file: "docker-compose.yml", old: "http://127.0.0.1:8081/readyz", new: "http://127.0.0.1:8080/readyz", rule: "healthcheck", text: "probes port 8080 but the service listens on 8081"},
		{name: "gateway inherits probe", file: "docker-compose.yml", old: `      test: ["CMD", "/usr/local/bin/ppredeem", "healthcheck", "--url", "http://127.0.0.1:8081/readyz"]` + "\n", new: "", rule: "healthcheck", text: "inherits the image's HEALTHCHECK"},
		{name: "serve probe port by flag", file: "docker-compose.yml", old: "command: [\"serve\"]\n    environment:\n      PPREDEEM_LISTEN: 0.0.0.0:8080\n      PPREDEEM_DATA_DIR", new: "command: [\"serve\", \"--listen\", \"0.0.0.0:8090\"]\n    environment:\n      PPREDEEM_DATA_DIR", rule: "healthcheck", text: "service ppredeem-embedded listens on 0.0.0.0:8090 but inherits"},
		{name: "wget probe", file: "docker-compose.yml", old: `["CMD", "/usr/local/bin/ppredeem", "healthcheck", "--url", "http://127.0.0.1:8081/readyz"]`, new: `["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/readyz"]`, rule: "healthcheck", text: "`ppredeem healthcheck`"},
		{name: "admin published", file: "docker-compose.yml", old: `"127.0.0.1:9090:9090"`, new: `"9090:9090"`, rule: "ports", text: "beyond loopback"},
		{name: "port nowhere", file: "docker-compose.yml", old: `"8081:8081"`, new: `"8081:8080"`, rule: "ports", text: "where nothing listens"},
		{name: "gateway admin published", file: "docker-compose.yml", old: `"127.0.0.1:9091:9091"`, new: `"9091:9091"`, rule: "ports", text: "service gateway publishes the admin listener"},
		{name: "gateway admin by serve's setting", file: "docker-compose.yml", old: "PPREDEEM_GATEWAY_ADMIN_LISTEN: 0.0.0.0:9091", new: "PPREDEEM_ADMIN_LISTEN: 0.0.0.0:9091", rule: "ports", text: "service gateway publishes container port 9091, where nothing listens"},
		{name: "gateway grace", file: "docker-compose.yml", old: "      retries: 3\n    stop_grace_period: 30s", new: "      retries: 3\n    stop_grace_period: 10s", rule: "stop-grace", text: "service gateway: stop_grace_period is 10s"},
		{name: "schema", file: "docker-compose.yml", old: "stop_grace_period: 30s", new: "stop_grace_periods: 30s", rule: "compose"},
	} {
		t.Run(m.name, func(t *testing.T) {
			files := base
			target := map[string]*[]byte{"Dockerfile": &files.Dockerfile, "docker-compose.yml": &files.Compose, ".dockerignore": &files.Dockerignore}[m.file]
			text := string(*target)
			if !strings.Contains(text, m.old) {
				t.Fatalf("%s does not contain %q any more: update this mutation", m.file, m.old)
			}
			if m.replaceAll {
				text = strings.ReplaceAll(text, m.old, m.new)
			} else {
				text = strings.Replace(text, m.old, m.new, 1)
			}
			for i := 0; i+1 < len(m.extra); i += 2 {
				if !strings.Contains(text, m.extra[i]) {
					t.Fatalf("%s does not contain %q any more: update this mutation", m.file, m.extra[i])
				}
				text = strings.Replace(text, m.extra[i], m.extra[i+1], 1)
			}
			*target = []byte(text)
			problems := check(t, repo, files)
			if !hasProblem(problems, m.file, m.rule, m.text) {
				t.Errorf("no %s problem %q; got:\n%s", m.rule, m.text, list(problems))
			}
		})
	}
}

func TestReleaseOf(t *testing.T) {
	for image, want := range map[string]string{
		"gcr.io/distroless/static-debian13:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3": "debian13",
		"gcr.io/distroless/static-debian12":        "debian12",
		"golang:1.26.8-trixie":                     "debian13",
		"golang:1.26-bookworm":                     "debian12",
		"golang:1.26.8-alpine3.23":                 "alpine3.23",
		"golang:1.26.8-alpine":                     "",
		"golang:1.26.8":                            "",
		"alpine:3.20":                              "alpine3.20",
		"alpine:3.22.2":                            "alpine3.22",
		"alpine:latest":                            "",
		"debian:trixie-slim":                       "debian13",
		"debian:12.8":                              "debian12",
		"docker.io/library/golang:1.26.8-bookworm": "debian12",
	} {
		ref, err := reference.ParseNormalizedNamed(image)
		if err != nil {
			t.Fatal(err)
		}
		tag := ""
		if tagged, ok := ref.(reference.Tagged); ok {
			tag = tagged.Tag()
		}
		if got := releaseOf(ref, tag); got != want {
			t.Errorf("releaseOf(%s) = %q, want %q", image, got, want)
		}
	}
}
