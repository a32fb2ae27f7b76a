import { assertAgentName } from "./identifiers.ts";

/** Subject and stream names of the contract; build subjects only through these. */
export const SUBJECT_ROOT = "squad";
export const COORDINATION_SUBJECT = "squad.coordination";
export const MISSIONS_SUBMIT_SUBJECT = "squad.missions.submit";
export const ALL_SUBJECTS = "squad.>";

export const subjects = {
  tasks: (agent: string) => `squad.tasks.${assertAgentName(agent)}`,
  allTasks: "squad.tasks.*",
  coordination: COORDINATION_SUBJECT,
  status: (agent: string, instance: string) => {
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(instance)) {
      throw new Error(
        `invalid instance id ${JSON.stringify(instance)}: use A-Z, a-z, 0-9, '_' or '-'`,
      );
    }
    return `squad.status.${assertAgentName(agent)}.${instance}`;
  },
  allStatus: "squad.status.>",
  missionsSubmit: MISSIONS_SUBMIT_SUBJECT,
  dlq: (agent: string) => `squad.dlq.${assertAgentName(agent)}`,
  allDlq: "squad.dlq.*",
} as const;

export const STREAMS = {
  tasks: "SQUAD_TASKS",
  events: "SQUAD_EVENTS",
  status: "SQUAD_STATUS",
  missions: "SQUAD_MISSIONS",
  dlq: "SQUAD_DLQ",
} as const;

/** Durable pull consumer shared by every replica of one agent. */
export function workerDurable(agent: string): string {
  return `worker-${assertAgentName(agent)}`;
}

/** Agent name from a `squad.tasks.<agent>` subject, or null. */
export function agentFromTaskSubject(subject: string): string | null {
  const m = /^squad\.tasks\.([a-z0-9_-]{1,64})$/.exec(subject);
  return m ? m[1]! : null;
}
