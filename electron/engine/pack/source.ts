// A shard's bytes, streamed: each member's tar headers, its bytes from the store, its padding, then the end of the
// archive. Nothing is built in memory. From a local folder a hashing thread lays the shard out (HashPool.copyFile
// into a folder node's file, or HashPool.packStream); from a cloud store small members are read a few ahead (each
// whole, at most SMALL_MEMBER bytes), larger ones streamed when their turn comes, and the stream passes a range tap.
// Either way every member is hashed on its own from the same read, for the manifest.
import { realpath } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { FileCopyError, HashPool, LocalShard } from '../hash/pool.ts';
import type { Slots } from '../limit.ts';
import type { LocalRange } from '../nodes/node.ts';
import type { ChunkSource } from '../nodes/nodes.ts';
import type { Bucket } from '../storage/bucket.ts';
import type { ObjectInfo } from '../storage/driver.ts';
import type { ShardLayout } from './plan.ts';
import { END_OF_ARCHIVE, memberHeader, padded } from './tar.js';

/** Members up to this size are read whole, ahead of their turn. */
const SMALL_MEMBER = 1024 * 1024;
/** How far ahead small members are read: at most this many, and at most AHEAD_BYTES. */
const AHEAD_MEMBERS = 16;
const AHEAD_BYTES = 4 * 1024 * 1024;
const ZEROS = Buffer.alloc(END_OF_ARCHIVE);

/** A member's bytes: whole (a small member) or as a stream. Failures are the store's errors (StorageError). */
export type MemberReader = (object: ObjectInfo) => Promise<Buffer | Readable>;

