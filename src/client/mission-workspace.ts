/**
 * The submitter's half of a mission repository: its base before the
 * submission, its head after the mission. The CLI keeps a cache repository
 * per mission under `<SWARM_STATE_DIR>/repos` (fetched from the bundle
 * store on demand), and a small record of where the workspace was, so
 * `swarm deliver` knows it later even without the events that carry it.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage } from "../errors.ts";
import { MissionWorkspace, type CommitId } from "../schema/index.ts";
import { isPermissionError } from "../bus/permission-error.ts";
import { bundleLimitsFromEnv, openBundleStore } from "../workspace/bundle-store.ts";
import { makeMissionBase } from "../workspace/mission-base.ts";
import { MissionRepo } from "../workspace/mission-repo.ts";
import { deliverBranch, exportClone, pushBranch, type Delivered } from "../workspace/delivery.ts";
import { decideDelivery, type DeliveryRequest } from "./delivery-decision.ts";
import { submitMission } from "./submission.ts";
import type { EventSigner } from "../bus/index.ts";

/** Where the CLI keeps its cache repositories of missions. */
export function cliRepoRoot(stateDir: string): string {
  return path.join(stateDir, "repos");
}

/**
 * The mission's cache repository on this machine, backed by the
 * `squad_bundles` object store. Like the streams (ensureStreamsUsable):
 * the bucket is made when this connection may (a server without
 * authentication); else it must exist (the orchestrator makes it).
 */
export async function openCliMissionRepo(
  nc: NatsConnection,
  stateDir: string,
  missionId: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<MissionRepo> {
  const limits = bundleLimitsFromEnv(env);
  const store = await openBundleStore(nc, limits, { provision: false }).catch(
    async (err: unknown) => {
      try {
        return await openBundleStore(nc, limits);
      } catch (again) {
        throw isPermissionError(again) ? err : again;
      }
    },
  );
  return MissionRepo.open(cliRepoRoot(stateDir), missionId, store);
}

/**
 * The mission's base from the brief's workspace (seed: its resolved
 * directory, or null), uploaded; the record mission_submitted carries.
 */
export async function prepareMissionWorkspace(
  nc: NatsConnection,
  opts: { seed: string | null; missionId: string; stateDir: string; env?: NodeJS.ProcessEnv },
): Promise<{ workspace: MissionWorkspace; repo: MissionRepo }> {
  const repo = await openCliMissionRepo(nc, opts.stateDir, opts.missionId, opts.env);
  const workspace = await makeMissionBase(opts.seed, repo);
  await writeWorkspaceRecord(opts.stateDir, opts.missionId, workspace);
  return { workspace, repo };
}

/**
 * Make the mission's base from the brief's workspace, upload it, then
 * submit the brief with it (signed when a signer is given): what every
 * submitter does. Answers the mission's cache repository, for delivery.
 */
export async function submitWithWorkspace(
  nc: NatsConnection,
  opts: {
    brief: string;
    sourcePath: string | null;
    seed: string | null;
    missionId: string;
    stateDir: string;
    signer?: EventSigner | null;
    env?: NodeJS.ProcessEnv;
  },
): Promise<{ workspace: MissionWorkspace; repo: MissionRepo }> {
  const prepared = await prepareMissionWorkspace(nc, {
    seed: opts.seed,
    missionId: opts.missionId,
    stateDir: opts.stateDir,
    ...(opts.env ? { env: opts.env } : {}),
  });
  await submitMission(nc, {
    brief: opts.brief,
    sourcePath: opts.sourcePath,
    missionId: opts.missionId,
    signer: opts.signer ?? null,
    workspace: prepared.workspace,
  });
  return prepared;
}

function recordPath(stateDir: string, missionId: string): string {
  return path.join(cliRepoRoot(stateDir), `${missionId}.workspace.json`);
}

async function writeWorkspaceRecord(
  stateDir: string,
  missionId: string,
  workspace: MissionWorkspace,
): Promise<void> {
  await mkdir(cliRepoRoot(stateDir), { recursive: true });
  await writeFile(recordPath(stateDir, missionId), `${JSON.stringify(workspace)}\n`);
}

/** The workspace this machine submitted the mission with, or null (another machine, or lost). */
export async function readWorkspaceRecord(
  stateDir: string,
  missionId: string,
): Promise<MissionWorkspace | null> {
  const text = await readFile(recordPath(stateDir, missionId), "utf8").catch(() => null);
  if (text === null) return null;
  try {
    return MissionWorkspace.parse(JSON.parse(text));
  } catch {
    return null;
  }
}

export interface DeliveryOutcome {
  delivered: Delivered[];
  /** What the person should know: where the head is when nothing was delivered, and why. */
  notes: string[];
}

/**
 * Delivers an ended mission's head as decideDelivery says (fetching it
 * from the bundle store first). Errors (an existing branch, a refused push)
 * are thrown: BadInputError, exit 2.
 */
export async function deliverMission(
  repo: MissionRepo,
  request: DeliveryRequest,
): Promise<DeliveryOutcome> {
  const decision = decideDelivery(request);
  if (decision.kind === "nothing") return { delivered: [], notes: decision.notes };
  await repo.ensure(decision.head);
  const delivered: Delivered[] = [];
  for (const step of decision.steps) {
    delivered.push(
      step.kind === "branch"
        ? await deliverBranch({
            repo,
            missionId: request.missionId,
            head: decision.head,
            repoDir: step.repoDir,
          })
        : await pushBranch({
            repo,
            missionId: request.missionId,
            head: decision.head,
            remote: step.remote,
            fromDir: step.fromDir,
          }),
    );
  }
  return { delivered, notes: decision.notes };
}

/** `swarm export`: the head (fetched first) as a new repository in `dir`. */
export async function exportMission(
  repo: MissionRepo,
  missionId: string,
  head: CommitId,
  dir: string,
): Promise<Delivered> {
  await repo.ensure(head);
  return exportClone({ repo, missionId, head, dir });
}

/** One line per delivery, for a person. */
export function describeDelivered(d: Delivered): string {
  if (d.already) return `branch ${d.branch} is already in ${d.where} at ${d.commit.slice(0, 12)}`;
  return `delivered ${d.commit.slice(0, 12)} as branch ${d.branch} to ${d.where}`;
}

/** A delivery that failed, as a note (deploy-swarm reports it and exits 2). */
export function deliveryFailure(err: unknown): string {
  return `delivery failed: ${errorMessage(err)}`;
}
