// Which files are packed into which shards. Files smaller than `packBelow` are packed, in listing order, into
// POSIX tar shards of at most one chunk (a sample of several files is never split between shards: WebDataset
// groups members by their key without extension). The layout is a pure function of the listing, so a resumed
// run plans the same shards; shards a run already delivered are kept exactly as they were while their files are
// unchanged, and what is left is packed around them.
import { createHash } from 'node:crypto';
import type { ObjectInfo } from '../storage/driver.ts';
import { END_OF_ARCHIVE, headerLength, padded } from './tar.ts';

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

export interface PackPlan {
  /** Files chunked as before, in listing order. */
  unpacked: ObjectInfo[];
  shards: ShardLayout[];
}

export interface PackOptions {
  chunkSize: number;
  /** Files of fewer bytes than this (and at least one) are packed; 0 packs nothing. */
  packBelow: number;
  /** Shards already delivered: kept as they are when every member is listed unchanged. */
  delivered?: Iterable<DeliveredShard>;
}

/** WebDataset's sample key: the path up to the first dot of its last component (base_plus_ext). */
export function sampleKey(key: string): string {
  return /^((?:.*\/|)[^.]+)\.([^/]*)$/.exec(key)?.[1] ?? key;
}

export function isPackable(object: ObjectInfo, packBelow: number): boolean {
  return object.size > 0 && object.size < packBelow;
}

export function planPacking(objects: readonly ObjectInfo[], o: PackOptions): PackPlan {
  if (o.packBelow <= 0) return { unpacked: [...objects], shards: [] };
  const kept = keptShards(objects, o);
  const unpacked: ObjectInfo[] = [];
  const shards: ShardLayout[] = [];
  let open: ObjectInfo[] = [];
  let openBytes = 0;
  let group: ObjectInfo[] = [];
  const close = (): void => {
    if (open.length > 0) shards.push(layout(open, shards.length));
    open = [];
    openBytes = 0;
  };
  const flushGroup = (): void => {
    const bytes = group.reduce((sum, m) => sum + memberBytes(m), 0);
    if (open.length > 0 && openBytes + bytes + END_OF_ARCHIVE > o.chunkSize) close();
    open.push(...group);
    openBytes += bytes;
    group = [];
  };
  for (const object of objects) {
    if (!isPackable(object, o.packBelow)) {
      unpacked.push(object);
      continue;
    }
    const keptShard = kept.byKey.get(object.key);
    if (keptShard) {
      // A delivered shard stands where its first member is listed; fresh packing restarts after it.
      flushGroup();
      close();
      if (keptShard.members[0]!.object === object) shards.push(keptShard);
      continue;
    }
    if (group.length > 0 && sampleKey(group[0]!.key) !== sampleKey(object.key)) flushGroup();
    group.push(object);
  }
  flushGroup();
  close();
  return { unpacked, shards };
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

/** Delivered shards whose members are all listed with the same size and version, and still packable; by member key. */
function keptShards(objects: readonly ObjectInfo[], o: PackOptions): { byKey: Map<string, ShardLayout> } {
  const byKey = new Map<string, ShardLayout>();
  if (!o.delivered) return { byKey };
  const listed = new Map(objects.map((object) => [object.key, object] as const));
  for (const shard of o.delivered) {
    const members = shard.members.map((m) => listed.get(m.key));
    const unchanged = members.every((object, i): object is ObjectInfo => {
      const was = shard.members[i]!;
      return object !== undefined && object.size === was.size && object.etag === was.etag && isPackable(object, o.packBelow) && !byKey.has(object.key);
    });
    if (!unchanged || members.length === 0) continue;
    const kept = layout(members as ObjectInfo[], 0, shard.id);
    for (const member of kept.members) byKey.set(member.object.key, kept);
  }
  return { byKey };
}
