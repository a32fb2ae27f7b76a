import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Suites each start their own nats-server; two cores, so keep parallelism modest.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
