/**
 * The merge queue wired into the orchestrator: the bundle store, the
 * orchestrator's cache repositories and private checkouts under
 * `<SWARM_WORKSPACE>/.squad/`, verify with each agent's own sandbox, and the
 * link between mission runners and the integrator (src/workspace/
 * mission-integrator.ts): integrate commands become requests, each machine
 * step pokes the queue, a runner that stops acting lets go of its mission.
 *
 * The integrator's answers (task_merged / task_conflicted) are published as
 * orchestrator events and NOT marked recorded: they come back through the
 * event feed (event-intake.ts, then MissionRunner.observe) like a worker's
 * result, so the machine applies them in stream order, as a replay will.
 */
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Publisher } from "../bus/index.ts";
import type { Logger } from "../log.ts";
import { compileCommandPolicy, policyOnlyGate } from "../tools/command-policy.ts";
import { sandboxForAgent, type ShellSandbox } from "../tools/sandbox.ts";
import {
  bundleLimitsFromEnv,
  openBundleStore,
  type BundleStore,
} from "../workspace/bundle-store.ts";
import { mergeKey, type MergeRequest, type MissionView } from "../workspace/merge-queue.ts";
import {
  createMissionIntegrator,
  shellVerifier,
  type MissionIntegrator,
} from "../workspace/mission-integrator.ts";
import { sandboxRequest } from "../workers/replica-sandbox.ts";
import type { Roster } from "../workers/roster.ts";
import { isFinal } from "./mission-state.ts";
import type { IntegrateCommand, MergeLink, MissionRunner } from "./mission-runner.ts";

/** Where the orchestrator keeps its cache repositories, and its checkouts for verify. */
export function orchestratorRepoRoots(workspaceRoot: string) {
  return {
    cacheRoot: path.join(workspaceRoot, ".squad", "orchestrator-repos"),
    // Not below .squad (mode 0700): the sandbox user runs verify there and must pass through.
    // A leading dot: no mission id can name it.
    checkoutRoot: path.join(workspaceRoot, ".merge-verify"),
  };
}

/** What the merge queue sees of a mission: its machine's head and waiting merges. */
export function missionView(runner: MissionRunner): MissionView {
  const s = runner.state;
  return {
    head: s.workspace?.head ?? null,
    merging: s.merging.map((m) => mergeKey(m.task_id, m.attempt)),
    final: isFinal(s) || runner.abandoned || runner.finished,
  };
}

export function mergeRequest(cmd: IntegrateCommand): MergeRequest {
  return {
    task_id: cmd.task_id,
    attempt: cmd.attempt,
    agent: cmd.agent,
    base: cmd.changes.base,
    commit: cmd.changes.commit,
    verify: cmd.verify,
    timeout_s: cmd.timeout_s,
  };
}

export function linkRunners(integrator: MissionIntegrator): MergeLink {
  return {
    integrate: (runner, cmd) =>
      integrator.request(runner.id, mergeRequest(cmd), () => missionView(runner)),
    stepped: (runner) => integrator.poke(runner.id, () => missionView(runner)),
    release: (runner) => integrator.forget(runner.id),
  };
}

export interface MergeQueueOptions {
  nc: NatsConnection;
  publisher: Publisher;
  log: Logger;
  workspaceRoot: string;
  roster: Roster;
  env: NodeJS.ProcessEnv;
}

/** The orchestrator's merge queue; the bundle bucket is opened at the first merge. */
export function startMergeQueue(opts: MergeQueueOptions): {
  link: MergeLink;
  integrator: MissionIntegrator;
} {
  const { log, env } = opts;
  const limits = bundleLimitsFromEnv(env);
  let store: Promise<BundleStore> | null = null;
  const openStore = () => {
    if (!store) {
      // provisionStreams made the bucket (bus/streams.ts): opened only, as a worker does.
      store = openBundleStore(opts.nc, limits, { provision: false });
      store.catch(() => (store = null));
    }
    return store;
  };
  const sandboxes = new Map<string, Promise<ShellSandbox | undefined>>();
  const sandboxFor = (name: string) => {
    let sb = sandboxes.get(name);
    if (!sb) {
      const agent = opts.roster.agents.find((a) => a.name === name);
      sb = agent
        ? sandboxForAgent({
            ...sandboxRequest(agent, env),
            workspaceRoot: opts.workspaceRoot,
            network: compileCommandPolicy(agent.policy).network,
            ...(agent.limits ? { limits: agent.limits } : {}),
            env,
            log,
          })
        : Promise.reject(new Error(`agent ${name} is not in the orchestrator's roster`));
      sb.catch(() => sandboxes.delete(name));
      sandboxes.set(name, sb);
    }
    return sb;
  };
  const integrator = createMissionIntegrator({
    ...orchestratorRepoRoots(opts.workspaceRoot),
    store: openStore,
    log,
    publish: async (e) => {
      await opts.publisher.publish(e);
    },
    verify: shellVerifier(sandboxFor, (name) => {
      const agent = opts.roster.agents.find((a) => a.name === name);
      return policyOnlyGate(compileCommandPolicy(agent?.policy));
    }),
  });
  return { link: linkRunners(integrator), integrator };
}
