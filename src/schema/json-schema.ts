import { z } from "zod";
import { EVENT_TYPES, EventSchemas, SquadEvent } from "./events.ts";
import { Plan } from "./plan.ts";
import { Task } from "./task.ts";
import { TaskResult } from "./result.ts";
import { MissionSummaryValue, MissionViewIndex } from "./mission-view.ts";

function render(schema: z.ZodType, title: string): string {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  return JSON.stringify({ title, ...json }, null, 2) + "\n";
}

/** File name → JSON text of every public schema, for clients in any language. */
export function jsonSchemaFiles(): Record<string, string> {
  const files: Record<string, string> = {
    "event.schema.json": render(SquadEvent, "Squad event (any type)"),
    "plan.schema.json": render(Plan, "Squad plan"),
    "task.schema.json": render(Task, "Squad task (task_assigned.payload.task)"),
    "task-result.schema.json": render(TaskResult, "Squad task result"),
    "mission-view/mission.schema.json": render(
      MissionSummaryValue,
      "Squad mission view: squad_mission_view/mission.<id>",
    ),
    "mission-view/index.schema.json": render(
      MissionViewIndex,
      "Squad mission view: squad_mission_view/index",
    ),
  };
  for (const type of EVENT_TYPES) {
    files[`events/${type}.schema.json`] = render(EventSchemas[type], `Squad event: ${type}`);
  }
  return files;
}
