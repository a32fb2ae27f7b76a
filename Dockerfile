# One image for every Squad process (orchestrator, workers, CLI).
# Build stage: src/ transpiled to dist/ (src/cli/compiled.ts) with the dev
# dependencies; the image runs dist/, which saves each process the memory of
# Node's type stripper (docs/benchmarks.md, section 6).
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN node src/cli/compiled.ts

FROM node:24-slim
RUN apt-get update && apt-get install -y --no-install-recommends bash git ca-certificates bubblewrap \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
# Stamped with the hash of the src/ copied above, so the launcher inside the image uses it too.
COPY --from=build /app/dist ./dist
ENV SWARM_WORKSPACE=/workspace SWARM_LOG_FORMAT=json
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
