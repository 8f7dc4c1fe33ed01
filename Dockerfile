# syntax=docker/dockerfile:1

# Build: the binary comes from `make build`, the same command developers run,
# so the image and a local build cannot drift apart.
#
# The golang images set GOTOOLCHAIN=local: the image's Go must be at least
# the `go` line of go.mod, which this pin matches.
ARG GO_VERSION=1.26.8
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src

# Modules first, so editing the source does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    make build \
 && install -d -m 0700 -o 65532 -g 65532 /out/data

# Run: a static binary on distroless, as the unprivileged user nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /src/bin/orgsvc /orgsvc
# The embedded database and the generated JWT secret live in /data (used
# only when MONGO_URI is empty). The directory is made here, owned by
# nonroot, so a fresh named volume mounted on it is writable too.
COPY --from=build --chown=65532:65532 /out/data /data

# From / the default DATA_DIR=./data of a .env made from .env.example
# (docker run --env-file .env) names the same /data.
WORKDIR /
ENV DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
USER 65532:65532
# distroless has no curl: the binary is its own probe.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/orgsvc", "health"]
ENTRYPOINT ["/orgsvc"]