/** Reads members from a bucket, each as one checked ranged read (resumed where it broke); small ones whole. */
export function memberReader(bucket: Bucket, options: { slots: Slots; signal?: AbortSignal }): MemberReader {
  const signal = options.signal;
  return async (object) => {
    const stream = await bucket.readInParts(object, { offset: 0, length: object.size }, { partSize: object.size, ahead: 1, slots: options.slots, ...(signal ? { signal } : {}) });
    return object.size <= SMALL_MEMBER ? collect(stream) : stream;
  };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** The shard's bytes in order; member reads start up to AHEAD_MEMBERS ahead of the one being sent. */
export async function* shardBytes(shard: ShardLayout, read: MemberReader): AsyncGenerator<Buffer> {
  const ahead = new ReadAhead(shard.members.map((m) => m.object), read);
  try {
    for (let i = 0; i < shard.members.length; i++) {
      const { object } = shard.members[i]!;
      yield memberHeader(object.key, object.size);
      const data = await ahead.take(i);
      if (Buffer.isBuffer(data)) yield data;
      else for await (const part of data) yield part as Buffer;
      const pad = padded(object.size) - object.size;
      if (pad > 0) yield ZEROS.subarray(0, pad);
    }
    yield ZEROS;
  } finally {
    ahead.drop();
  }
}

/** Reads of small members started ahead of their turn, bounded by count and bytes. */
class ReadAhead {
  private readonly objects: ObjectInfo[];
  private readonly read: MemberReader;
  private readonly started = new Map<number, Promise<Buffer | Readable>>();
  private next = 0;

  constructor(objects: ObjectInfo[], read: MemberReader) {
    this.objects = objects;
    this.read = read;
  }

  take(index: number): Promise<Buffer | Readable> {
    this.fill(index);
    const pending = this.started.get(index) ?? this.read(this.objects[index]!);
    this.started.delete(index);
    this.fill(index + 1);
    return pending;
  }

  /** Starts reads of the small members after `from`, within the window. */
  private fill(from: number): void {
    this.next = Math.max(this.next, from);
    let bytes = 0;
    for (const i of this.started.keys()) bytes += this.objects[i]!.size;
    while (this.next < this.objects.length && this.next < from + AHEAD_MEMBERS) {
      const object = this.objects[this.next]!;
      if (object.size > SMALL_MEMBER || bytes + object.size > AHEAD_BYTES) break;
      const pending = this.read(object);
      pending.catch(() => undefined); // observed when its turn comes
      this.started.set(this.next++, pending);
      bytes += object.size;
    }
  }

  /** The shard stopped: reads started ahead are not awaited (small ones hold no handle once done). */
  drop(): void {
    this.started.clear();
  }
}

export interface ShardSourceOptions {
  bucket: Bucket;
  pool: HashPool;
  algorithm: ChecksumAlgorithm;
  slots: Slots;
  signal?: AbortSignal;
}

/**
 * A shard as a chunk source for Nodes.store, whose members' checksums are known once a transfer has read it. From a
 * local folder the shard is read and laid out on a hashing thread (HashPool.packStream: no call per file on this
 * thread); from a cloud store, members are read a few ahead and the shard passes a range tap.
 */
export class ShardSource implements ChunkSource {
  private readonly shard: ShardLayout;
  private readonly o: ShardSourceOptions;
  private digests: Promise<string[]> | undefined;

  constructor(shard: ShardLayout, options: ShardSourceOptions) {
    this.shard = shard;
    this.o = options;
  }

  /** From a local folder: the shard laid out by a hashing thread straight into a folder node's file. */
  async localRange(): Promise<LocalRange | undefined> {
    const shard = await this.localShard();
    if (!shard) return undefined;
    let resolve!: (digests: string[]) => void;
    this.digests = new Promise<string[]>((res) => (resolve = res));
    return { path: shard.root, offset: 0, length: this.shard.size, pack: { ...shard, onMemberDigests: resolve } };
  }

  async open(): Promise<Readable> {
    const { bucket, pool, algorithm } = this.o;
    const shard = await this.localShard();
    if (!shard) return this.openStreamed();
    const packed = pool.packStream({ algorithm, ...shard, sourceError: (error, key) => bucket.copyError(error, key) });
    this.digests = packed.memberDigests;
    return packed;
  }

  /** A member's failure in a local copy (HashPool.copyFile), as the store's own error for that file. */
  sourceError(error: FileCopyError): unknown {
    return this.o.bucket.copyError(error, error.key ?? this.shard.id);
  }

  /** The shard's members as local files, when the source is a local folder. */
  private async localShard(): Promise<LocalShard | undefined> {
    const { bucket } = this.o;
    if (bucket.info.kind !== 'local' || !bucket.driver.localPath) return undefined;
    const root = await realpath(bucket.info.location).catch((error: unknown) => {
      throw bucket.wrap(error, 'read');
    });
    const members = this.shard.members.map((m) => m.object);
    return { root, keys: members.map((o) => o.key), sizes: members.map((o) => o.size), etags: members.map((o) => o.etag) };
  }

  private openStreamed(): Readable {
    const read = memberReader(this.o.bucket, { slots: this.o.slots, ...(this.o.signal ? { signal: this.o.signal } : {}) });
    const { pool, algorithm } = this.o;
    const bytes = Readable.from(shardBytes(this.shard, read), { objectMode: false, highWaterMark: 1024 * 1024 });
    const tap = pool.rangeTap(algorithm, this.shard.members.map((m) => ({ offset: m.offset, length: m.object.size })));
    bytes.on('error', (error) => tap.destroy(error));
    tap.once('close', () => bytes.destroyed || bytes.destroy());
    bytes.pipe(tap);
    this.digests = tap.rangeDigests;
    return tap;
  }

  /** The members' checksums, in order, from the last read of the shard (after a transfer that stored it). */
  async memberChecksums(): Promise<string[]> {
    const digests = await (this.digests ?? Promise.reject(new Error(`shard ${this.shard.id} was not read`)));
    if (digests.length !== this.shard.members.length) throw new Error(`shard ${this.shard.id}: ${digests.length} member checksums for ${this.shard.members.length} members`);
    return digests;
  }
}
