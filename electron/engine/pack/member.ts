// A packed file read back from its shard: for reassemble (one member's bytes from whichever copy is good) and
// verify (which members of a damaged shard copy are damaged); and a shard rebuilt from the store for repair.
import { Transform, Writable } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { Manifest, ManifestChunk, ManifestFile } from '../../../shared/types.ts';
import type { HashPool } from '../hash/pool.ts';
import { forEachLimited } from '../limit.ts';
import type { NodeTarget } from '../nodes/node.ts';
import type { Bucket } from '../storage/bucket.ts';
import type { ObjectInfo } from '../storage/driver.ts';
import { layout } from './plan.ts';
import type { ShardLayout } from './plan.ts';

/** A chunk read from inside another: a packed file's bytes, `within` bytes into its shard. */
export type PieceChunk = ManifestChunk & { within?: number };

/**
 * A packed file as the one chunk it is rebuilt from: its shard's copies, read from `within`. A message instead
 * when the manifest's entry does not fit its shard, or names none it lists (a damaged or edited manifest).
 */
export function memberChunk(shard: ManifestChunk | undefined, file: ManifestFile, status: Manifest['status']): PieceChunk | string {
  const packed = file.packed!;
  if (!shard) return `${file.key} is packed into shard ${JSON.stringify(packed.shard)}, which the manifest does not list (the run was ${status})`;
  if (!isByteCount(packed.offset) || !isByteCount(file.size) || packed.offset + file.size > shard.size) {
    return `${file.key}: offset ${JSON.stringify(packed.offset)} and size ${JSON.stringify(file.size)} do not fit inside shard ${shard.id} (${shard.size} bytes)`;
  }
  if (typeof file.checksum !== 'string' || !Array.isArray(shard.copies)) return `${file.key} has no checksum, or its shard no list of copies`;
  return { ...shard, file: file.key, offset: 0, size: file.size, checksum: file.checksum, within: packed.offset };
}

function isByteCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A copy's bytes: the whole chunk, or only a packed file's range of its shard. */
export async function readPiece(node: NodeTarget, chunk: PieceChunk, signal?: AbortSignal): Promise<Readable> {
  const stream = await node.read(chunk.id, signal);
  if (chunk.within === undefined) return stream;
  const slice = new Slice(chunk.within, chunk.size);
  stream.on('error', (error) => slice.destroy(error));
  slice.once('close', () => stream.destroyed || stream.destroy());
  return stream.pipe(slice);
}

/** Passes `length` bytes from `start` on, and ends there (the rest of the source is not read). */
class Slice extends Transform {
  private position = 0;
  private readonly start: number;
  private readonly stopAt: number;

  constructor(start: number, length: number) {
    super();
    this.start = start;
    this.stopAt = start + length;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.position >= this.stopAt) return callback();
    const from = Math.max(0, this.start - this.position);
    const to = Math.min(data.length, this.stopAt - this.position);
    this.position += data.length;
    if (to > from) this.push(data.subarray(from, to));
    if (this.position >= this.stopAt) this.push(null);
    callback();
  }
}

/** The keys of the members whose bytes in this copy of the shard do not hash to their manifest checksum. */
export async function damagedMembers(node: NodeTarget, shard: ManifestChunk, members: readonly ManifestFile[], algorithm: ChecksumAlgorithm, pool: HashPool, signal?: AbortSignal): Promise<string[]> {
  const tap = pool.rangeTap(algorithm, members.map((m) => ({ offset: m.packed!.offset, length: m.size })));
  const stream = await node.read(shard.id, signal);
  await pipeline(stream, tap, new Writable({ write: (_c, _e, done) => done() }), signal ? { signal } : {}).catch(() => undefined);
  const digests = await tap.rangeDigests.catch(() => [] as string[]);
  return members.filter((m, i) => digests[i] !== m.checksum).map((m) => m.key);
}

/**
 * A shard as it was packed, rebuilt from the store for repair: its members stat'ed again and checked to be the
 * versions the run packed (a message naming the first that is not), laid out as the run laid them out.
 */
export async function shardFromStore(bucket: Bucket, shard: ManifestChunk, members: readonly ManifestFile[], signal?: AbortSignal): Promise<ShardLayout | string> {
  const objects: ObjectInfo[] = new Array(members.length);
  let changed: string | undefined;
  await forEachLimited(members, 8, async (member, i) => {
    try {
      const object = await bucket.stat(member.key, signal);
      if (object.etag === member.etag && object.size === member.size) objects[i] = object;
      else changed ??= `${member.key} changed at the source since the run (version ${member.etag ?? '?'} → ${object.etag ?? '?'})`;
    } catch (error) {
      changed ??= `${member.key} could not be read: ${error instanceof Error ? error.message : String(error)}`;
    }
  }, () => changed !== undefined);
  if (changed) return changed;
  const rebuilt = layout(objects, 0, shard.id);
  const same = rebuilt.size === shard.size && rebuilt.members.every((m, i) => m.offset === members[i]!.packed!.offset);
  return same ? rebuilt : `the manifest's layout of shard ${shard.id} is not the one its members pack into`;
}
