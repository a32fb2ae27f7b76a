import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The layers of src/, lowest first (docs/architecture.md). A folder may
 * import its own layer's files and every layer below; never one above, nor a
 * peer (tools and llm do not know each other). src/*.ts (errors, log,
 * config, text, backoff) is the base under everything. telemetry (traces and
 * metrics) sits just above the schema, so every layer from the bus up may
 * record spans and counts. bench and chaos are on
 * top, beside cli, which may import bench for `swarm bench`.
 */
const LAYERS = [
  ["schema"],
  ["telemetry"],
  ["bus"],
  ["tools", "llm"],
  ["workspace"],
  ["workers"],
  ["orchestrator"],
  ["client"],
  ["dashboard"],
  ["cli", "bench", "chaos"],
];
/** Peer imports that are allowed: the command runs the benchmarks. */
const ALLOWED_PEERS = { cli: ["bench"] };
/** An import of any of `folders` by a relative path, from anywhere under src/. */
const folderImport = (folders) => `(^|/)(${folders.join("|")})/`;

/**
 * Layers a folder skips although they are below it: the dashboard reads the
 * bus and acts through the client, never through the processes' own code;
 * git workspaces need no model.
 */
const SKIPPED = {
  dashboard: ["tools", "llm", "workers", "orchestrator"],
  workspace: ["llm"],
};

/** What the dashboard's page (a classic script in the browser) uses. */
const BROWSER_GLOBALS = Object.fromEntries(
  [
    "window",
    "document",
    "history",
    "location",
    "sessionStorage",
    "fetch",
    "EventSource",
    "URLSearchParams",
    "CSS",
    "queueMicrotask",
    "Node",
    "setTimeout",
    "clearTimeout",
    "performance",
    "console",
    "dagre",
  ].map((name) => [name, "readonly"]),
);

function layerRestrictions(folder) {
  const level = LAYERS.findIndex((l) => l.includes(folder));
  const above = LAYERS.slice(level + 1).flat();
  const peers = LAYERS[level].filter((f) => f !== folder && !ALLOWED_PEERS[folder]?.includes(f));
  return [
    {
      regex: folderImport([...above, ...peers, ...(SKIPPED[folder] ?? [])]),
      message: `src/${folder} is below that layer: move the shared piece down instead (docs/architecture.md).`,
    },
  ];
}

/**
 * The mission machine is pure (state + event → state + commands): no clock,
 * no randomness, no I/O, no NATS. Resume is replay, so a step must give the
 * same answer every time it is given the same input.
 */
const MACHINE = [
  "src/orchestrator/mission-machine.ts",
  "src/orchestrator/mission-state.ts",
  "src/orchestrator/plan-validation.ts",
];
const MACHINE_IMPORTS = [
  {
    regex: "^(node:|@nats-io/|pino|execa|@langchain/|langchain)",
    message: "the mission machine is pure: no I/O, no NATS, no models (the shell does that).",
  },
  {
    // tools/truncate.ts is pure text: the machine cuts oversized results with it.
    regex: `${folderImport(["bus", "llm", "workers"])}|(^|/)tools/(?!truncate\\.ts$)`,
    message: "the mission machine is pure: NATS, tools, models and workers are the shell's.",
  },
  {
    regex: "^\\.\\./(config|log|backoff)\\.ts$",
    message: "the mission machine is pure: no configuration, logs or retry timing.",
  },
];
const NOT_PURE = "the mission machine is pure: time comes in as `now` with each input.";

export default tseslint.config(
  { ignores: ["node_modules/", ".tools/", ".swarm/", "docs/schema/", "coverage/", "dist/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "off",
    },
  },
  {
    files: ["bin/**/*.js", "eslint.config.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
  },
  {
    files: ["src/dashboard/assets/**/*.js"],
    languageOptions: { sourceType: "script", globals: BROWSER_GLOBALS },
  },
  {
    files: ["src/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: `^\\./(${LAYERS.flat().join("|")})/`,
              message: "src/*.ts is the base under every folder: it imports none of them.",
            },
          ],
        },
      ],
    },
  },
  ...LAYERS.flat().map((folder) => ({
    files: [`src/${folder}/**/*.ts`],
    ignores: folder === "orchestrator" ? MACHINE : [],
    rules: {
      "no-restricted-imports": ["error", { patterns: layerRestrictions(folder) }],
    },
  })),
  {
    files: MACHINE,
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [...layerRestrictions("orchestrator"), ...MACHINE_IMPORTS] },
      ],
      "no-restricted-properties": [
        "error",
        { object: "Date", property: "now", message: NOT_PURE },
        { object: "Math", property: "random", message: "the mission machine is deterministic." },
        { object: "performance", property: "now", message: NOT_PURE },
      ],
      "no-restricted-globals": [
        "error",
        ...[
          "setTimeout",
          "setInterval",
          "setImmediate",
          "clearTimeout",
          "clearInterval",
          "queueMicrotask",
          "fetch",
          "process",
          "performance",
          "crypto",
        ].map((name) => ({
          name,
          message: "the mission machine is pure: the shell owns timers and I/O.",
        })),
      ],
      "no-restricted-syntax": [
        "error",
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: NOT_PURE,
        },
        { selector: "CallExpression[callee.name='Date']", message: NOT_PURE },
      ],
    },
  },
);
