import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createProgressView,
  layoutTable,
  renderLine,
} from "../../src/cli/launcher/progress-view.ts";
import {
  progressTable,
  initialProgress,
  applyProgress,
} from "../../src/cli/launcher/progress-model.ts";
import { makeEvent } from "../../src/schema/index.ts";

const M = "m-20250101-120000-abcd";

class FakeStream {
  chunks: string[] = [];
  isTTY: boolean;
  columns = 80;
  rows = 24;
  constructor(tty: boolean) {
    this.isTTY = tty;
  }
  write(s: string): boolean {
    this.chunks.push(s);
    return true;
  }
  text(): string {
    return this.chunks.join("");
  }
}

const planned = makeEvent(
  "mission_planned",
  { mission_id: M, source: "orchestrator" },
  {
    title: "Demo",
    planner: null,
    plan: {
      strategy: "",
      waves: Array.from({ length: 6 }, (_, i) => ({
        wave: i + 1,
        rationale: "",
        tasks: Array.from({ length: 4 }, (_, j) => ({
          id: `w${i + 1}t${j + 1}`,
          agent: "builder",
          title: `task ${j + 1} of wave ${i + 1}`,
          depends_on: [],
        })),
      })),
      risks: [],
      success_criteria: [],
    },
  },
);

afterEach(() => {
  vi.useRealTimers();
});

describe("progress view on a terminal", () => {
  it("redraws in place: cursor up over the last frame, clear, at most ~10 frames a second", () => {
    vi.useFakeTimers();
    const out = new FakeStream(true);
    const view = createProgressView({ missionId: M, out, color: false, now: () => Date.now() });
    expect(out.text()).toContain("\x1b[?25l"); // cursor hidden while drawing
    const first = out.chunks.length;
    view.update({ kind: "event", event: planned });
    view.update({ kind: "notice", text: "one", at: Date.now() });
    view.update({ kind: "notice", text: "two", at: Date.now() });
    vi.advanceTimersByTime(150);
    const frames = out.chunks.slice(first);
    expect(frames).toHaveLength(1); // three updates, one frame
    expect(frames[0]).toMatch(new RegExp(String.raw`^\r\u001b\[\d+A`)); // back to the top of the previous frame
    expect(frames[0]).toContain("\x1b[2K");
    expect(frames[0]).toContain("two");
    view.close();
    expect(out.chunks.at(-1)).toBe("\x1b[?25h");
    view.update({ kind: "notice", text: "after close", at: Date.now() });
    vi.advanceTimersByTime(2000);
    expect(out.text()).not.toContain("after close");
  });

  it("fits the frame to the terminal: no line wider than it, no more lines than it has", () => {
    let s = initialProgress(M, 0);
    s = applyProgress(s, { kind: "event", event: planned });
    for (let i = 0; i < 5; i++) {
      s = applyProgress(s, {
        kind: "supervisor",
        event: { type: "started", name: `builder-${i + 1}`, pid: 100 + i, restarts: 0 },
        at: 0,
      });
    }
    const lines = layoutTable(progressTable(s, 0), 12, 40);
    expect(lines.length).toBeLessThanOrEqual(12);
    for (const l of lines) expect(renderLine(l, 39, false).length).toBeLessThanOrEqual(39);
    expect(lines.map((l) => renderLine(l, 200, false)).join("\n")).toContain("more lines");
  });

  it("colours by status when asked, and not otherwise", () => {
    const seg = [{ text: "succeeded", tone: "ok" as const }];
    expect(renderLine(seg, 80, true)).toContain("\x1b[32m");
    expect(renderLine(seg, 80, false)).toBe("succeeded");
    expect(renderLine([{ text: "abcdefghij" }], 5, false)).toBe("abcd…");
  });
});

describe("progress view on a pipe", () => {
  it("prints one plain line per event and notice, skips heartbeats, ends with the summary", () => {
    const out = new FakeStream(false);
    const view = createProgressView({ missionId: M, out });
    view.update({ kind: "event", event: planned });
    view.update({
      kind: "event",
      event: makeEvent(
        "agent_heartbeat",
        { mission_id: null, source: "builder/i1" },
        { agent: "builder", instance: "i1", in_flight: 0, completed: 0, failed: 0, uptime_s: 1 },
      ),
    });
    view.update({
      kind: "supervisor",
      event: { type: "restarting", name: "builder-1", delayMs: 500, restarts: 1 },
      at: Date.parse("2025-01-01T12:00:01.000Z"),
    });
    view.update({
      kind: "summary",
      at: 0,
      summary: {
        mission_id: M,
        status: "failed",
        tasks: { total: 24, succeeded: 0, failed: 1 },
        duration_ms: 1000,
        report: null,
        usage: { input_tokens: 0, output_tokens: 0 },
        reason: "task w1t1 failed",
      },
    });
    view.close();
    const lines = out.text().trimEnd().split("\n");
    expect(lines[0]).toMatch(/mission_planned +planned "Demo": 6 waves, 24 tasks/);
    expect(lines[1]).toBe(
      `12:00:01.000 ${M} supervisor         builder-1 restarting in 500ms (restart 1)`,
    );
    expect(lines.slice(2)).toEqual([
      `✘ mission ${M} failed: 0/24 tasks succeeded, 1 failed in 1.0s; tokens 0 in, 0 out`,
      "  reason: task w1t1 failed",
      "  restarts: builder-1 ×1",
      "  report: (none written)",
    ]);
    expect(out.text()).not.toContain("\x1b[");
  });
});
