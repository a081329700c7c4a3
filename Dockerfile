# The one anyops binary, for every role of the production shape in docker-compose.yml
# (api, worker, sandboxd, migrate). The sandboxes' images bring their own programs; the
# sandboxd container has mmdebstrap to build them (`anyops image build`, docs/sandboxd.md).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -ldflags "-X main.version=${VERSION}" -o /out/anyops ./cmd/anyops \
    && CGO_ENABLED=0 go build -o /out/anyops-sandbox-init ./sandboxd/jail/cmd/sandbox-init

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates mmdebstrap \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/anyops /out/anyops-sandbox-init /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/anyops"]
