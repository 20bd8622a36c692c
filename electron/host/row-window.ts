// The rows of the app's chunk view, bounded whatever the run's size: every chunk in flight, the latest finished ones
// and the first failed ones (CHUNK_VIEW_LIMITS); queued chunks have no row. It also knows which rows a renderer may
// hold, so a row that leaves the view is named in the next batch and the renderer's copy stays as bounded as this.
import { CHUNK_VIEW_LIMITS } from '../../shared/ipc/contract.ts';
import type { ChunkRowState, ChunkUpdate } from '../../shared/ipc/contract.ts';

export type RowLimits = { readonly [G in keyof typeof CHUNK_VIEW_LIMITS]: number };
type Group = keyof RowLimits;

export function rowGroup(state: ChunkRowState): Group | undefined {
  switch (state) {
    case 'queued':
      return undefined;
    case 'failed':
      return 'failed';
    case 'verified':
    case 'skipped':
    case 'cancelled':
      return 'finished';
    default:
      return 'inFlight';
  }
}

export class RowWindow {
  private readonly limits: RowLimits;
  /** Every row in the view, by `seq`. */
  private readonly rows = new Map<number, ChunkUpdate>();
  /** Each group's rows, oldest first (in flight and finished: when they entered the group; failed: first kept). */
  private readonly groups: Record<Group, Set<number>> = { inFlight: new Set(), finished: new Set(), failed: new Set() };
  /** Rows changed since the last batch, oldest change first. */
  private readonly dirty = new Set<number>();
  /** Rows a renderer may hold (sent in a batch or a snapshot, not dropped since). */
  private readonly sent = new Set<number>();
  /** Rows a renderer may hold that have left the view since the last batch. */
  private readonly gone = new Set<number>();

  constructor(limits: RowLimits = CHUNK_VIEW_LIMITS) {
    this.limits = limits;
  }

  get size(): number {
    return this.rows.size;
  }

  /** Rows changed or dropped since the last batch. */
  get pending(): boolean {
    return this.dirty.size > 0 || this.gone.size > 0;
  }

  get(seq: number): ChunkUpdate | undefined {
    return this.rows.get(seq);
  }

  /** A chunk's new row: kept in its group (making way for it there), or dropped when its group keeps no more. */
  put(row: ChunkUpdate): void {
    const { seq } = row;
    const group = rowGroup(row.state);
    // Failed rows: the first ones are kept; a later failure is counted but not listed.
    const full = group === 'failed' && !this.groups.failed.has(seq) && this.groups.failed.size >= this.limits.failed;
    this.groups.inFlight.delete(seq);
    this.groups.finished.delete(seq);
    this.groups.failed.delete(seq);
    if (group === undefined || full || this.limits[group] === 0) {
      this.remove(seq);
      return;
    }
    const members = this.groups[group];
    members.add(seq);
    this.rows.set(seq, row);
    this.dirty.add(seq);
    this.gone.delete(seq);
    for (const oldest of members) {
      if (members.size <= this.limits[group]) break;
      members.delete(oldest);
      this.remove(oldest);
    }
  }

  /**
   * The next batch's rows: what left the view, then at most `maxRows` changed rows, rows in flight and failed
   * before finished ones (they change most and matter most; under a flood of finished chunks they still go out).
   */
  take(maxRows: number): { rows: ChunkUpdate[]; dropped: number[] } {
    const dropped = [...this.gone];
    for (const seq of dropped) this.sent.delete(seq);
    this.gone.clear();
    const rows: ChunkUpdate[] = [];
    for (const finishedPass of [false, true]) {
      for (const seq of this.dirty) {
        if (rows.length >= maxRows) break;
        const row = this.rows.get(seq)!;
        if ((rowGroup(row.state) === 'finished') !== finishedPass) continue;
        this.dirty.delete(seq);
        this.sent.add(seq);
        rows.push(row);
      }
    }
    return { rows, dropped };
  }

  /** Every row, by `seq`, for a renderer that (re)subscribes: it may hold them from now on. */
  all(): ChunkUpdate[] {
    for (const seq of this.rows.keys()) this.sent.add(seq);
    return [...this.rows.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Every row in a group. */
  inGroup(group: Group): ChunkUpdate[] {
    return [...this.groups[group]].map((seq) => this.rows.get(seq)!);
  }

  private remove(seq: number): void {
    this.rows.delete(seq);
    this.dirty.delete(seq);
    if (this.sent.has(seq)) this.gone.add(seq);
  }
}
