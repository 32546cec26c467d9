# check=error=true
#
# The ppredeem image: one static binary on distroless (no shell, no package
# manager), running as uid:gid 65532:65532, the embedded store in the volume
# /data. Build it with its version and revision baked in:
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" \
#                --build-arg REVISION="$(git rev-parse HEAD)" -t ppredeem .
#
# Both base images are pinned by digest, so a rebuild uses the image that was
# reviewed; move tag and digest together (`docker buildx imagetools inspect
# IMAGE:TAG` prints the digest). .ci/deploycheck checks this file without a
# Docker engine: BuildKit's lint rules (the ones `docker build --check` runs)
# and this project's rules (pins, labels, volume, healthcheck).

# The builder's Go must be at least go.mod's go line: the official image sets
# GOTOOLCHAIN=local and will not fetch a newer toolchain. The digest is the
# golang:1.26.8-trixie index as pinned in public Dockerfiles (for example
# github.com/inditextech/redkey-operator, Dockerfile).
FROM --platform=$BUILDPLATFORM golang:1.26.8-trixie@sha256:bdca99a00bc16590cb1a0bb4e698f5fc5d6a64e4d5eef13d9f18a0ee08e5fa65 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# .dockerignore lets in only the Go packages (no tests, test data, keys,
# local data or .git).
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/ppredeem ./cmd/ppredeem \
 && mkdir -p /out/data

# Distroless static on Debian 13 (gcr.io/distroless, GoogleContainerTools/
# distroless): CA certificates, tzdata and /etc/passwd, nothing else. The
# digest is the one the nonroot tag named on 2026-09-14 (Renovate's update
# to e2e927e in cilium/cilium#48700; pinned in full in public Dockerfiles,
# for example github.com/fyannk/pgConsole, Dockerfile).
FROM gcr.io/distroless/static-debian13:nonroot@sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="ppredeem" \
      org.opencontainers.image.description="Privacy Pass redemption server: verifies tokens and spends each exactly once" \
      org.opencontainers.image.source="https://github.com/ppredeem/ppredeem" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian13:nonroot" \
      org.opencontainers.image.base.digest="sha256:e2e927ec666bae08560abb3c55d0659eceabb657f56b6782ab500a9fc7f555e3"
COPY --from=build /out/ppredeem /usr/local/bin/ppredeem
# The embedded store's directory belongs to the image's user; Docker fills a
# new named volume mounted here with it, owner included, so the store can
# write there.
COPY --from=build --chown=65532:65532 /out/data /data
# A numeric user, so that hosts can chown mounted key files to it (keys
# written by `ppredeem keys generate` are 0600).
USER 65532:65532
ENV PPREDEEM_LISTEN=0.0.0.0:8080 PPREDEEM_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
# `ppredeem healthcheck` GETs /readyz on the port of the listen setting
# (PPREDEEM_LISTEN or the config file), so the probe follows the configured
# port; it exits 1 when not ready, also while draining on SIGTERM.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/ppredeem", "healthcheck"]
# SIGTERM drains: /readyz fails, in-flight redemptions finish within
# shutdown_timeout (give `docker stop -t` / stop_grace_period more than that).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ppredeem"]
CMD ["serve"]
