# shardkeeper data node image. No Docker engine runs on the machine this was written on:
# `docker build` is untested here; tests/packaging.rs keeps this file consistent with the
# Debian package (paths, port, user) instead.
#
#   docker build -t shardkeeper .
#   docker run -p 8086:8086 -v shardkeeper-data:/var/lib/shardkeeper shardkeeper

# --- build: the same binary `cargo deb --profile dist` packages.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked --bin shardkeeper \
    && strip target/dist/shardkeeper

# --- runtime: Debian slim, the binary, the packaged config, a non-root user.
FROM debian:bookworm-slim
# curl for the health check only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system shardkeeper \
    && useradd --system --gid shardkeeper --home-dir /var/lib/shardkeeper --no-create-home \
        --shell /usr/sbin/nologin shardkeeper \
    && install -d -m 0750 -o shardkeeper -g shardkeeper /var/lib/shardkeeper \
    && install -d -m 0755 /etc/shardkeeper
COPY --from=build /src/target/dist/shardkeeper /usr/bin/shardkeeper
COPY deploy/debian/shardkeeper.toml /etc/shardkeeper/shardkeeper.toml
# `shardkeeper proxy --config /etc/shardkeeper/proxy.json` (docker-compose.yml's proxy).
COPY deploy/proxy.json /etc/shardkeeper/proxy.json
USER shardkeeper
VOLUME ["/var/lib/shardkeeper"]
EXPOSE 8086
# The packaged config listens on loopback; a container must listen on every address.
ENV SHARDKEEPER_BIND=0.0.0.0:8086
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8086/ping || exit 1
ENTRYPOINT ["/usr/bin/shardkeeper", "serve", "--config", "/etc/shardkeeper/shardkeeper.toml"]
