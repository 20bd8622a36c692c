// The part of a run's plan in memory: the items (a file's chunks, or a shard) from the oldest not yet summarized
// to the newest taken in, bounded in chunks and files. Items leave from the head, in plan order, once every chunk
// of theirs is done, so files are summarized in listing order while later chunks are still in flight.
import type { ManifestChunk } from '../../shared/types.ts';
import { planChunks } from './chunks.ts';
import type { PlannedChunk } from './chunks.ts';
import type { PlanItem } from './pack/plan.ts';
import { PackedFiles, shardChunks } from './pack/run.ts';
import type { ObjectInfo } from './storage/driver.ts';

export interface PlanEntry {
  /** The plan index of its first chunk. */
  base: number;
  /** The files it covers: one file, or a shard's members. */
  objects: ObjectInfo[];
  chunks: PlannedChunk[];
  /** What each chunk delivered (by its place in `chunks`). */
  delivered: (ManifestChunk | undefined)[];
  /** Chunks not yet done (delivered, skipped or failed). */
  open: number;
  packed?: PackedFiles;
}

export function planEntry(base: number, item: PlanItem, chunkSize: number): PlanEntry {
  const chunks = item.shard ? shardChunks([item.shard]) : planChunks([item.object], chunkSize);
  const objects = item.shard ? item.shard.members.map((m) => m.object) : [item.object];
  return { base, objects, chunks, delivered: new Array<ManifestChunk | undefined>(chunks.length), open: chunks.length, ...(item.shard ? { packed: new PackedFiles(chunks) } : {}) };
}

export class PlanWindow {
  private readonly o: { maxChunks: number; maxFiles: number };
  /** Entries that left are cleared at once (a shard's entry holds thousands of files), the array compacted later. */
  private entries: (PlanEntry | undefined)[] = [];
  /** Index into `entries` of the head (entries before it have left). */
  private head = 0;
  private chunks = 0;
  private files = 0;
  /** The plan index after the newest entry. */
  end = 0;

  constructor(o: { maxChunks: number; maxFiles: number }) {
    this.o = o;
  }

  /** Whether it holds as much as it may (it always takes an item when it holds none). */
  full(): boolean {
    return this.head < this.entries.length && (this.chunks >= this.o.maxChunks || this.files >= this.o.maxFiles);
  }

  add(entry: PlanEntry): void {
    this.entries.push(entry);
    this.chunks += entry.chunks.length;
    this.files += entry.objects.length;
    this.end = entry.base + entry.chunks.length;
  }

  /** The entry holding plan index `i`, while it is in the window. */
  entryOf(i: number): PlanEntry | undefined {
    let low = this.head;
    let high = this.entries.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const entry = this.entries[mid]!;
      if (i < entry.base) high = mid - 1;
      else if (i >= entry.base + entry.chunks.length) low = mid + 1;
      else return entry;
    }
    return undefined;
  }

  /** Chunk `i` is done. */
  finished(i: number): void {
    const entry = this.entryOf(i);
    if (entry) entry.open--;
  }

  /** The entries at the head whose chunks are all done, in plan order; they leave the window. */
  takeDone(): PlanEntry[] {
    const done: PlanEntry[] = [];
    while (this.head < this.entries.length && this.entries[this.head]!.open <= 0) done.push(this.leave());
    this.compact();
    return done;
  }

  /** Every entry still in the window (a run that stopped early), in plan order. */
  takeAll(): PlanEntry[] {
    const all: PlanEntry[] = [];
    while (this.head < this.entries.length) all.push(this.leave());
    this.compact();
    return all;
  }

  private leave(): PlanEntry {
    const entry = this.entries[this.head]!;
    this.entries[this.head++] = undefined;
    this.chunks -= entry.chunks.length;
    this.files -= entry.objects.length;
    return entry;
  }

  /** Drops the entries that left, once they are the larger part of the array. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
