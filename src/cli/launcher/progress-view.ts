/**
 * Rendering of the progress model. On a terminal: one table redrawn in place
 * (cursor up, clear, redraw; at most ~10 frames a second, and once a second
 * so running tasks' times move), coloured with `styleText`. Piped: plain
 * lines, one per event (what `swarm watch` prints) and per supervisor notice,
 * then the summary.
 */
import { Stream } from "node:stream";
import { styleText } from "node:util";
import type { SquadEvent } from "../../schema/index.ts";
import { formatEventLine } from "../event-line.ts";
import { padEndToWidth, truncateToWidth, visibleWidth } from "../text-table.ts";
import {
  applyProgress,
  describeSupervisorEvent,
  initialProgress,
  progressTable,
  type ProgressInput,
  type ProgressState,
  type ProgressTable,
  type TaskCells,
  type Tone,
} from "./progress-model.ts";

/** What the view writes to: a terminal or a pipe. */
export interface ViewStream {
  write(s: string): boolean;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

export interface ProgressView {
  update(input: ProgressInput): void;
  /** Draw the final frame (with the summary) and stop redrawing. Idempotent. */
  close(): void;
  state(): ProgressState;
}

export interface ProgressViewOptions {
  missionId: string;
  out: ViewStream;
  /** Default: "tty" when `out` is a terminal. */
  mode?: "tty" | "lines";
  /** Default: what styleText allows for `out` (TTY, NO_COLOR, FORCE_COLOR). */
  color?: boolean;
  now?: () => number;
  /** Minimum time between two frames. Default 100 ms (~10 fps). */
  frameMs?: number;
}

export function createProgressView(opts: ProgressViewOptions): ProgressView {
  const mode = opts.mode ?? (opts.out.isTTY ? "tty" : "lines");
  const color = opts.color ?? canColor(opts.out);
  return mode === "tty"
    ? new TtyProgressView(opts, color)
    : new LineProgressView(opts.missionId, opts.out, color, opts.now ?? Date.now);
}

// ---------------------------------------------------------------- styling

/** What styleText allows on this stream (a TTY, NO_COLOR, FORCE_COLOR); a non-stream: its isTTY. */
export function canColor(out: ViewStream): boolean {
  if (!(out instanceof Stream)) return out.isTTY === true;
  return styleText("red", "x", { stream: out as unknown as NodeJS.WritableStream }) !== "x";
}

const TONE_FORMAT: Record<Tone, Exclude<Parameters<typeof styleText>[0], unknown[]> | null> = {
  ok: "green",
  bad: "red",
  active: "cyan",
  assigned: "magenta",
  waiting: "blue",
  warn: "yellow",
  muted: "gray",
  plain: null,
};

interface Seg {
  text: string;
  tone?: Tone;
  bold?: boolean;
}

/** Truncate a line of segments to `width` terminal columns, then colour it. */
export function renderLine(segs: readonly Seg[], width: number, color: boolean): string {
  let room = Math.max(1, width);
  let out = "";
  for (const seg of segs) {
    if (room <= 0) break;
    const text = truncateToWidth(seg.text, room);
    room -= visibleWidth(text);
    out += color ? paint(seg, text) : text;
  }
  return out;
}

function paint(seg: Seg, text: string): string {
  const formats: Array<Exclude<Parameters<typeof styleText>[0], unknown[]>> = [];
  const f = seg.tone ? TONE_FORMAT[seg.tone] : null;
  if (f) formats.push(f);
  if (seg.bold) formats.push("bold");
  if (!formats.length || !text) return text;
  return styleText(formats, text, { validateStream: false });
}

// ---------------------------------------------------------------- terminal

const ESC = "\x1b[";
const HIDE_CURSOR = `${ESC}?25l`;
const SHOW_CURSOR = `${ESC}?25h`;
const CLEAR_LINE = `${ESC}2K`;
const CLEAR_BELOW = `${ESC}J`;
const up = (n: number) => `${ESC}${n}A`;

/** Lay the table out as lines of segments, at most `maxLines` (pure). */
export function layoutTable(table: ProgressTable, maxLines: number, width = 100): Seg[][] {
  const head: Seg[][] = [
    [
      { text: "Squad ", bold: true },
      { text: table.title, bold: true },
      { text: "  " },
      { text: table.status.text, tone: table.status.tone, bold: true },
      { text: `  ${table.elapsed}  ${table.tokens}`, tone: "muted" },
    ],
  ];
  if (table.info.length) {
    head.push([
      { text: `  ${table.info.map(([k, v]) => `${k} ${v}`).join("  ·  ")}`, tone: "muted" },
    ]);
  }
  const tail: Seg[][] = [];
  if (table.replicas.length) {
    // Wrapped to the width: a line that wraps by itself would break the redraw's line count.
    const label = "  replicas ";
    let segs: Seg[] = [{ text: label, tone: "muted" }];
    let used = label.length;
    for (const r of table.replicas) {
      const text = ` ${r.text}`;
      if (used + text.length > width && segs.length > 1) {
        tail.push(segs);
        segs = [{ text: " ".repeat(label.length) }];
        used = label.length;
      }
      segs.push({ text, tone: r.tone });
      used += text.length;
    }
    tail.push(segs);
  }
  for (const n of table.notices) {
    tail.push([
      { text: `  ${n.time} `, tone: "muted" },
      { text: n.text, tone: n.tone },
    ]);
  }
  if (table.summary) {
    for (const s of table.summary)
      tail.push([{ text: s.text, tone: s.tone, bold: s === table.summary[0] }]);
  }

  const cols = columnWidths(table.waves.flatMap((w) => w.tasks));
  const waveLines = (collapseDone: boolean): Seg[][] => {
    const lines: Seg[][] = [];
    for (const w of table.waves) {
      lines.push([{ text: `  ${w.label}`, tone: w.tone, bold: true }]);
      if (collapseDone && w.status === "completed" && w.tone === "ok") continue;
      for (const t of w.tasks) lines.push(taskLine(t, cols));
    }
    return lines;
  };
  let body = waveLines(false);
  const room = Math.max(1, maxLines - head.length - tail.length);
  if (body.length > room) body = waveLines(true);
  if (body.length > room) {
    const hidden = body.length - room + 1;
    body = [...body.slice(0, room - 1), [{ text: `  … ${hidden} more lines`, tone: "muted" }]];
  }
  const all = [...head, ...body, ...tail];
  return all.length > maxLines ? all.slice(all.length - maxLines) : all;
}

type Widths = Record<
  "id" | "agent" | "replica" | "status" | "attempt" | "duration" | "tokens",
  number
>;

function columnWidths(tasks: readonly TaskCells[]): Widths {
  const w = (k: keyof Widths, min: number, max: number) =>
    Math.min(max, Math.max(min, ...tasks.map((t) => visibleWidth(t[k]))));
  return {
    id: w("id", 4, 24),
    agent: w("agent", 5, 16),
    replica: w("replica", 7, 18),
    status: w("status", 9, 10),
    attempt: w("attempt", 3, 5),
    duration: w("duration", 5, 7),
    tokens: w("tokens", 5, 12),
  };
}

function taskLine(t: TaskCells, w: Widths): Seg[] {
  const cell = (s: string, n: number) => padEndToWidth(truncateToWidth(s, n), n);
  return [
    { text: `    ${t.mark} `, tone: t.tone },
    { text: cell(t.id, w.id), bold: true },
    { text: `  ${cell(t.agent, w.agent)}  ${cell(t.replica, w.replica)}  ` },
    { text: cell(t.status, w.status), tone: t.tone },
    {
      text: `  ${t.attempt.padStart(w.attempt)}  ${t.duration.padStart(w.duration)}  ${t.tokens.padStart(w.tokens)}  `,
    },
    { text: t.detail, tone: "muted" },
  ];
}

class TtyProgressView implements ProgressView {
  private s: ProgressState;
  private readonly out: ViewStream;
  private readonly color: boolean;
  private readonly now: () => number;
  private readonly frameMs: number;
  private drawnLines = 0;
  private lastFrameAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly ticker: NodeJS.Timeout;
  private closed = false;

