/**
 * `deploy`: one brief, end to end, from nothing. Check the brief (exit 2
 * before anything starts), find or start NATS (exit 3 when impossible),
 * start the orchestrator and the replicas the brief needs (supervised),
 * submit, show progress until the orchestrator's final event, stop
 * everything, summarize. Ctrl-C cancels the mission first, then stops.
 */
import { openCliGuard } from "../cli-guard.ts";
import { createWriteStream } from "node:fs";
import { access, mkdir, realpath } from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import {
  connectBus,
  createPublisher,
  followEvents,
  watchEvents,
  type EventFeed,
  type EventWatch,
  type NatsConnection,
} from "../../bus/index.ts";
import { reportPaths, type SwarmEnv } from "../../config.ts";
import { BadInputError, ExitCode, errorMessage } from "../../errors.ts";
import { REDACT_PATHS, type Logger } from "../../log.ts";
import { newMissionId, nextEventsSeq } from "../../client/submission.ts";
import { isFinalMissionEvent, makeEvent, type FinalMissionEvent } from "../../schema/index.ts";
import { submitWithWorkspace } from "../../client/mission-workspace.ts";
import { deliverAfterMission } from "../mission-delivery.ts";
import { readBriefFile } from "../../client/brief-file.ts";
import { openRootToUser } from "../../tools/sandbox.ts";
import { sandboxUser } from "../../tools/sandbox-user.ts";
import { onShutdownSignal } from "../signals.ts";
import type { SupervisorEvent } from "../supervisor.ts";
import {
  buildDeploySummary,
  readReportFacts,
  summaryJsonLine,
  type DeploySummary,
} from "./deploy-summary.ts";
import { ensureNats, type NatsEndpoint } from "./local-nats.ts";
import { provisionAsAdmin } from "./swarm-admin.ts";
import { launcherConnectOptions, signingEnv } from "./swarm-credentials.ts";
import { checkModelServers, modelsNeeded } from "./model-preflight.ts";
import type { ProgressInput, ProgressState } from "./progress-model.ts";
import { createProgressView, type ProgressView, type ViewStream } from "./progress-view.ts";
import { agentsForBrief, launchSwarm, type LaunchedSwarm } from "./swarm-launcher.ts";
import { startLauncherDashboard } from "../commands/dashboard.ts";

export interface DeployOptions {
  briefFile: string;
  replicas: number;
  natsUrl: string;
  /** The URL came from --nats or NATS_URL (see local-nats.ts for what that changes). */
  natsExplicit: boolean;
  /** The swarm's state directory (identities, the local server's record). */
  stateDir: string;
  /** Run or accept NATS without authentication (`--insecure-nats`, SWARM_NATS_AUTH=none). */
  insecureNats: boolean;
  /** A NATS credential was given (environment or URL). */
  credentialGiven: boolean;
  workspaceRoot: string;
  rosterPath: string | undefined;
  json: boolean;
  /** --allow-workspace: directories outside the brief's tree its workspace: may name. */
  allowWorkspace?: readonly string[];
  /** --push REMOTE: also push the delivered branch there (else the brief's deliver.push). */
  push?: string | null;
  env: SwarmEnv;
  /** How long a cancelled mission may take to report its end. Default 10 s. */
  cancelWaitMs?: number;
  /** Start the web dashboard (`--no-dashboard`: false). Default false. */
  dashboard?: boolean;
}

type GaveUp = Extract<SupervisorEvent, { type: "gave_up" }>;

