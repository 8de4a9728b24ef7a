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
# tests pin (MinIO no longer publishes official images); compose.yaml uses it.

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

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/s3seal /usr/local/bin/s3seal
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/keys /keys
# The embedded keyring's master key lives on a volume of its own, apart
# from the data it protects (README: Keeping the master key apart).
ENV S3SEAL_LISTEN=0.0.0.0:8080 \
    S3SEAL_DATA_DIR=/data \
    S3SEAL_MASTER_KEY_FILE=/keys/master.key
USER 65532:65532
EXPOSE 8080
VOLUME ["/data", "/keys"]
ENTRYPOINT ["/usr/local/bin/s3seal"]
CMD ["serve"]
