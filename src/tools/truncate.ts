// Output caps with a visible note. The middle is cut and the head and tail
// kept: the first lines say what ran, the last ones usually say why it failed.

/** Keeps the first and last halves of a byte stream and counts what was cut between. */
export class CappedOutput {
  readonly #headLimit: number;
  readonly #tailLimit: number;
  #head: Buffer[] = [];
  #headBytes = 0;
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #dropped = 0;

  constructor(maxBytes: number) {
    this.#headLimit = Math.floor(maxBytes / 2);
    this.#tailLimit = maxBytes - this.#headLimit;
  }

  push(chunk: Buffer): void {
    let b = chunk;
    if (this.#headBytes < this.#headLimit) {
      const take = Math.min(b.length, this.#headLimit - this.#headBytes);
      this.#head.push(b.subarray(0, take));
      this.#headBytes += take;
      b = b.subarray(take);
    }
    if (b.length === 0) return;
    this.#tail.push(b);
    this.#tailBytes += b.length;
    while (this.#tailBytes > this.#tailLimit) {
      const first = this.#tail[0];
      if (first === undefined) break;
      const excess = this.#tailBytes - this.#tailLimit;
      if (first.length <= excess) {
        this.#tail.shift();
        this.#tailBytes -= first.length;
        this.#dropped += first.length;
      } else {
        this.#tail[0] = first.subarray(excess);
        this.#tailBytes -= excess;
        this.#dropped += excess;
      }
    }
  }

  text(): string {
    if (this.#dropped === 0) return Buffer.concat([...this.#head, ...this.#tail]).toString("utf8");
    const head = Buffer.concat(this.#head).toString("utf8");
    const tail = Buffer.concat(this.#tail).toString("utf8");
    return `${head}\n[... truncated ${this.#dropped} bytes ...]\n${tail}`;
  }
}

/** Cut a text to about `maxBytes` (head and tail kept) with the same visible note. */
export function truncateText(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= maxBytes) return text;
  const out = new CappedOutput(maxBytes);
  out.push(buf);
  return out.text();
}
