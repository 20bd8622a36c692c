// Derived views of the state, computed on read and never stored.
import type { ChunkRowState } from '../../shared/ipc/contract.ts';
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

/** One node's share of the run: chunks whose latest state names it, done, in flight, failed, and bytes sent to it. */
export interface NodeRunProgress {
  placed: number;
  done: number;
  inFlight: number;
  failed: number;
  bytesDone: number;
}

/** Per node, from the host's counters (every chunk of the run, not only the rows on screen). */
export function runProgressByNode(meta: IngestMeta | null): Map<string, NodeRunProgress> {
  const out = new Map<string, NodeRunProgress>();
  for (const [nodeId, n] of Object.entries(meta?.nodeStates ?? {})) {
    const placed = Object.values(n).reduce((sum, count) => sum + count, 0);
    if (placed === 0) continue;
    out.set(nodeId, {
      placed,
      done: n.verified + n.skipped + n.moved,
      inFlight: n.reading + n.sending + n.retried,
      failed: n.failed,
      bytesDone: meta?.nodeBytes[nodeId] ?? 0,
    });
  }
  return out;
}
