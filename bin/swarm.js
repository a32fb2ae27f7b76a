#!/usr/bin/env node
// The `swarm` bin. Sources are TypeScript run by Node's type stripping (Node >= 22.18).
import "../src/cli/main.ts";
