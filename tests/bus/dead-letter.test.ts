import { describe, expect, it } from "vitest";
import { buildDlqRecord, dlqMsgId } from "../../src/bus/index.ts";
import { DLQ_DATA_LIMIT, DlqRecord } from "../../src/schema/index.ts";

const base = {
  reason: "not JSON: Unexpected token",
  agent: "builder",
  subject: "squad.tasks.builder",
  streamSeq: 7,
  deliveryCount: 1,
};

describe("dead-letter records", () => {
  it("keeps a small UTF-8 message as text", () => {
    const r = buildDlqRecord({
      ...base,
      data: new TextEncoder().encode("héllo {"),
      now: new Date(0),
    });
    expect(DlqRecord.parse(r)).toEqual({
      reason: base.reason,
      agent: "builder",
      subject: "squad.tasks.builder",
      stream_seq: 7,
      delivery_count: 1,
      received_at: "1970-01-01T00:00:00.000Z",
      data: "héllo {",
    });
    expect(dlqMsgId({ agent: "builder", subject: "squad.tasks.builder", stream_seq: 7 })).toBe(
      "dlq-tasks-builder-7",
    );
    expect(
      dlqMsgId({ agent: "orchestrator", subject: "squad.missions.submit", stream_seq: 7 }),
    ).toBe("dlq-missions-orchestrator-7");
  });

  it("truncates to 64 KiB without inventing a broken character", () => {
    // 'é' is two bytes: the limit falls inside one of them.
    const text = "a" + "é".repeat(DLQ_DATA_LIMIT);
    const r = buildDlqRecord({ ...base, data: new TextEncoder().encode(text) });
    expect(Buffer.byteLength(r.data)).toBeLessThanOrEqual(DLQ_DATA_LIMIT);
    expect(r.data.length).toBe(1 + (DLQ_DATA_LIMIT - 2) / 2);
    expect(text.startsWith(r.data)).toBe(true);
    expect(r.data_base64).toBeUndefined();
    expect(r.original_bytes).toBe(1 + 2 * DLQ_DATA_LIMIT);
  });

  it("adds the bytes as base64 when they are not UTF-8", () => {
    const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x41]);
    const r = buildDlqRecord({ ...base, data: bytes });
    expect(Buffer.from(r.data_base64!, "base64")).toEqual(Buffer.from(bytes));
    expect(r.data).toBe("{\uFFFD\uFFFDA");
  });
});
