/**
 * The CLI's side of delivery: `--push REMOTE`, and what deploy-swarm and
 * `swarm submit --wait` do once the mission's final event arrives (deliver,
 * then say what was delivered, or where the head is when nothing was).
 */
import { Option } from "commander";
import { deliverMission, describeDelivered, deliveryFailure } from "../client/mission-workspace.ts";
import { BadInputError, ExitCode, exitCodeFor } from "../errors.ts";
import type { FinalMissionEvent, MissionWorkspace } from "../schema/index.ts";
import type { MissionRepo } from "../workspace/mission-repo.ts";

/** `--push REMOTE`: a remote of the workspace repository, or a URL. */
export function pushOption(): Option {
  return new Option(
    "--push <remote>",
    "also push the result as branch squad/<mission> to this remote (a remote's name or a URL; your git's own credentials)",
  );
}

export interface WritableText {
  write(text: string): unknown;
}

/**
 * Delivers after the final event; writes one line per delivery or note.
 * Resolves with the exit code delivery itself calls for (0, or 2 when a
 * branch exists already or the push was refused), never throws for that.
 */
export async function deliverAfterMission(
  repo: MissionRepo,
  opts: {
    missionId: string;
    final: FinalMissionEvent;
    workspace: MissionWorkspace;
    push: string | null;
    partial?: boolean;
    out: WritableText;
    /** Where a failure is said; default stderr. */
    errOut?: WritableText;
    /** Where a note (nothing delivered, and why) is said; default `out`. */
    noteOut?: WritableText;
  },
): Promise<ExitCode> {
  try {
    const outcome = await deliverMission(repo, {
      missionId: opts.missionId,
      end: opts.final.type,
      head: opts.final.payload.head ?? null,
      workspace: opts.workspace,
      push: opts.push,
      partial: opts.partial ?? false,
    });
    for (const d of outcome.delivered) opts.out.write(`${describeDelivered(d)}\n`);
    for (const n of outcome.notes) (opts.noteOut ?? opts.out).write(`${n}\n`);
    return ExitCode.ok;
  } catch (err) {
    (opts.errOut ?? process.stderr).write(`${deliveryFailure(err)}\n`);
    return err instanceof BadInputError ? ExitCode.badInput : exitCodeFor(err, true);
  }
}
