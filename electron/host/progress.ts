// Folds the engine's ingest events into progress batches for the app. However many chunks move, the host sends
// at most one batch per interval (default 100 ms, ~10 a second): counters are absolute and exact for every chunk;
// chunk rows are those of the chunk view, a bounded window on the run (RowWindow: in flight, latest finished, first
// failed), each row's latest state since the previous batch, at most MAX_ROWS_PER_BATCH of them, and the rows that
// left the view. Nothing here grows with the run but the ledger's few bytes per chunk (ChunkLedger), freed when the
// run ends; a run of a million chunks sends no more rows, and keeps no more, than one of ten thousand.
import { LOG_LINES_KEPT } from '../../shared/ipc/contract.ts';
import type { ChunkRowState, ChunkUpdate, IngestPhase, IngestProgress } from '../../shared/ipc/contract.ts';
import type { IngestEvent, NodeStatus } from '../../shared/types.ts';
import { ChunkLedger } from './chunk-ledger.ts';
import { RowWindow } from './row-window.ts';
import type { RowLimits } from './row-window.ts';

const MAX_LOGS_PER_BATCH = 50;
/** ~45 KB of JSON: a flood of changes reaches the renderer over several batches, not in one 280 KB message. */
export const MAX_ROWS_PER_BATCH = 300;

const IN_FLIGHT: ReadonlySet<ChunkRowState> = new Set(['queued', 'reading', 'sending', 'retried']);

type LogLine = IngestProgress['logs'][number];

