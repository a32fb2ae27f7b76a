/**
 * Attribute names the spans carry. The GenAI ones follow the OpenTelemetry
 * GenAI semantic conventions (still "development" there, so copied here
 * instead of imported from the package's incubating entry point, as its
 * README advises); the squad.* ones are ours.
 */
export const GEN_AI = {
  operationName: "gen_ai.operation.name",
  providerName: "gen_ai.provider.name",
  /** The older name of gen_ai.provider.name, still read by many backends. */
  system: "gen_ai.system",
  requestModel: "gen_ai.request.model",
  responseModel: "gen_ai.response.model",
  inputTokens: "gen_ai.usage.input_tokens",
  outputTokens: "gen_ai.usage.output_tokens",
  finishReasons: "gen_ai.response.finish_reasons",
  toolName: "gen_ai.tool.name",
  toolCallId: "gen_ai.tool.call.id",
  toolType: "gen_ai.tool.type",
  agentName: "gen_ai.agent.name",
} as const;

export const SQUAD = {
  missionId: "squad.mission.id",
  missionTitle: "squad.mission.title",
  missionStatus: "squad.mission.status",
  taskId: "squad.task.id",
  taskTitle: "squad.task.title",
  attempt: "squad.task.attempt",
  wave: "squad.task.wave",
  agent: "squad.agent",
  outcome: "squad.task.outcome",
  eventType: "squad.event.type",
  eventId: "squad.event.id",
  deliveryCount: "squad.delivery.count",
} as const;

/** Messaging conventions on the publish and receive spans. */
export const MESSAGING = {
  system: "messaging.system",
  destination: "messaging.destination.name",
  operation: "messaging.operation.type",
  messageId: "messaging.message.id",
} as const;

export const ERROR_TYPE = "error.type";
export const PROCESS_COMMAND_LINE = "process.command_line";
export const PROCESS_EXIT_CODE = "process.exit.code";