  constructor(opts: ProgressViewOptions, color: boolean) {
    this.s = initialProgress(opts.missionId, (opts.now ?? Date.now)());
    this.out = opts.out;
    this.color = color;
    this.now = opts.now ?? Date.now;
    this.frameMs = opts.frameMs ?? 100;
    this.out.write(HIDE_CURSOR);
    // Running times move even when no event comes.
    this.ticker = setInterval(() => this.schedule(), 1000);
    this.ticker.unref();
    this.draw();
  }

  state(): ProgressState {
    return this.s;
  }

  update(input: ProgressInput): void {
    if (this.closed) return;
    this.s = applyProgress(this.s, input);
    this.schedule();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.draw();
    this.out.write(SHOW_CURSOR);
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    const wait = Math.max(0, this.lastFrameAt + this.frameMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed) this.draw();
    }, wait);
  }

  private draw(): void {
    this.lastFrameAt = this.now();
    const width = Math.max(20, (this.out.columns || 100) - 1);
    const height = Math.max(5, (this.out.rows || 40) - 1);
    const lines = layoutTable(progressTable(this.s, this.now()), height, width);
    let frame = this.drawnLines > 0 ? `\r${up(this.drawnLines)}` : "";
    for (const l of lines) frame += `${CLEAR_LINE}${renderLine(l, width, this.color)}\n`;
    frame += CLEAR_BELOW;
    this.out.write(frame);
    this.drawnLines = lines.length;
  }
}

