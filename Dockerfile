# syntax=docker/dockerfile:1
#
# peloton_exporter, built from source and run as a static binary on distroless (no shell, no
# package manager) as the non-root user 65532. From the repository root:
#
#   docker build -t peloton_exporter \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg BRANCH="$(git rev-parse --abbrev-ref HEAD)" \
#     --build-arg BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --rm -p 10070:10070 peloton_exporter --demo
#
# Arguments given to `docker run` replace CMD (the state file flag below): repeat
# --peloton.state-file=/var/lib/peloton_exporter/state.json, or set PELOTON_STATE_FILE, when you
# pass your own flags. deploy/ship_test.go checks this file's shape.

# The official Go image sets GOTOOLCHAIN=local, so this must be at least go.mod's go version:
# an older Go refuses to build instead of downloading a newer one (a test compares the two).
ARG GO_VERSION=1.26

# Compile on the build machine's platform and cross-compile for the target: multi-platform
# builds (docker buildx build --platform linux/amd64,linux/arm64) then need no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src

# Modules first, so that this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# Declared after the sources: a new version string must not invalidate the module download.
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_DATE=unknown
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
      -o /out/peloton_exporter . \
 && mkdir -p /out/state /out/backfill

# static-debian12 has CA certificates and time zone data, which is all a static Go binary
# needs; :nonroot runs as uid/gid 65532.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG REVISION=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="peloton_exporter" \
      org.opencontainers.image.description="Prometheus exporter for a Peloton account: workouts, personal records, streaks and achievements" \
      org.opencontainers.image.source="https://github.com/peloton-exporter/peloton_exporter" \
      org.opencontainers.image.url="https://github.com/peloton-exporter/peloton_exporter" \
      org.opencontainers.image.documentation="https://github.com/peloton-exporter/peloton_exporter#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"

COPY --from=build /out/peloton_exporter /bin/peloton_exporter

# The state directory: tokens (rotated refresh tokens must survive restarts) and any other file
# the exporter keeps. Owned by 65532 in the image, so that a new named volume mounted here is
# writable too (Docker copies the directory's ownership into an empty named volume). Mount a
# volume here: the rest of the file system can stay read-only.
COPY --from=build --chown=65532:65532 /out/state /var/lib/peloton_exporter
# Where `peloton_exporter backfill` writes its OpenMetrics file in the compose stack, for
# promtool in the Prometheus image to read: owned by 65532 for the same reason.
COPY --from=build --chown=65532:65532 /out/backfill /backfill
# Relative paths, such as the default state file name, land in the state directory as well.
WORKDIR /var/lib/peloton_exporter

# Numeric, so that Kubernetes' runAsNonRoot can verify it without a runAsUser.
USER 65532:65532
EXPOSE 10070
# No HEALTHCHECK: the image has no shell or HTTP client to run one. Probe / from outside.
ENTRYPOINT ["/bin/peloton_exporter"]
CMD ["--peloton.state-file=/var/lib/peloton_exporter/state.json"]
