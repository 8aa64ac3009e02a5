# syntax=docker/dockerfile:1
#
# The store as an image: `estore` and the application it serves (spin.toml, the built
# components, their migrations). docker-compose.yml runs it next to Kafka and
# PostgreSQL; on its own it serves on its embedded defaults (SQLite, embedded bus):
#
#   docker build -t estore . && docker run -p 3000:3000 estore
#
# Stage 1 builds the host and runs the real `estore build`, so the components are
# built by their manifest build commands (scripts/build-component, which picks
# rustup's wasm32-wasip2 target when installed, as it is here; scripts/build-storefront,
# which builds the web shop with the Node.js taken from the official image).
# Stage 2 is a slim Debian with the binary and /app, staged from the manifest by
# deploy/stage-app.

ARG RUST_VERSION=1.99
ARG DEBIAN_RELEASE=bookworm
ARG NODE_VERSION=22

# Node.js and npm for the storefront's build (scripts/build-storefront runs Vite):
# Debian's own Node.js is too old for it.
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS node

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# cmake: librdkafka, which the Kafka bus builds from its bundled sources;
# python3: deploy/stage-app. Unpinned: the release's current (security-patched) ones.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake python3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && node --version && npm --version
# wasm32-wasip1 too: the manifest may hold preview-1 modules (Spin's templates).
RUN rustup target add wasm32-wasip2 wasm32-wasip1
WORKDIR /src
# The whole workspace: Cargo needs every member's manifest, components need shared/.
COPY . .
# target/ and the registry are cache mounts, so a rebuild after an edit reuses them;
# what the image needs is copied out of target/ within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eux; \
    cargo build --release --locked -p estore; \
    target/release/estore build -f spin.toml; \
    deploy/stage-app spin.toml /app; \
    install -D -m 755 target/release/estore /out/estore

FROM debian:${DEBIAN_RELEASE}-slim
# ca-certificates: outbound HTTPS from components; curl: the health check.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/estore --shell /usr/sbin/nologin estore \
    && install -d -o estore -g estore /var/lib/estore
COPY --from=build /out/estore /usr/local/bin/estore
COPY --from=build /app /app
# Every shared library the binary links must be in this image.
RUN ldd /usr/local/bin/estore > /tmp/ldd.txt \
    && if grep 'not found' /tmp/ldd.txt; then exit 1; fi \
    && rm /tmp/ldd.txt
# estore (numeric, so that a platform checking for a non-root user can tell).
USER 10001:10001
WORKDIR /app
ENV RUST_LOG=info
EXPOSE 3000
# Key-value data, embedded databases and the compiled-component cache.
VOLUME ["/var/lib/estore"]
# The first start compiles every component (Cranelift); later ones use the cache.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3000/api"]
ENTRYPOINT ["estore"]
CMD ["up", "--listen", "0.0.0.0:3000", "-f", "/app/spin.toml", "--state-dir", "/var/lib/estore"]
