import type { RetryPolicy } from "../bus/index.ts";

/** For the runner's own calls to a server that is being hurt: many tries, a few seconds apart. */
export const PATIENT: RetryPolicy = { attempts: 10, baseDelayMs: 500, maxDelayMs: 3000 };
