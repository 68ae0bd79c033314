# syntax=docker/dockerfile:1

# The one mfaflow binary (serve, worker, migrate, dev) in a distroless image.
#
#   docker build -t mfaflow .
#   docker run --rm mfaflow help
#
# The image runs as the distroless "nonroot" user (65532) and has no shell,
# so it carries no HEALTHCHECK: there is no curl or wget to run one, and the
# binary has no probe subcommand. Let the orchestrator probe HTTP instead:
# GET /healthz (the process serves) and GET /readyz (database, object storage
# and Temporal reachable) on the API port, e.g. Kubernetes httpGet probes or
# the load balancer's health check. Compose orders start-up with depends_on.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/mfaflow ./cmd/mfaflow

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mfaflow /mfaflow
USER nonroot:nonroot
# Inside a container the API must listen on every interface; the binary's
# default (127.0.0.1:8080) suits a laptop. Override it with the variable.
ENV MFAFLOW_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/mfaflow"]
CMD ["help"]