// ---------------------------------------------------------------- lines

class LineProgressView implements ProgressView {
  private s: ProgressState;
  private readonly missionId: string;
  private readonly out: ViewStream;
  private readonly color: boolean;
  private closed = false;

  constructor(missionId: string, out: ViewStream, color: boolean, now: () => number) {
    this.s = initialProgress(missionId, now());
    this.missionId = missionId;
    this.out = out;
    this.color = color;
  }

  state(): ProgressState {
    return this.s;
  }

  update(input: ProgressInput): void {
    if (this.closed) return;
    const before = this.s;
    this.s = applyProgress(this.s, input);
    switch (input.kind) {
      case "event":
        if (this.shows(input.event)) this.line(formatEventLine(input.event, this.color));
        return;
      case "supervisor":
        this.tagged(input.at, "supervisor", describeSupervisorEvent(input.event));
        return;
      case "notice":
        this.tagged(input.at, "deploy", input.text);
        return;
      case "info":
        this.tagged(Date.now(), "deploy", `${input.key}: ${input.value}`);
        return;
      case "stopping":
        if (!before.stopping) this.tagged(Date.now(), "deploy", "stopping the swarm");
        return;
      case "summary": {
        const table = progressTable(this.s, input.at);
        for (const l of table.summary ?? []) {
          this.line(
            renderLine([{ text: l.text, tone: l.tone }], Number.MAX_SAFE_INTEGER, this.color),
          );
        }
        return;
      }
    }
  }

  close(): void {
    this.closed = true;
  }

  /** This mission's events (no heartbeats), and our own replicas coming and going. */
  private shows(e: SquadEvent): boolean {
    if (e.type === "agent_heartbeat") return false;
    if (e.type === "agent_online" || e.type === "agent_offline") {
      return `${e.payload.agent}/${e.payload.instance}` in this.s.workers;
    }
    return e.mission_id === this.missionId;
  }

  private tagged(at: number, tag: string, text: string): void {
    const time = new Date(at).toISOString().slice(11, 23);
    const kind = tag.padEnd(18);
    this.line(
      this.color
        ? `${styleText("dim", time, { validateStream: false })} ${styleText("bold", this.missionId, { validateStream: false })} ${styleText("yellow", kind, { validateStream: false })} ${text}`
        : `${time} ${this.missionId} ${kind} ${text}`,
    );
  }

  private line(text: string): void {
    this.out.write(`${text}\n`);
  }
}
