# The b2jet worker image: a static binary on distroless, running as non-root.
#   docker build -t b2jet --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm -e NATS_URL=nats://host:4222 -e B2_APPLICATION_KEY_ID=... -e B2_APPLICATION_KEY=... b2jet

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/b2jet ./cmd/b2jet

# distroless/static has CA certificates (for https://api.backblazeb2.com) and a nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/b2jet /b2jet
USER nonroot:nonroot
# The embedded server's store, used only when NATS_URL is unset.
ENV B2JET_DATA_DIR=/tmp/b2jet
ENTRYPOINT ["/b2jet", "worker"]
