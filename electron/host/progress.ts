// Folds the engine's ingest events into progress batches for the app. However many chunks move, the host sends
// at most one batch per interval (default 100 ms, ~10 a second): counters are absolute, chunk updates carry only
// each chunk's latest state since the previous batch, at most MAX_ROWS_PER_BATCH of them (what changed in a
// chunk's state goes before a queued chunk's first row), so no batch is large enough to stall the renderer.
import type { ChunkRowState, ChunkUpdate, IngestPhase, IngestProgress } from '../../shared/ipc/contract.ts';
import type { IngestEvent, NodeStatus } from '../../shared/types.ts';

const MAX_LOGS_PER_BATCH = 50;
/** ~45 KB of JSON: a run's 2,000 queued chunks reach the renderer over five batches, not in one 280 KB message. */
export const MAX_ROWS_PER_BATCH = 300;

const IN_FLIGHT: ReadonlySet<ChunkRowState> = new Set(['queued', 'reading', 'sending', 'retried']);

function isDone(state: ChunkUpdate['state']): boolean {
  return state === 'verified' || state === 'skipped';
}

export function emptyStateCounts(): Record<ChunkRowState, number> {
  return { queued: 0, reading: 0, sending: 0, verified: 0, retried: 0, failed: 0, moved: 0, skipped: 0, cancelled: 0 };
}

export class ProgressFolder {
  readonly runId: string;
  private phase: IngestPhase = 'starting';
  private batch = 0;
  private readonly startedAt = Date.now();
  private totals = { files: 0, chunks: 0, bytes: 0 };
  private bytesDone = 0;
  private bytesSkipped = 0;
  private retries = 0;
  private readonly nodeBytes = new Map<string, number>();
  private readonly nodeChunks = new Map<string, number>();
  private readonly nodes = new Map<string, NodeStatus>();
  /** Every chunk seen, by id; `seq` is its row. */
  private readonly chunks = new Map<string, ChunkUpdate>();
  /** Chunks whose state changed since the last batch, oldest change first; then queued chunks not yet sent. */
  private readonly dirty = new Set<string>();
  private readonly unsentQueued = new Set<string>();
  private readonly states = emptyStateCounts();
  /** `chunkId \0 nodeId` of every verified or skipped copy, so replicas count once per node. */
  private readonly verifiedCopies = new Set<string>();
  private logs: IngestProgress['logs'] = [];
  private manifestPath: string | undefined;
  private error: string | undefined;
  private endedAt: number | undefined;
  private changed = true;
  private chunksDone = 0;
  private chunksFailed = 0;

  private readonly chunkSize: number;
  private readonly resumed: boolean;
  private status: IngestProgress['status'];
  /** A chunk has moved past queued: the run is delivering, not still planning (or reading a resumed run's journal). */
  private delivering = false;

  /** `chunkSize` gives each chunk's offset (chunk i starts at i × chunkSize). */
  constructor(runId: string, options: { chunkSize?: number; resumed?: boolean } = {}) {
    this.runId = runId;
    this.chunkSize = options.chunkSize ?? 0;
    this.resumed = options.resumed ?? false;
  }

  apply(e: IngestEvent): void {
    this.changed = true;
    switch (e.type) {
      case 'run-started':
        this.phase = 'running';
        this.totals = { files: e.files, chunks: e.chunks, bytes: e.bytes };
        for (const n of e.nodes) this.nodes.set(n.id, n);
        break;
      case 'chunk': {
        if (e.state !== 'queued') this.delivering = true;
        const prev = this.chunks.get(e.id);
        const row: ChunkUpdate = {
          seq: prev?.seq ?? this.chunks.size,
          id: e.id,
          file: e.file,
          index: e.index,
          offset: e.index * this.chunkSize,
          size: e.size,
          state: e.state,
          attempt: e.attempt,
          ...(e.nodeId !== undefined ? { nodeId: e.nodeId } : prev?.nodeId !== undefined ? { nodeId: prev.nodeId } : {}),
          ...(e.error !== undefined ? { error: e.error } : {}),
          ...(e.state === 'moved' || prev?.moved ? { moved: true } : {}),
        };
        if (e.state === 'retried') this.retries += 1;
        this.chunksDone += Number(isDone(row.state)) - Number(prev !== undefined && isDone(prev.state));
        this.chunksFailed += Number(row.state === 'failed') - Number(prev?.state === 'failed');
        if ((e.state === 'verified' || e.state === 'skipped') && row.nodeId !== undefined) {
          const copy = `${e.id}\0${row.nodeId}`;
          if (!this.verifiedCopies.has(copy)) {
            this.verifiedCopies.add(copy);
            this.nodeChunks.set(row.nodeId, (this.nodeChunks.get(row.nodeId) ?? 0) + 1);
            if (e.state === 'skipped') {
              // Already on the node from an earlier run: it holds these bytes though none moved now.
              this.nodeBytes.set(row.nodeId, (this.nodeBytes.get(row.nodeId) ?? 0) + e.size);
            }
          }
        }
        if (e.state === 'skipped' && prev?.state !== 'skipped') this.bytesSkipped += e.size;
        this.setRow(row, prev);
        break;
      }
      case 'bytes':
        this.bytesDone += e.bytes;
        this.nodeBytes.set(e.nodeId, (this.nodeBytes.get(e.nodeId) ?? 0) + e.bytes);
        break;
      case 'node':
        this.nodes.set(e.status.id, e.status);
        break;
      case 'file':
        if (e.status === 'failed') this.pushLog('error', `${e.key}: ${e.error ?? 'failed'}`);
        break;
      case 'log':
        this.pushLog(e.level, e.message);
        break;
      case 'run-finished':
        this.phase = e.status === 'cancelled' ? 'cancelled' : e.status === 'failed' ? 'failed' : 'finished';
        this.status = e.status;
        this.manifestPath = e.manifestPath;
        this.endedAt = Date.now();
        if (this.phase !== 'finished') this.stopInFlight();
        break;
    }
  }

