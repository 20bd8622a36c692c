// A run's throughput over time, read from its journal (`<runs dir>/<run id>.journal.jsonl`): every chunk line
// carries `t`, when the chunk was stored (ms since the run started), so any run has a chart, whoever ran it.
// Streamed in blocks, with a fixed number of time bins and a cap on one line's length, so a journal of 100,000
// lines (or a damaged one of any size) costs the same small memory.
import { createReadStream } from 'node:fs';

/** Bins of the chart: a bin doubles its width whenever a chunk lands past the last one. */
const MAX_BINS = 400;
const FIRST_BIN_MS = 50;
/** A journal line is a few hundred bytes; anything longer is damage and is skipped, not buffered. */
const MAX_LINE = 64 * 1024;

export interface JournalThroughput {
  /** `[ms since the run started, bytes stored so far]` at each bin's end; pauses between attempts left out. */
  samples: [number, number][];
  /** Chunk lines that carried `t` (a journal written before `t` existed has none). */
  timedChunks: number;
  /** Of those, chunks found already on their nodes: not sent, so not in the bytes. */
  heldChunks: number;
  /** Lines that were not JSON, too long or not shaped like a journal line: skipped. */
  skippedLines: number;
  attempts: number;
}

class Bins {
  private width = FIRST_BIN_MS;
  private bytes = new Float64Array(MAX_BINS);
  private last = -1;

  add(t: number, size: number): void {
    while (t >= this.width * MAX_BINS) this.widen();
    const bin = Math.floor(t / this.width);
    this.bytes[bin]! += size;
    if (bin > this.last) this.last = bin;
  }

  private widen(): void {
    const merged = new Float64Array(MAX_BINS);
    for (let i = 0; i < MAX_BINS; i++) merged[i >> 1]! += this.bytes[i]!;
    this.bytes = merged;
    this.width *= 2;
    this.last = this.last >> 1;
  }

  cumulative(): [number, number][] {
    if (this.last < 0) return [];
    const out: [number, number][] = [[0, 0]];
    let total = 0;
    for (let i = 0; i <= this.last; i++) {
      total += this.bytes[i]!;
      out.push([(i + 1) * this.width, total]);
    }
    return out;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Folds journal lines into bins: chunk lines by `t`, a resume line closes the gap since the last chunk. */
class ThroughputFold {
  readonly bins = new Bins();
  timedChunks = 0;
  heldChunks = 0;
  skippedLines = 0;
  attempts = 1;
  private startedAt: number | undefined;
  private lastT = 0;
  /** Time the run stood still between attempts (from its last chunk to the resume), taken out of later `t`s. */
  private paused = 0;

  line(text: string): void {
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.skippedLines++;
      return;
    }
    if (!isRecord(value)) {
      this.skippedLines++;
      return;
    }
    if (value.type === 'start' && typeof value.startedAt === 'string') this.startedAt = Date.parse(value.startedAt);
    else if (value.type === 'resume' && typeof value.at === 'string') this.resume(Date.parse(value.at));
    else if (value.type === 'chunk') this.chunk(value);
  }

  private resume(at: number): void {
    this.attempts++;
    if (this.startedAt === undefined || !Number.isFinite(at) || !Number.isFinite(this.startedAt)) return;
    const resumedT = at - this.startedAt;
    if (resumedT <= this.lastT) return;
    this.paused += resumedT - this.lastT;
    this.lastT = resumedT;
  }

  private chunk(line: Record<string, unknown>): void {
    const { t, chunk } = line;
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || !isRecord(chunk)) return;
    const size = chunk.size;
    if (typeof size !== 'number' || !Number.isFinite(size) || size < 0) {
      this.skippedLines++;
      return;
    }
    this.timedChunks++;
    if (t > this.lastT) this.lastT = t;
    // A chunk found already on its nodes was not sent: it takes no bandwidth.
    if (chunk.skipped === true) {
      this.heldChunks++;
      return;
    }
    this.bins.add(Math.max(0, t - this.paused), size);
  }
}

/** Reads a journal as a stream of lines; a line over MAX_LINE is dropped as it streams, never held whole. */
export async function journalThroughput(path: string): Promise<JournalThroughput> {
  const fold = new ThroughputFold();
  let pending: string[] = [];
  let pendingLength = 0;
  let overlong = false;
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  for await (const block of stream as AsyncIterable<string>) {
    let from = 0;
    for (let nl = block.indexOf('\n'); nl >= 0; nl = block.indexOf('\n', from)) {
      const piece = block.slice(from, nl);
      if (overlong || pendingLength + piece.length > MAX_LINE) fold.skippedLines++;
      else fold.line(pending.length ? pending.join('') + piece : piece);
      pending = [];
      pendingLength = 0;
      overlong = false;
      from = nl + 1;
    }
    const rest = block.slice(from);
    if (overlong || pendingLength + rest.length > MAX_LINE) {
      overlong = true;
      pending = [];
      pendingLength = 0;
    } else if (rest) {
      pending.push(rest);
      pendingLength += rest.length;
    }
  }
  // A torn last line (a killed run) is parsed if it is whole JSON, skipped otherwise.
  if (!overlong && pendingLength > 0) fold.line(pending.join(''));
  return { samples: fold.bins.cumulative(), timedChunks: fold.timedChunks, heldChunks: fold.heldChunks, skippedLines: fold.skippedLines, attempts: fold.attempts };
}
