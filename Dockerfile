# One image for every Squad process (orchestrator, workers, CLI).
#
# The base is pinned to an exact Node release and Debian release. Pin it to a
# digest as well when you build for production:
#   docker build --build-arg NODE_IMAGE=node:24.21.0-bookworm-slim@sha256:<digest> .
# (`docker buildx imagetools inspect node:24.21.0-bookworm-slim` prints it; the
# development machines have no registry access for images, so no digest is
# written here rather than one nobody could check.)
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Build stage: src/ transpiled to dist/ (src/client/compiled.ts, `npm run build`)
# with the dev dependencies; the runtime stage gets only dist/ and the
# production dependencies (no sources, no tests, no type stripper).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN node src/client/compiled.ts

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="squad-swarm" \
      org.opencontainers.image.description="Squad: an event-driven AI agent swarm on NATS JetStream" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
# bash, git and ca-certificates for tasks; bubblewrap, util-linux (setpriv,
# prlimit), slirp4netns and iproute2 for the workers' sandbox (docs/security.md);
# tini is not needed: compose runs every service with `init: true`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash git ca-certificates bubblewrap \
       util-linux slirp4netns iproute2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY rosters ./rosters
COPY mission-briefs ./mission-briefs
COPY nats.conf ./nats.conf
COPY docs/schema ./docs/schema
RUN mkdir -p /workspace /state /auth /creds && chown node:node /workspace /state /auth /creds
ENV NODE_ENV=production \
    SWARM_WORKSPACE=/workspace \
    SWARM_STATE_DIR=/state \
    SWARM_LOG_FORMAT=json \
    SWARM_HEALTH_PORT=8080
# Not root. Workers are the exception: docker-compose.yml runs them as root so
# that each shell command drops to the unprivileged sandbox uid (setpriv) with
# Docker's default capabilities only (docs/security.md).
USER node
# The orchestrator's and a worker's /healthz (src/cli/health-server.ts). A
# one-shot CLI command has none: run it with --no-healthcheck.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SWARM_HEALTH_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