  /** The run ended without a run-finished event (it threw before or during the run). */
  fail(message: string, cancelled: boolean): void {
    this.changed = true;
    if (this.phase === 'finished' || this.phase === 'failed' || this.phase === 'cancelled') return;
    this.phase = cancelled ? 'cancelled' : 'failed';
    this.error = message;
    this.endedAt = Date.now();
    this.pushLog('error', message);
    this.stopInFlight();
  }

  /** A stopped run delivers nothing more: chunks still waiting or in flight are shown as cancelled, not sending. */
  private stopInFlight(): void {
    for (const row of this.chunks.values()) {
      if (IN_FLIGHT.has(row.state)) this.setRow({ ...row, state: 'cancelled' }, row);
    }
  }

  private setRow(row: ChunkUpdate, prev: ChunkUpdate | undefined): void {
    if (prev) this.states[prev.state] -= 1;
    this.states[row.state] += 1;
    this.chunks.set(row.id, row);
    if (row.state === 'queued' && !this.dirty.has(row.id)) {
      this.unsentQueued.add(row.id);
    } else {
      this.unsentQueued.delete(row.id);
      this.dirty.add(row.id);
    }
  }

  /** Rows or counters not sent yet. */
  get pending(): boolean {
    return this.changed;
  }

  get ended(): boolean {
    return this.phase === 'finished' || this.phase === 'failed' || this.phase === 'cancelled';
  }

  /** The next batch, or undefined when nothing changed since the last one. Rows beyond the cap wait for the next. */
  flush(maxRows = MAX_ROWS_PER_BATCH): IngestProgress | undefined {
    if (!this.changed) return undefined;
    const chunks: ChunkUpdate[] = [];
    for (const pending of [this.dirty, this.unsentQueued]) {
      for (const id of pending) {
        if (chunks.length >= maxRows) break;
        pending.delete(id);
        const row = this.chunks.get(id);
        if (row) chunks.push(row);
      }
    }
    const out = this.build(chunks, false);
    this.logs = [];
    this.changed = this.dirty.size > 0 || this.unsentQueued.size > 0;
    return out;
  }

  /** Every chunk seen so far, for a renderer that (re)subscribes mid-run. Does not consume pending deltas. */
  snapshot(): IngestProgress {
    return { ...this.build([...this.chunks.values()], true), batch: this.batch };
  }

  private build(chunks: ChunkUpdate[], full: boolean): IngestProgress {
    if (!full) this.batch += 1;
    return {
      runId: this.runId,
      // Until a chunk moves, a run is still starting: a resumed run's first frame would otherwise read 0 %.
      phase: this.phase === 'running' && !this.delivering ? 'starting' : this.phase,
      batch: this.batch,
      full,
      startedAt: this.startedAt,
      elapsedMs: (this.endedAt ?? Date.now()) - this.startedAt,
      totals: { ...this.totals },
      bytesDone: this.bytesDone,
      bytesSkipped: this.bytesSkipped,
      chunksDone: this.chunksDone,
      chunksFailed: this.chunksFailed,
      states: { ...this.states },
      retries: this.retries,
      nodeBytes: Object.fromEntries(this.nodeBytes),
      nodeChunks: Object.fromEntries(this.nodeChunks),
      nodes: [...this.nodes.values()],
      chunks,
      logs: full ? [] : this.logs,
      ...(this.manifestPath !== undefined ? { manifestPath: this.manifestPath } : {}),
      ...(this.status !== undefined ? { status: this.status } : {}),
      ...(this.resumed ? { resumed: true } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }

  private pushLog(level: 'info' | 'warn' | 'error', message: string): void {
    if (this.logs.length < MAX_LOGS_PER_BATCH) this.logs.push({ level, message });
  }
}

/**
 * Sends batches no closer together than `intervalMs`: `poke()` after any change schedules one send (none when one
 * is already scheduled), and a send that leaves rows behind schedules the next. `idle()` resolves once nothing is
 * left to send.
 */
export class BatchPacer {
  private lastAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private waiting: (() => void)[] = [];

  /** Sends one batch if there is one; returns true when more is left to send. */
  private readonly send: () => boolean;
  private readonly intervalMs: number;

  constructor(send: () => boolean, intervalMs: number) {
    this.send = send;
    this.intervalMs = intervalMs;
  }

  poke(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.lastAt + this.intervalMs - Date.now());
    this.timer = setTimeout(() => this.fire(), wait);
  }

  idle(): Promise<void> {
    if (!this.timer) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  private fire(): void {
    this.timer = undefined;
    const more = this.send();
    // Timed from the end of a send, so two batches are always built at least intervalMs apart.
    this.lastAt = Date.now();
    if (more) this.poke();
    else for (const resolve of this.waiting.splice(0)) resolve();
  }
}
