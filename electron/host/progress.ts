// Folds the engine's ingest events into progress batches for the app. However many chunks move, the host sends
// at most one batch per interval (default 100 ms, ~10 a second): counters are absolute, chunk updates carry only
// each chunk's latest state since the previous batch.
import type { ChunkUpdate, IngestPhase, IngestProgress } from '../../shared/ipc/contract.ts';
import type { IngestEvent, NodeStatus } from '../../shared/types.ts';

const MAX_LOGS_PER_BATCH = 50;

function isDone(state: ChunkUpdate['state']): boolean {
  return state === 'verified' || state === 'skipped';
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
  private readonly dirty = new Set<string>();
  /** `chunkId \0 nodeId` of every verified or skipped copy, so replicas count once per node. */
  private readonly verifiedCopies = new Set<string>();
  private logs: IngestProgress['logs'] = [];
  private manifestPath: string | undefined;
  private error: string | undefined;
  private endedAt: number | undefined;
  private changed = true;
  private chunksDone = 0;
  private chunksFailed = 0;

  constructor(runId: string) {
    this.runId = runId;
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
        const prev = this.chunks.get(e.id);
        const row: ChunkUpdate = {
          seq: prev?.seq ?? this.chunks.size,
          id: e.id,
          file: e.file,
          index: e.index,
          size: e.size,
          state: e.state,
          attempt: e.attempt,
          ...(e.nodeId !== undefined ? { nodeId: e.nodeId } : prev?.nodeId !== undefined ? { nodeId: prev.nodeId } : {}),
          ...(e.error !== undefined ? { error: e.error } : {}),
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
        this.chunks.set(e.id, row);
        this.dirty.add(e.id);
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
        this.manifestPath = e.manifestPath;
        this.endedAt = Date.now();
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
  }

  get ended(): boolean {
    return this.phase === 'finished' || this.phase === 'failed' || this.phase === 'cancelled';
  }

  /** The next batch, or undefined when nothing changed since the last one. */
  flush(): IngestProgress | undefined {
    if (!this.changed) return undefined;
    const chunks: ChunkUpdate[] = [];
    for (const id of this.dirty) {
      const row = this.chunks.get(id);
      if (row) chunks.push(row);
    }
    this.dirty.clear();
    const out = this.build(chunks, false);
    this.logs = [];
    this.changed = false;
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
      phase: this.phase,
      batch: this.batch,
      full,
      startedAt: this.startedAt,
      elapsedMs: (this.endedAt ?? Date.now()) - this.startedAt,
      totals: { ...this.totals },
      bytesDone: this.bytesDone,
      bytesSkipped: this.bytesSkipped,
      chunksDone: this.chunksDone,
      chunksFailed: this.chunksFailed,
      retries: this.retries,
      nodeBytes: Object.fromEntries(this.nodeBytes),
      nodeChunks: Object.fromEntries(this.nodeChunks),
      nodes: [...this.nodes.values()],
      chunks,
      logs: full ? [] : this.logs,
      ...(this.manifestPath !== undefined ? { manifestPath: this.manifestPath } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }

  private pushLog(level: 'info' | 'warn' | 'error', message: string): void {
    if (this.logs.length < MAX_LOGS_PER_BATCH) this.logs.push({ level, message });
  }
}
