# Build: docker build -t ppredeem .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ppredeem ./cmd/ppredeem

FROM alpine:3.20
RUN adduser -D -H -u 10001 ppredeem && mkdir -p /data && chown ppredeem /data
COPY --from=build /out/ppredeem /usr/local/bin/ppredeem
USER ppredeem
ENV PPREDEEM_LISTEN=0.0.0.0:8080 PPREDEEM_DATA_DIR=/data
EXPOSE 8080 9090
# wget comes with alpine's busybox; /readyz checks the store and the keys.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["ppredeem"]
CMD ["serve"]
