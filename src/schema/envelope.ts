import { randomUUID } from "node:crypto";
import {
  EventPayloads,
  EventSchemas,
  SCHEMA_VERSION,
  SquadEvent,
  type EventOf,
  type EventType,
  type PayloadInput,
} from "./events.ts";
import { parseWith } from "./validation-error.ts";

export interface EnvelopeFields {
  mission_id: string | null;
  task_id?: string | null;
  source: string;
  target?: string | null;
  correlation_id?: string | null;
  /** Deterministic ids make re-publishing after a crash a dedupe no-op. */
  id?: string;
  timestamp?: string;
}

/**
 * Events makeEvent built and validated: a publisher need not parse them
 * again (see ensureEvent). Events are treated as immutable once built; a
 * changed copy (e.g. redacted) is a new object and is validated again.
 */
const validated = new WeakSet<object>();

/** Build and validate one event; throws SchemaValidationError naming the field. */
export function makeEvent<T extends EventType>(
  type: T,
  fields: EnvelopeFields,
  payload: PayloadInput<T>,
): EventOf<T> {
  const candidate = {
    schema: SCHEMA_VERSION,
    id: fields.id ?? randomUUID(),
    type,
    mission_id: fields.mission_id,
    task_id: fields.task_id ?? null,
    source: fields.source,
    target: fields.target ?? null,
    timestamp: fields.timestamp ?? new Date().toISOString(),
    correlation_id: fields.correlation_id ?? null,
    payload,
  };
  const event = parseWith(EventSchemas[type], candidate, `${type} event`) as EventOf<T>;
  validated.add(event);
  return event;
}

/** `value` as a valid event: as it is when makeEvent built it, else parsed (parseEvent). */
export function ensureEvent(value: unknown): SquadEvent {
  if (typeof value === "object" && value !== null && validated.has(value)) {
    return value as SquadEvent;
  }
  return parseEvent(value);
}

/** Validate any decoded JSON value as a squad event. */
export function parseEvent(value: unknown): SquadEvent {
  const type =
    value && typeof value === "object" && "type" in value
      ? String((value as { type: unknown }).type)
      : "(no type)";
  return parseWith(SquadEvent, value, `event ${type}`);
}

const utf8 = new TextDecoder();

/** Decode bytes from the wire into a validated event. */
export function decodeEvent(data: Uint8Array | string): SquadEvent {
  const text = typeof data === "string" ? data : utf8.decode(data);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`not JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseEvent(json);
}

export function isEventType(s: string): s is EventType {
  return Object.hasOwn(EventPayloads, s);
}
