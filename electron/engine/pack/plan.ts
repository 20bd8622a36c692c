// Which files are packed into which shards. Files smaller than `packBelow` are packed, in listing order, into
// POSIX tar shards of at most one chunk and MAX_SHARD_MEMBERS files (a sample of several files is never split
// between shards, unless it alone is more than a shard holds: WebDataset groups members by their key without
// extension). The layout is a pure function of the listing, so a resumed run plans the same shards; shards a run
// already delivered are kept exactly as they were while their files are unchanged, and what is left is packed
// around them.
import { createHash } from 'node:crypto';
import type { ObjectInfo } from '../storage/driver.ts';
import { END_OF_ARCHIVE, headerLength, padded } from './tar.js';

export interface ShardMember {
  object: ObjectInfo;
  /** Where the member's data starts in the shard (after its headers). */
  offset: number;
}

export interface ShardLayout {
  /** The shard's chunk id: `shard-<position>-<version prefix>.tar`. */
  id: string;
  size: number;
  /** A digest of the members' keys, sizes and versions: the shard's own version (its chunks' sourceEtag). */
  version: string;
  members: ShardMember[];
}

/** A shard an earlier attempt of the run delivered (from its journal). */
export interface DeliveredShard {
  id: string;
  members: readonly { key: string; size: number; etag?: string }[];
}

/**
 * Files in one shard at most, whatever the chunk size. A shard's members are held in memory from its planning to
 * its summary (the engine's plan window, each hashing thread's part of them, the journal's line for it): a 1 GiB
 * chunk of a million 100-byte files was one shard, and the hashing thread packing it ran out of heap. WebDataset's
 * shards commonly hold a few thousand to ten thousand samples; this is the engine's window of files (16,384).
 */
export const MAX_SHARD_MEMBERS = 16_384;

/** One step of a run's plan, in listing order: a file chunked as before, or a shard of packed files. */
export type PlanItem = { object: ObjectInfo; shard?: undefined } | { shard: ShardLayout; object?: undefined };

/** WebDataset's sample key: the path up to the first dot of its last component (base_plus_ext). */
export function sampleKey(key: string): string {
  return /^((?:.*\/|)[^.]+)\.([^/]*)$/.exec(key)?.[1] ?? key;
}

export function isPackable(object: ObjectInfo, packBelow: number): boolean {
  return object.size > 0 && object.size < packBelow && object.unreadable === undefined;
}

/**
 * Packs a listing as it streams by: `add` each object in listing order, then `finish`; each returns the plan
 * items that became final. Holds only the shard being filled (at most a chunk's worth of members).
 */
export class Packer {
  private readonly o: { chunkSize: number; packBelow: number; kept: ReadonlyMap<string, ShardLayout> };
  private open: ObjectInfo[] = [];
  private openBytes = 0;
  /** The files of one sample (same sample key): not split between shards unless it alone fills one. */
  private group: ObjectInfo[] = [];
  private groupBytes = 0;
  private shards = 0;

  /** `kept`: delivered shards to keep as they are, by member key (keptShards). */
  constructor(o: { chunkSize: number; packBelow: number; kept?: ReadonlyMap<string, ShardLayout> }) {
    this.o = { ...o, kept: o.kept ?? new Map() };
  }

  add(object: ObjectInfo): PlanItem[] {
    if (this.o.packBelow <= 0 || !isPackable(object, this.o.packBelow)) return [{ object }];
    const out: PlanItem[] = [];
    const keptShard = this.o.kept.get(object.key);
    if (keptShard) {
      // A delivered shard stands where its first member is listed; fresh packing restarts after it.
      this.flushGroup(out);
      this.close(out);
      if (keptShard.members[0]!.object.key === object.key) {
        out.push({ shard: keptShard });
        this.shards++;
      }
      return out;
    }
    if (this.group.length > 0 && sampleKey(this.group[0]!.key) !== sampleKey(object.key)) this.flushGroup(out);
    const bytes = memberBytes(object);
    if (this.group.length >= MAX_SHARD_MEMBERS || (this.group.length > 0 && this.groupBytes + bytes + END_OF_ARCHIVE > this.o.chunkSize)) {
      this.flushGroup(out); // a "sample" that alone fills a shard (img.0001.png, img.0002.png, ...): split it
      this.close(out);
    }
    this.group.push(object);
    this.groupBytes += bytes;
    return out;
  }

  finish(): PlanItem[] {
    const out: PlanItem[] = [];
    this.flushGroup(out);
    this.close(out);
    return out;
  }

  private close(out: PlanItem[]): void {
    if (this.open.length > 0) out.push({ shard: layout(this.open, this.shards++) });
    this.open = [];
    this.openBytes = 0;
  }

  private flushGroup(out: PlanItem[]): void {
    const full = this.openBytes + this.groupBytes + END_OF_ARCHIVE > this.o.chunkSize || this.open.length + this.group.length > MAX_SHARD_MEMBERS;
    if (this.open.length > 0 && full) this.close(out);
    for (const object of this.group) this.open.push(object);
    this.openBytes += this.groupBytes;
    this.group = [];
    this.groupBytes = 0;
  }
}

function memberBytes(object: ObjectInfo): number {
  return headerLength(object.key) + padded(object.size);
}

/** The shard of these members, at `position` among the run's shards (or with the id it was given). */
export function layout(objects: ObjectInfo[], position: number, id?: string): ShardLayout {
  const version = shardVersion(objects);
  let at = 0;
  const members = objects.map((object) => {
    at += headerLength(object.key);
    const member = { object, offset: at };
    at += padded(object.size);
    return member;
  });
  return { id: id ?? `shard-${String(position).padStart(6, '0')}-${version.slice(0, 12)}.tar`, size: at + END_OF_ARCHIVE, version, members };
}

export function shardVersion(members: readonly { key: string; size: number; etag?: string }[]): string {
  const hash = createHash('sha256');
  for (const m of members) hash.update(`${m.key}\0${m.size}\0${m.etag ?? ''}\n`);
  return hash.digest('hex').slice(0, 32);
}

/**
 * Delivered shards whose members are all listed with the same size and version, and still packable; by member
 * key. `listed` needs only the listed objects whose keys are members of a delivered shard.
 */
export function keptShards(listed: ReadonlyMap<string, ObjectInfo>, delivered: Iterable<DeliveredShard>, packBelow: number): Map<string, ShardLayout> {
  const byKey = new Map<string, ShardLayout>();
  for (const shard of delivered) {
    const members = shard.members.map((m) => listed.get(m.key));
    const unchanged = members.every((object, i): object is ObjectInfo => {
      const was = shard.members[i]!;
      return object !== undefined && object.size === was.size && object.etag === was.etag && isPackable(object, packBelow) && !byKey.has(object.key);
    });
    if (!unchanged || members.length === 0) continue;
    const kept = layout(members as ObjectInfo[], 0, shard.id);
    for (const member of kept.members) byKey.set(member.object.key, kept);
  }
  return byKey;
}
