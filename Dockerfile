# One image for every Squad process (orchestrator, workers, CLI).
FROM node:24-slim
RUN apt-get update && apt-get install -y --no-install-recommends bash git ca-certificates bubblewrap \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
ENV SWARM_WORKSPACE=/workspace SWARM_LOG_FORMAT=json
ENTRYPOINT ["node", "/app/src/cli/main.ts"]
CMD ["--help"]
