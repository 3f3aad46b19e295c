# syntax=docker/dockerfile:1
# kuberelay: one image for the operator, the relay and the CLI.
#   docker build -t kuberelay .
#   docker run --rm -p 8080:8080 -e KUBERELAY_AUTH=none -v "$PWD/examples:/config:ro" \
#     kuberelay relay --config /config/quickstart.yaml
# test/integration/production-install.test.ts performs this file's steps without a container
# engine (same copies, same install command, same entrypoint, a non-root user, a read-only tree).
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile the TypeScript sources to dist/ ----------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts here either: the base image has node, and Prisma's client is generated
# without engine binaries (`npm run generate`, run by `npm run build`).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json prisma.config.ts ./
COPY prisma ./prisma
COPY cli ./cli
COPY core ./core
COPY db ./db
COPY kube ./kube
COPY mock-upstream ./mock-upstream
COPY operator ./operator
COPY providers ./providers
COPY redis ./redis
COPY relay ./relay
COPY jobs ./jobs
RUN npm run build

# --- deps: production dependencies only -----------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: nothing at run time needs them (Prisma runs through driver adapters, no
# engine binaries to download). Only node_modules leaves this stage, so no cache cleaning.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# --- runtime ------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# tini as PID 1: forwards SIGTERM to node (graceful drain) and reaps zombies.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
# A bounded young generation: V8 otherwise sizes it from the host's memory (up to 128 MB on a big
# node). 16 MB, not 8: in the chart's memory limit V8 grows the old generation only ~1.3x between
# full collections, and each scavenge promotes the requests in flight, so halving the scavenges
# halves the full collections too: -10 to -23 % CPU per request for ~10-15 MB more peak RSS (BENCHMARKS.md,
# "The young generation under the chart's limit"). Two malloc
# arenas instead of one per thread: 10-22 MB less RSS under sustained load, for no measurable CPU
# (BENCHMARKS.md, "Sustained load at concurrency 64").
ENV NODE_ENV=production \
  NODE_OPTIONS=--max-semi-space-size=16 \
  MALLOC_ARENA_MAX=2 \
  KUBERELAY_DATA_DIR=/data
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY crds ./crds
COPY prisma ./prisma
COPY examples ./examples
# `kuberelay ...` on PATH for `kubectl exec`; a non-root user that owns only the data directory.
RUN chmod 0755 dist/cli/index.js \
  && ln -s /app/dist/cli/index.js /usr/local/bin/kuberelay \
  && groupadd --system --gid 10001 kuberelay \
  && useradd --system --uid 10001 --gid kuberelay --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kuberelay \
  && mkdir -p /data \
  && chown kuberelay:kuberelay /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080 8081
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/cli/index.js"]
CMD ["relay"]
