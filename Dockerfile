# syntax=docker/dockerfile:1
# Binance kline connector. Build: docker build -t kline-connector .
# Runs as uid/gid 1000 (the image's `node` user, written numerically so Kubernetes can verify
# runAsNonRoot) on a read-only root filesystem: nothing below writes at runtime.

# Pinned by digest, so a rebuild gets the same base until someone moves the pin on purpose.
# node:24-bookworm-slim = Node 24.18.1 on Debian bookworm, built 2026-07-30: the multi-arch OCI index
# (amd64, arm64/v8, ppc64le) recorded for that tag in docker-library/repo-info
# (repos/node/remote/24-bookworm-slim.md, commit 2fb42a7c1204ce90c8bf85e458cec1447d6f2bbb).
# To move it: `docker buildx imagetools inspect node:24-bookworm-slim` and copy the index digest.
ARG NODE_IMAGE=node:24-bookworm-slim@sha256:235600a8101ab264e117b1768e925532262668dc9b581ef1dd7d96ced463b8e7

# ---- build: full dependencies, esbuild → dist/daemon/ (bin/build.ts) -----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY bin ./bin
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only, installed where npm exists ------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: production dependencies need no install scripts.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: node, production dependencies and compiled output; no package manager --------
FROM ${NODE_IMAGE} AS runtime
# First, before anything else: no npm, npx, corepack or yarn in the image the daemon runs in
# (nothing to install or run packages with if the process is compromised, and less to patch).
# node itself and docker-entrypoint.sh stay.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-v*
# The runtime flags (a 2 MB young generation, MALLOC_ARENA_MAX=2) live in bin/kline-connector, the
# launcher `npm start` runs too, so the image and a user's `npm start` run the daemon the same way
# (ARCHITECTURE.md, Performance / Memory). Kubernetes overlays add their heap limit in NODE_OPTIONS.
ENV NODE_ENV=production
WORKDIR /app
# package.json: "type": "module" makes dist/daemon/*.js ES modules; its version is the build_info label.
COPY package.json ./
# Files stay root-owned, so the uid-1000 process cannot modify its own code or dependencies.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
# Presets are read from <app>/config/<env>.json (src/config/load.ts resolves ../../config from dist/daemon/).
COPY config ./config
USER 1000:1000
# 8765 relay WebSocket, 8766 /health /ready /metrics.
EXPOSE 8765 8766
# Exec form, and the launcher execs node: node ends up PID 1 (docker-entrypoint.sh execs sh, sh execs
# node) and receives SIGTERM itself (npm start would swallow it). The daemon installs its own
# SIGTERM/SIGINT handlers and spawns no children, so no init process is needed.
# No HEALTHCHECK: Kubernetes ignores it and uses the probes in k8s/base/deployment.yaml.
CMD ["sh", "bin/kline-connector"]