/** Runs the whole deploy; resolves with the exit code (errors thrown map to 2 or 3). */
export async function deployMission(opts: DeployOptions): Promise<number> {
  // 1. Everything the user can get wrong, before anything starts.
  const { text, sourcePath, brief, roster, seed } = await readBriefFile(
    opts.briefFile,
    opts.rosterPath,
    opts.allowWorkspace,
    process.stdin,
    { checkBase: true },
  );
  if (!brief.plan && !opts.env.SWARM_PLANNER_MODEL) {
    throw new BadInputError(
      `brief ${opts.briefFile} has no explicit plan and no planner model is configured: ` +
        "set SWARM_PLANNER_MODEL (e.g. ollama:qwen2.5:14b) or add a plan to the brief's front matter",
    );
  }
  const agents = agentsForBrief(brief, roster);
  await checkModelServers(modelsNeeded(brief, roster, agents, opts.env));

  const root = opts.workspaceRoot;
  const logDir = path.join(root, "logs");
  await mkdir(logDir, { recursive: true });
  // Workers would each refuse a workspace their sandbox user cannot reach (exit 2, restarted
  // in a loop by the supervisor): say so once, now, before starting anything.
  await openRootToUser(await realpath(root), sandboxUser(process.env));
  const log = fileLogger(path.join(logDir, "deploy.log"));
  const human: ViewStream = opts.json ? process.stderr : process.stdout;
  const missionId = newMissionId();

  // From now on the first Ctrl-C / SIGTERM cancels the mission; a second one exits at once.
  let signalled: NodeJS.Signals | null = null;
  let onSignal: (s: NodeJS.Signals) => void = () => undefined;
  const interrupted = new Promise<NodeJS.Signals>((resolve) => (onSignal = resolve));
  onShutdownSignal(async (s) => {
    signalled = s;
    onSignal(s);
  });
  let onGaveUp: (e: GaveUp) => void = () => undefined;
  const crashLoop = new Promise<GaveUp>((resolve) => (onGaveUp = resolve));

  // What comes before the view exists (the nats-server's start) waits for it.
  let view: ProgressView | null = null;
  const early: ProgressInput[] = [];
  const show = (i: ProgressInput) => (view ? view.update(i) : early.push(i));
  const onSupervisor = (event: SupervisorEvent) => {
    show({ kind: "supervisor", event, at: Date.now() });
    if (event.type === "gave_up") onGaveUp(event);
  };

  let endpoint: NatsEndpoint | null = null;
  let swarm: LaunchedSwarm | null = null;
  let nc: NatsConnection | null = null;
  let feed: EventFeed | null = null;
  let dashboard: { stop(): Promise<void> } | null = null;
  const watches: EventWatch[] = [];
  const natsLog = createWriteStream(path.join(logDir, "nats-server.log"), { flags: "a" });
  natsLog.on("error", () => undefined);
  let tornDown = false;

  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    show({ kind: "stopping" });
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        log.warn({ err: errorMessage(err), what }, "teardown step failed");
      }
    };
    await step("dashboard", async () => dashboard?.stop());
    await step("event feed", async () => feed?.stop());
    await step("watches", () => Promise.all(watches.map((w) => w.stop())));
    await step("connection", async () => {
      if (nc && !nc.isClosed()) await nc.drain();
    });
    await step("swarm", async () => swarm?.stop());
    await step("nats-server", async () => endpoint?.local?.stop());
    view?.close();
    natsLog.end();
  };

  try {
    // 2. NATS: the one that answers, or our own.
    endpoint = await ensureNats({
      url: opts.natsUrl,
      explicit: opts.natsExplicit,
      storeDir: path.join(root, ".nats"),
      stateDir: opts.stateDir,
      agents: roster.agents.map((a) => a.name),
      insecure: opts.insecureNats,
      credentialGiven: opts.credentialGiven,
      output: natsLog,
      onEvent: onSupervisor,
    });
    view = createProgressView({ missionId, out: human });
    for (const i of early.splice(0)) view.update(i);
    show({ kind: "info", key: "nats", value: `${endpoint.url} (${endpoint.origin})` });
    show({ kind: "info", key: "logs", value: logDir });
    for (const w of endpoint.warnings) {
      log.warn({ nats: endpoint.url }, w);
      show({ kind: "notice", text: `WARNING: ${w}`, tone: "warn", at: Date.now() });
    }

    // 3. The swarm: streams, the agents' consumers and the claims bucket first (as the
    // orchestrator's identity: workers may not create them), then the processes, supervised.
    await provisionAsAdmin(endpoint, agents, opts.env, log);
    swarm = await launchSwarm({
      natsUrl: endpoint.url,
      credentials: endpoint.credentials,
      workspaceRoot: root,
      rosterPath: opts.rosterPath,
      agents,
      replicas: opts.replicas,
      logDir,
      onEvent: onSupervisor,
    });

    if (opts.dashboard) {
      const started = await startLauncherDashboard({
        credentials: endpoint.credentials,
        url: endpoint.url,
        env: opts.env,
        log,
      });
      dashboard = started?.dashboard ?? null;
      if (started) {
        const { url } = started.dashboard;
        show({ kind: "info", key: "dashboard", value: `${url}#token=${started.token}` });
      } else {
        show({ kind: "info", key: "dashboard", value: `not started (see ${logDir}/deploy.log)` });
      }
    }

    // 4. Follow from before the submission (nothing is missed), then submit.
    // The launcher submits, follows and cancels as a person would: the operator role.
    nc = await connectBus({
      ...launcherConnectOptions(
        endpoint.credentials,
        { role: "operator" },
        endpoint.url,
        "swarm-deploy",
        opts.env,
      ),
      log,
    });
    // Signs the submission and a cancel as the operator (its seed when the launcher's server runs
    // with the swarm's identities); the follow below takes only the orchestrator's word.
    const guard = await openCliGuard(nc, {
      publishes: true,
      log,
      env: { ...process.env, ...signingEnv(endpoint.credentials, { role: "operator" }) },
    });
    const fromSeq = await nextEventsSeq(nc);
    watches.push(
      // task_assigned is on squad.tasks.<agent> (a work queue we must not consume): watch it live.
      watchEvents(nc, {
        subject: "squad.tasks.*",
        log,
        onEvent: (event) => {
          if (event.mission_id === missionId) show({ kind: "event", event });
        },
      }),
      // agent_online ties a worker instance to the replica (by pid) that runs it.
      watchEvents(nc, {
        subject: "squad.status.>",
        log,
        onEvent: (event) => {
          if (event.type === "agent_online") show({ kind: "event", event });
        },
      }),
    );
    await Promise.all(watches.map((w) => w.ready));
    let onFinal: (e: FinalMissionEvent) => void = () => undefined;
    const finalEvent = new Promise<FinalMissionEvent>((resolve) => (onFinal = resolve));
    feed = await followEvents(nc, {
      fromSeq,
      log,
      admit: (event, msg) => guard.admit(msg, event).accept,
      onEvent: (event) => {
        if (event.mission_id !== missionId) return;
        show({ kind: "event", event });
        if (isFinalMissionEvent(event)) onFinal(event);
      },
    });

    const startedAt = Date.now();
    let final: FinalMissionEvent | null = null;
    let noFinalReason = "interrupted before the mission was submitted";
    let failure: { message: string; code: number } | null = null;
    let deliveryCode: number = ExitCode.ok;
    if (!signalled) {
      const { workspace, repo } = await submitWithWorkspace(nc, {
        brief: text,
        sourcePath,
        seed,
        missionId,
        stateDir: opts.stateDir,
        signer: guard.signer,
      });
      log.info({ missionId, agents, replicas: opts.replicas }, "mission submitted");
      const first = await Promise.race([
        finalEvent.then((e) => ({ kind: "final" as const, e })),
        interrupted.then((s) => ({ kind: "signal" as const, s })),
        crashLoop.then((e) => ({ kind: "crash" as const, e })),
      ]);
      if (first.kind === "final") {
        final = first.e;
      } else {
        let reason = `interrupted (${first.kind === "signal" ? first.s : ""})`;
        if (first.kind === "crash") {
          reason = `${first.e.name} keeps crashing; see ${swarm.logFiles[first.e.name] ?? logDir}`;
          failure = {
            message: reason,
            code: first.e.code === ExitCode.badInput ? ExitCode.badInput : ExitCode.infrastructure,
          };
        }
        show({ kind: "notice", text: `cancelling: ${reason}`, tone: "warn", at: Date.now() });
        await createPublisher(nc, { signer: guard.signer }).publish(
          makeEvent(
            "mission_cancelled",
            { mission_id: missionId, source: "cli" },
            { reason, requested_by: "deploy-swarm" },
          ),
        );
        noFinalReason = `${reason}; the orchestrator did not confirm the cancellation in time`;
        final = await Promise.race([finalEvent, sleepNull(opts.cancelWaitMs ?? 10_000)]);
      }
      // 4b. Delivery (on this machine: it has the workspace repository), before NATS goes.
      if (final) {
        const say = (tone: "ok" | "warn" | "plain") => ({
          write: (t: string) => show({ kind: "notice", text: t.trimEnd(), tone, at: Date.now() }),
        });
        deliveryCode = await deliverAfterMission(repo, {
          missionId,
          final,
          workspace,
          push: opts.push ?? brief.deliver?.push ?? null,
          out: say("ok"),
          errOut: say("warn"),
          noteOut: say("plain"),
        });
        log.info({ missionId, code: deliveryCode }, "delivery done");
      }
    }

    // 5. Summary: from the final event and the report the orchestrator wrote.
    const paths = reportPaths(root, missionId);
    const summary = buildDeploySummary({
      missionId,
      final,
      noFinalReason,
      report: await readReportFacts(paths.json),
      reportPath: (await exists(paths.md)) ? paths.md : null,
      observed: observed(view.state(), Date.now() - startedAt),
    });
    show({ kind: "summary", summary, at: Date.now() });
    log.info({ summary }, "mission ended");

    // 6. Stop everything, then the one JSON line.
    await teardown();
    if (opts.json) process.stdout.write(`${summaryJsonLine(summary)}\n`);
    if (failure) {
      process.stderr.write(`swarm deploy: ${failure.message}\n`);
      return failure.code;
    }
    if (deliveryCode !== ExitCode.ok) return deliveryCode;
    return summary.status === "completed" ? ExitCode.ok : ExitCode.missionFailed;
  } finally {
    await teardown();
  }
}

/** Counts from the events seen, for when neither the final event nor the report has them. */
function observed(state: ProgressState, durationMs: number) {
  const rows = state.taskOrder.map((id) => state.tasks[id]!);
  return {
    tasks: {
      total: rows.filter((r) => r.status !== "superseded").length,
      succeeded: rows.filter((r) => r.status === "succeeded").length,
      failed: rows.filter((r) => r.status === "failed").length,
    },
    usage: { input_tokens: 0, output_tokens: 0 } as DeploySummary["usage"],
    durationMs,
  };
}

/** The launcher's own diagnostics go to a file: the terminal belongs to the progress view. */
function fileLogger(file: string): Logger {
  return pino(
    {
      name: "deploy",
      level: process.env.SWARM_LOG_LEVEL ?? "info",
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: { pid: process.pid },
    },
    pino.destination({ dest: file, mkdir: true, sync: false, append: true }),
  );
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

function sleepNull(ms: number): Promise<null> {
  return new Promise((resolve) => setTimeout(() => resolve(null), ms).unref());
}