function isDone(state: ChunkRowState | undefined): boolean {
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
  private filesDone = 0;
  private filesFailed = 0;
  private readonly nodeBytes = new Map<string, number>();
  private readonly nodeChunks = new Map<string, number>();
  private readonly nodeStates = new Map<string, Record<ChunkRowState, number>>();
  private readonly nodes = new Map<string, NodeStatus>();
  private readonly ledger = new ChunkLedger();
  /**
   * Chunks seen in an event. The engine says a chunk is queued when it plans the window of the run that holds it:
   * until then a chunk of the run's total is queued all the same, and a run stopped before is cancelled.
   */
  private seen = 0;
  private unseenCancelled = false;
  private readonly window: RowWindow;
  private readonly states = emptyStateCounts();
  /** Lines since the last batch (the latest MAX_LOGS_PER_BATCH), and how many before them were left out. */
  private logs: LogLine[] = [];
  private logsDropped = 0;
  /** The latest lines sent, for a snapshot, and how many were sent or left out before them. */
  private readonly sentLogs: LogLine[] = [];
  private logsBeforeSent = 0;
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

  /** `chunkSize` gives each chunk's offset (chunk i starts at i × chunkSize); `rows` bounds the chunk view. */
  constructor(runId: string, options: { chunkSize?: number; resumed?: boolean; rows?: RowLimits } = {}) {
    this.runId = runId;
    this.chunkSize = options.chunkSize ?? 0;
    this.resumed = options.resumed ?? false;
    this.window = new RowWindow(options.rows);
  }

  apply(e: IngestEvent): void {
    this.changed = true;
    switch (e.type) {
      case 'run-started':
        this.phase = 'running';
        this.totals = { files: e.files, chunks: e.chunks, bytes: e.bytes };
        for (const n of e.nodes) this.nodes.set(n.id, n);
        break;
      case 'listed':
        // Delivery runs while the store is listed: the totals grow until the listing is done.
        this.totals = { files: e.files, chunks: e.chunks, bytes: e.bytes };
        break;
      case 'chunk':
        this.onChunk(e);
        break;
      case 'bytes':
        this.bytesDone += e.bytes;
        this.nodeBytes.set(e.nodeId, (this.nodeBytes.get(e.nodeId) ?? 0) + e.bytes);
        break;
      case 'node':
        this.nodes.set(e.status.id, e.status);
        break;
      case 'file':
        if (e.status === 'failed') {
          this.filesFailed += 1;
          this.pushLog('error', `${e.key}: ${e.error ?? 'failed'}`);
        } else this.filesDone += 1;
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
        this.ledger.clear();
        break;
    }
  }

  /** The run ended without a run-finished event (it threw before or during the run). */
  fail(message: string, cancelled: boolean): void {
    this.changed = true;
    if (this.ended) return;
    this.phase = cancelled ? 'cancelled' : 'failed';
    this.error = message;
    this.endedAt = Date.now();
    this.pushLog('error', message);
    this.stopInFlight();
    this.ledger.clear();
  }

  private onChunk(e: Extract<IngestEvent, { type: 'chunk' }>): void {
    // The ledger is gone once the run ended: nothing changes a finished run's counters.
    if (this.ended) return;
    if (e.state !== 'queued') this.delivering = true;
    const { seq, known } = this.ledger.enter(e.id);
    if (!known) this.seen += 1;
    const prev = known ? this.ledger.get(seq) : undefined;
    const nodeId = e.nodeId ?? prev?.nodeId;
    const moved = e.state === 'moved' || prev?.moved === true;
    if (e.state === 'retried') this.retries += 1;
    this.chunksDone += Number(isDone(e.state)) - Number(isDone(prev?.state));
    this.chunksFailed += Number(e.state === 'failed') - Number(prev?.state === 'failed');
    if (isDone(e.state) && nodeId !== undefined && this.ledger.countCopy(seq, nodeId)) {
      this.nodeChunks.set(nodeId, (this.nodeChunks.get(nodeId) ?? 0) + 1);
      // Already on the node from an earlier run: it holds these bytes though none moved now.
      if (e.state === 'skipped') this.nodeBytes.set(nodeId, (this.nodeBytes.get(nodeId) ?? 0) + e.size);
    }
    if (e.state === 'skipped' && prev?.state !== 'skipped') this.bytesSkipped += e.size;
    this.count(prev?.state, prev?.nodeId, -1);
    this.count(e.state, nodeId, 1);
    this.ledger.set(seq, { state: e.state, nodeId, moved });
    const row: ChunkUpdate = { seq, id: e.id, file: e.file, index: e.index, offset: e.index * this.chunkSize, size: e.size, state: e.state, attempt: e.attempt };
    if (nodeId !== undefined) row.nodeId = nodeId;
    if (e.error !== undefined) row.error = e.error;
    if (moved) row.moved = true;
    this.window.put(row);
  }

  private count(state: ChunkRowState | undefined, nodeId: string | undefined, by: 1 | -1): void {
    if (state === undefined) return;
    this.states[state] += by;
    if (nodeId === undefined) return;
    let perNode = this.nodeStates.get(nodeId);
    if (!perNode) this.nodeStates.set(nodeId, (perNode = emptyStateCounts()));
    perNode[state] += by;
  }

  /** A stopped run delivers nothing more: chunks still waiting or in flight are shown as cancelled, not sending. */
  private stopInFlight(): void {
    this.states.cancelled += this.unseen;
    this.unseenCancelled = true;
    this.ledger.forEach((seq, entry) => {
      if (!IN_FLIGHT.has(entry.state)) return;
      this.count(entry.state, entry.nodeId, -1);
      this.count('cancelled', entry.nodeId, 1);
      this.ledger.set(seq, { ...entry, state: 'cancelled' });
    });
    for (const row of this.window.inGroup('inFlight')) {
      if (IN_FLIGHT.has(row.state)) this.window.put({ ...row, state: 'cancelled' });
    }
  }

  /** Chunks of the run no event has named yet: queued, or cancelled once the run stopped. */
  private get unseen(): number {
    return this.unseenCancelled ? 0 : Math.max(0, this.totals.chunks - this.seen);
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
    const { rows, dropped } = this.window.take(maxRows);
    this.batch += 1;
    const out = { ...this.build(rows, false), droppedRows: dropped, logs: this.logs, logsDropped: this.logsDropped };
    this.keepSentLogs();
    this.changed = this.window.pending;
    return out;
  }

  /** The whole chunk view and the latest log lines, for a renderer that (re)subscribes mid-run. Does not consume pending deltas. */
  snapshot(): IngestProgress {
    return { ...this.build(this.window.all(), true), droppedRows: [], logs: [...this.sentLogs], logsDropped: this.logsBeforeSent };
  }

  private build(chunks: ChunkUpdate[], full: boolean): Omit<IngestProgress, 'droppedRows' | 'logs' | 'logsDropped'> {
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
      states: { ...this.states, queued: this.states.queued + this.unseen },
      retries: this.retries,
      filesDone: this.filesDone,
      filesFailed: this.filesFailed,
      nodeBytes: Object.fromEntries(this.nodeBytes),
      nodeChunks: Object.fromEntries(this.nodeChunks),
      nodeStates: Object.fromEntries([...this.nodeStates].map(([id, counts]) => [id, { ...counts }])),
      nodes: [...this.nodes.values()],
      chunks,
      ...(this.manifestPath !== undefined ? { manifestPath: this.manifestPath } : {}),
      ...(this.status !== undefined ? { status: this.status } : {}),
      ...(this.resumed ? { resumed: true } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }

  private pushLog(level: LogLine['level'], message: string): void {
    this.logs.push({ level, message });
    if (this.logs.length > MAX_LOGS_PER_BATCH) {
      this.logs.shift();
      this.logsDropped += 1;
    }
  }

  /** The batch's lines join the latest ones sent (a snapshot's), the oldest of those counted as dropped. */
  private keepSentLogs(): void {
    this.logsBeforeSent += this.logsDropped;
    this.sentLogs.push(...this.logs);
    const over = this.sentLogs.length - LOG_LINES_KEPT;
    if (over > 0) {
      this.sentLogs.splice(0, over);
      this.logsBeforeSent += over;
    }
    this.logs = [];
    this.logsDropped = 0;
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
