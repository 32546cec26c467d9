// Package deploycheck checks ppredeem's deployment files — Dockerfile,
// .dockerignore and docker-compose.yml — without a Docker engine.
//
// It is its own Go module under .ci/ (outside the main module's ./...), so
// the compose loader and BuildKit's Dockerfile packages never enter
// ppredeem's dependency graph. .ci/run runs its tests; run them by hand with
//
//	cd .ci/deploycheck && go test ./...
//
// What is checked, each rule with the name its Problem carries:
//
// Dockerfile
//   - buildkit/<Rule>: BuildKit's Dockerfile lint rules, the ones `docker
//     build --check` runs (github.com/moby/buildkit, frontend/dockerfile/
//     linter), evaluated offline: base images' configurations are not
//     fetched, so rules that read them see an empty linux image.
//   - base-pinned: every base image is name:tag@sha256:digest.
//   - base-supported: the distribution release of every base image (Debian
//     or Alpine, from the tag or the image name) is one whose end of
//     support is known and has not passed (the table is endOfSupport; this
//     rule reads the clock, so it starts failing the day a base leaves
//     support).
//   - builder-go: the golang builder's tag names a Go release at least
//     go.mod's go line (the official image sets GOTOOLCHAIN=local).
//   - go-build: the binary is built with CGO_ENABLED=0, -trimpath and
//     -ldflags -X main.version=${VERSION} from ARG VERSION.
//   - labels: the final image has the OCI labels title, description,
//     source, version (from VERSION) and revision (from REVISION)
//     (github.com/opencontainers/image-spec, annotations.md).
//   - volume: the embedded store's directory (PPREDEEM_DATA_DIR) is a
//     VOLUME.
//   - user: the final stage runs as a numeric uid:gid other than root, so a
//     host can chown mounted keys to it.
//   - listen: PPREDEEM_LISTEN listens on every interface of the container,
//     on a port the image EXPOSEs.
//   - healthcheck: HEALTHCHECK is exec form `ppredeem healthcheck` with no
//     address of its own, so it follows the configured listen setting.
//
// .dockerignore
//   - dockerignore: the file exists; every file `go build ./cmd/ppredeem`
//     reads (go list -deps) is sent; .git, local data, key files and build
//     outputs are not. Matching is moby/patternmatcher's, which Docker uses.
//
// docker-compose.yml (loaded with github.com/compose-spec/compose-go/v2,
// every profile enabled)
//   - compose: the file loads and validates against the compose schema.
//   - stop-grace: every `serve` and `gateway` service's stop_grace_period exceeds
//     shutdown_timeout plus drain_delay (from its environment, else the
//     defaults in ppredeem.example.yaml) by at least StopMargin.
//   - keys: every key file in PPREDEEM_KEYS is mounted read-only (a secret
//     or a read-only bind mount); a mounted file from the repository is
//     readable by others; the file tells the operator to chown their own
//     key to the image's uid.
//   - test-key: a service serving the public test key says so: the path in
//     PPREDEEM_KEYS contains PUBLIC-TEST-KEY and the file carries a comment
//     naming the public test key.
//   - embedded-volume: at least one `serve` service uses the embedded store,
//     and each keeps its data directory on a named volume.
//   - healthcheck: a service's healthcheck override is exec form
//     `ppredeem healthcheck` (distroless has no shell, wget or curl), and
//     probes the port the service listens on; a service whose command sets
//     --listen must override it with --url on that port.
//   - ports: published ports reach the port the service listens on; the
//     admin listener (serve's admin_listen, the gateway's
//     gateway_admin_listen) is published on loopback only.
package deploycheck
