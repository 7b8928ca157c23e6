# meterd: one static-ish binary (cgo for the embedded DuckDB) on Debian slim.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/meterd .

FROM debian:bookworm-slim
# meterd runs as uid 10001, which owns the data directory. A named volume
# mounted there starts with that owner (Docker copies it from the image);
# a bind mount needs `chown -R 10001:10001` on the host.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 meterd \
    && useradd --system --uid 10001 --gid meterd --home-dir /var/lib/meterd --no-create-home --shell /usr/sbin/nologin meterd \
    && mkdir -p /var/lib/meterd/data && chown -R meterd:meterd /var/lib/meterd
COPY --from=build /out/meterd /usr/local/bin/meterd
USER 10001:10001
WORKDIR /var/lib/meterd
ENV METERD_DATA_DIR=/var/lib/meterd/data METERD_ADDR=:8080
VOLUME /var/lib/meterd/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["meterd"]
CMD ["serve"]
