// How a progress batch changes the ingest slice's rows, files and log, each bounded whatever the run's size: the
// rows mirror the host's window (CHUNK_VIEW_LIMITS), files are those of the rows, the log keeps its latest lines.
import { CHUNK_VIEW_MAX_ROWS, LOG_LINES_KEPT } from '../../shared/ipc/contract.ts';
import type { ChunkUpdate, IngestProgress } from '../../shared/ipc/contract.ts';
import type { FileColour, LogEntry } from './types.ts';

function finished(row: ChunkUpdate): boolean {
  return row.state === 'verified' || row.state === 'skipped' || row.state === 'cancelled';
}

/**
 * The rows after a batch, by `seq`: dropped rows out, changed rows in. The host keeps the view within its limits;
 * should rows ever exceed them all the same, the lowest-numbered finished rows go first, then the highest-numbered rows.
 */
export function mergeRows(rows: readonly ChunkUpdate[], updates: readonly ChunkUpdate[], dropped: readonly number[]): ChunkUpdate[] {
  if (updates.length === 0 && dropped.length === 0) return rows as ChunkUpdate[];
  const bySeq = new Map(rows.map((r) => [r.seq, r]));
  for (const seq of dropped) bySeq.delete(seq);
  for (const u of updates) bySeq.set(u.seq, u);
  const merged = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  if (merged.length <= CHUNK_VIEW_MAX_ROWS) return merged;
  const out = new Set(merged.filter(finished).slice(0, merged.length - CHUNK_VIEW_MAX_ROWS));
  return merged.filter((r) => !out.has(r)).slice(0, CHUNK_VIEW_MAX_ROWS);
}

/**
 * The files of `rows`, each keeping its place from `known` and a new file taking the next place after the latest,
 * in the order their rows are listed. Unchanged rows keep the same list (and so the picture's colours).
 */
export function fileColours(known: readonly FileColour[], rows: readonly ChunkUpdate[]): FileColour[] {
  const present = new Set(rows.map((r) => r.file));
  const kept = known.filter((f) => present.has(f.name));
  const seen = new Set(kept.map((f) => f.name));
  let next = (kept.at(-1)?.order ?? -1) + 1;
  const added: FileColour[] = [];
  for (const r of rows) {
    if (seen.has(r.file)) continue;
    seen.add(r.file);
    added.push({ name: r.file, order: next++ });
  }
  if (added.length === 0 && kept.length === known.length) return known as FileColour[];
  return [...kept, ...added];
}

/**
 * The log after a batch: its lines appended after a mark for the lines the host left out before them, then the
 * oldest lines beyond LOG_LINES_KEPT folded into one mark at the top. Marks next to each other are one mark.
 */
export function appendLogs(kept: readonly LogEntry[], batch: Pick<IngestProgress, 'logs' | 'logsDropped'>): LogEntry[] {
  if (batch.logs.length === 0 && batch.logsDropped === 0) return kept as LogEntry[];
  const out: LogEntry[] = [...kept];
  const mark = (count: number): void => {
    const last = out.at(-1);
    if (last?.level === 'dropped') out[out.length - 1] = { level: 'dropped', count: last.count + count };
    else out.push({ level: 'dropped', count });
  };
  if (batch.logsDropped > 0) mark(batch.logsDropped);
  out.push(...batch.logs);
  let lines = out.reduce((n, e) => n + Number(e.level !== 'dropped'), 0);
  if (lines <= LOG_LINES_KEPT) return out;
  let dropped = 0;
  let cut = 0;
  while (lines > LOG_LINES_KEPT || out[cut]?.level === 'dropped') {
    const entry = out[cut++]!;
    if (entry.level === 'dropped') dropped += entry.count;
    else {
      dropped += 1;
      lines -= 1;
    }
  }
  return [{ level: 'dropped', count: dropped }, ...out.slice(cut)];
}

/** Lines the log has left out in all (its marks). */
export function droppedLines(logs: readonly LogEntry[]): number {
  return logs.reduce((n, e) => n + (e.level === 'dropped' ? e.count : 0), 0);
}
