// Derived views of the state, computed on read and never stored.
import type { ChunkRowState, ChunkUpdate } from '../../shared/ipc/contract.ts';
import type { AppState, IngestMeta } from './types.ts';

export const selectDirty = (s: AppState): boolean => s.config.draft !== s.config.saved;

export interface IngestFigures {
  percent: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  running: boolean;
}

export function ingestFigures(meta: IngestMeta | null): IngestFigures {
  if (!meta) return { percent: 0, bytesPerSecond: 0, etaSeconds: null, running: false };
  const running = meta.phase === 'starting' || meta.phase === 'running';
  const { chunks, bytes } = meta.totals;
  const byChunks = chunks > 0 ? meta.chunksDone / chunks : 0;
  // Skipped chunks (already on their nodes) count towards completion, but not towards the speed.
  const covered = meta.bytesDone + meta.bytesSkipped;
  const byBytes = bytes > 0 ? Math.min(1, covered / bytes) : 0;
  let percent = Math.max(byChunks, running ? Math.min(byBytes, 0.99) : byBytes) * 100;
  if (meta.phase === 'finished' && meta.chunksFailed === 0) percent = 100;
  percent = Math.min(100, percent);
  const seconds = meta.elapsedMs / 1000;
  const bytesPerSecond = seconds > 0 ? meta.bytesDone / seconds : 0;
  const remaining = Math.max(0, bytes - covered);
  const etaSeconds = running && bytesPerSecond > 0 ? remaining / bytesPerSecond : null;
  return { percent, bytesPerSecond, etaSeconds, running };
}

export function emptyStates(): Record<ChunkRowState, number> {
  return { queued: 0, reading: 0, sending: 0, verified: 0, retried: 0, failed: 0, moved: 0, skipped: 0, cancelled: 0 };
}

export function countStates(chunks: readonly ({ state: ChunkRowState } | undefined)[]): Record<ChunkRowState, number> {
  const out = emptyStates();
  for (const c of chunks) if (c) out[c.state] += 1;
  return out;
}

/** One node's share of the run on screen: chunks placed on it, done, in flight, failed, and bytes done. */
export interface NodeRunProgress {
  placed: number;
  done: number;
  inFlight: number;
  failed: number;
  bytesDone: number;
}

const DONE: ReadonlySet<ChunkRowState> = new Set(['verified', 'skipped', 'moved']);
const IN_FLIGHT: ReadonlySet<ChunkRowState> = new Set(['reading', 'sending', 'retried']);

/** Per node, from the chunk rows (one pass; rows not yet placed on a node are left out). */
export function runProgressByNode(chunks: readonly (ChunkUpdate | undefined)[]): Map<string, NodeRunProgress> {
  const out = new Map<string, NodeRunProgress>();
  for (const c of chunks) {
    if (!c?.nodeId) continue;
    let p = out.get(c.nodeId);
    if (!p) out.set(c.nodeId, (p = { placed: 0, done: 0, inFlight: 0, failed: 0, bytesDone: 0 }));
    p.placed += 1;
    if (DONE.has(c.state)) {
      p.done += 1;
      p.bytesDone += c.size;
    } else if (IN_FLIGHT.has(c.state)) p.inFlight += 1;
    else if (c.state === 'failed') p.failed += 1;
  }
  return out;
}
