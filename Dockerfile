# syntax=docker/dockerfile:1
#
# s3seal image: a static binary on distroless, running as a non-root user.
#
#   docker build -t s3seal .
#   docker run -p 8080:8080 -v s3seal-data:/data s3seal
#
# With no S3SEAL_UPSTREAM the proxy uses its embedded store and keyring in
# /data; the first start prints generated client credentials once. Keep
# /data on a volume: it holds the keyring, and objects cannot be decrypted
# without it.
#
# The "minio" target builds the MinIO server from source at the version the
# tests pin (MinIO no longer publishes official images); compose.yaml uses it,
# and the "minio-init" target (mc and minio-init.sh), which gives s3seal a
# MinIO user of its own instead of the root credentials.
#
# The proxy's image checks its own health (s3seal health: GET /healthz on
# the local listener; distroless has no shell or curl) and serves its
# unauthenticated metrics on 127.0.0.1:9100 inside the container, not on
# the published S3 port: set S3SEAL_METRICS_LISTEN=0.0.0.0:9100 to scrape
# them from a private network.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/s3seal ./cmd/s3seal \
 && mkdir -p /out/data /out/keys

FROM golang:${GO_VERSION} AS minio-build
ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go install -trimpath github.com/minio/minio@${MINIO_VERSION} \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot AS minio
COPY --from=minio-build /go/bin/minio /usr/local/bin/minio
COPY --from=minio-build --chown=65532:65532 /out/data /data
USER 65532:65532
EXPOSE 9000
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/minio"]
CMD ["server", "/data", "--address", ":9000"]

FROM golang:${GO_VERSION} AS mc-build
# The mc release whose admin commands minio-init.sh was checked with against
# the MinIO above.
ARG MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go install -trimpath github.com/minio/mc@${MC_VERSION}

# One-shot: run as the MinIO root user by compose, exits when done. The
# :debug variant has busybox's sh for the script.
FROM gcr.io/distroless/static-debian12:debug-nonroot AS minio-init
COPY --from=mc-build /go/bin/mc /usr/local/bin/mc
COPY minio-init.sh /usr/local/bin/minio-init.sh
USER 65532:65532
ENTRYPOINT ["/busybox/sh", "/usr/local/bin/minio-init.sh"]

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/s3seal /usr/local/bin/s3seal
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/keys /keys
# The embedded keyring's master key lives on a volume of its own, apart
# from the data it protects (README: Keeping the master key apart).
ENV S3SEAL_LISTEN=0.0.0.0:8080 \
    S3SEAL_METRICS_LISTEN=127.0.0.1:9100 \
    S3SEAL_DATA_DIR=/data \
    S3SEAL_MASTER_KEY_FILE=/keys/master.key
USER 65532:65532
EXPOSE 8080
VOLUME ["/data", "/keys"]
# Liveness of the process (GET /healthz); `s3seal health --ready` would
# also need the store and the KMS to answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/s3seal", "health"]
# On docker stop (SIGTERM) requests in flight get S3SEAL_SHUTDOWN_TIMEOUT
# (30 s) to finish; docker's own --stop-timeout (10 s by default) must
# exceed it, or SIGKILL cuts them off first: compose.yaml sets 40 s.
ENTRYPOINT ["/usr/local/bin/s3seal"]
CMD ["serve"]
