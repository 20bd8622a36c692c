// What an ingest run keeps of its plan, its delivered chunks and its files while it runs: on disk, in a work
// folder beside the run's journal, with a few pages of its columns in memory (where each chunk's record is, which
// nodes hold it). So a run of a million files holds about as much memory as a run of ten thousand.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Positions } from '../../shared/positions.ts';
import type { ManifestChunk, ManifestFile, PackedMember } from '../../shared/types.ts';
import type { PlannedChunk } from './chunks.ts';
import { layout } from './pack/plan.ts';
import type { PlanItem } from './pack/plan.ts';
import { shardChunks } from './pack/run.ts';
import { RawJson } from './manifest.ts';
import { ManifestTotals } from './run-summary.ts';
import { NumberColumn, RecordFile } from './spill.ts';
import type { ObjectInfo } from './storage/driver.ts';

/**
 * A delivered chunk is kept as two lines: first its manifest entry (a shard's without its members), written into the
 * manifest as it is, unparsed; then what sends it again: a shard's members, or the source file of any other chunk.
 */
type DeliveredLine = ManifestChunk | PackedMember[] | ObjectInfo;

/** Copies are kept as a bit per node while nodes fit in a double's 52 exact bits; beyond, records are read. */
const MASK_BITS = 52;

export class RunSpill {
  readonly dir: string;
  /** The plan in listing order, written while listing, read back a window at a time. */
  readonly items: RecordFile<PlanItem>;
  private readonly delivered: RecordFile<DeliveredLine>;
  private readonly files: RecordFile<ManifestFile>;
  /** Per plan index: the offset of its latest delivered record, or -1. */
  private readonly at: NumberColumn;
  /** Per plan index: the nodes holding its copies, a bit per node position. */
  private readonly masks: NumberColumn;
  private readonly nodePositions = new Positions();
  private masksExact = true;
  /** The delivered chunks' totals and per-node holdings, each chunk as last recorded. */
  readonly totals = new ManifestTotals();

  private constructor(dir: string) {
    this.dir = dir;
    this.items = new RecordFile(join(dir, 'plan.jsonl'));
    this.delivered = new RecordFile(join(dir, 'delivered.jsonl'));
    this.files = new RecordFile(join(dir, 'files.jsonl'));
    this.at = new NumberColumn(join(dir, 'delivered-at.f64'), -1);
    this.masks = new NumberColumn(join(dir, 'copies.f64'), 0);
  }

  /** A fresh work folder (what a killed run left there is discarded: the journal is the durable record). */
  static async open(dir: string): Promise<RunSpill> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return new RunSpill(dir);
  }

  /** Records chunk `i` as delivered; returns its manifest entry as JSON (a shard's without its members). */
  record(i: number, chunk: ManifestChunk, planned: PlannedChunk): string {
    const before = this.entryOf(i); // a chunk recorded again: its earlier record no longer counts
    if (before) this.totals.remove(before);
    this.totals.add(chunk);
    const { members, ...entry } = chunk;
    const json = JSON.stringify(entry);
    this.at.set(i, this.delivered.appendJson(json));
    this.delivered.append(members ?? planned.object);
    let mask = 0;
    for (const copy of chunk.copies) {
      const position = this.nodePositions.of(copy.nodeId);
      if (position < MASK_BITS) mask += 2 ** position;
      else this.masksExact = false;
    }
    this.masks.set(i, mask);
    return json;
  }

  chunk(i: number): ManifestChunk | undefined {
    return this.recordOf(i)?.chunk;
  }

  /** The planned chunk behind delivered index `i`, rebuilt from its record (for sending it again). */
  plannedChunk(i: number): PlannedChunk | undefined {
    const record = this.recordOf(i);
    if (!record) return undefined;
    const { chunk, object } = record;
    if (object) return { id: chunk.id, object, index: chunk.index, offset: chunk.offset, size: chunk.size };
    const members = chunk.members ?? [];
    const shard = layout(members.map((m) => ({ key: m.key, size: m.size, ...(m.etag ? { etag: m.etag } : {}) })), 0, chunk.id);
    return shardChunks([shard])[0];
  }

  /** Delivered indices whose copies (node ids) `wanted` accepts, in plan order. */
  *indicesWhere(wanted: (nodeIds: readonly string[]) => boolean): Generator<number> {
    for (let i = 0; i < this.at.size; i++) {
      if (this.at.get(i) < 0) continue;
      if (wanted(this.copiesOf(i))) yield i;
    }
  }

  /** Every delivered chunk in plan order, as last recorded, as its manifest entry's JSON (a shard's without its members). */
  *manifestEntries(): Generator<RawJson> {
    for (let i = 0; i < this.at.size; i++) {
      const offset = this.at.get(i);
      if (offset >= 0) yield new RawJson(this.delivered.textAt(offset).text);
    }
  }

  addFile(file: ManifestFile): void {
    this.files.append(file);
  }

  *fileEntries(): Generator<ManifestFile> {
    for (const { value } of this.files.scan()) if (value) yield value;
  }

  /** The files' entries as the JSON lines this run wrote (for the manifest: nothing parsed only to be written again). */
  *fileLines(): Generator<RawJson> {
    for (const line of this.files.lines()) yield new RawJson(line);
  }

  close(): void {
    this.items.close();
    this.delivered.close();
    this.files.close();
    this.at.close();
    this.masks.close();
  }

  async remove(): Promise<void> {
    this.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Delivered index `i`'s manifest entry (a shard's without its members). */
  private entryOf(i: number): ManifestChunk | undefined {
    const offset = this.at.get(i);
    return offset < 0 ? undefined : (this.delivered.read(offset) as ManifestChunk | undefined);
  }

  /** Delivered index `i`'s chunk (a shard's with its members) and, for a chunk that is not a shard, its source file. */
  private recordOf(i: number): { chunk: ManifestChunk; object: ObjectInfo | undefined } | undefined {
    const offset = this.at.get(i);
    if (offset < 0) return undefined;
    const { value, next } = this.delivered.readWithNext(offset);
    if (!value) return undefined;
    const chunk = value as ManifestChunk;
    const after = this.delivered.read(next);
    if (Array.isArray(after)) return { chunk: { ...chunk, members: after }, object: undefined };
    return { chunk, object: after as ObjectInfo | undefined };
  }

  private copiesOf(i: number): readonly string[] {
    if (!this.masksExact) return this.chunk(i)?.copies.map((c) => c.nodeId) ?? [];
    const ids: string[] = [];
    let mask = this.masks.get(i);
    for (let position = 0; mask > 0; position++, mask = Math.floor(mask / 2)) if (mask % 2 === 1) ids.push(this.nodePositions.idAt(position)!);
    return ids;
  }
}
