// Where a worker keeps the chunks it pulls: straight in its agent's own chunk store (the agent process hands its
// ChunkStore to the worker it runs), through the same steps as the agent's HTTP upload: temp file in .incoming,
// quota charged as bytes arrive, checksum taken on the way, renamed into place by ChunkStore.commit, metadata last.
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { Checksum, ChunkCrc } from '../../../shared/types.ts';
import type { AgentChunkMeta } from '../agent/protocol.ts';
import { heldChunk } from '../agent/protocol.ts';
import type { AgentLogger } from '../agent/log.ts';
import { silentLogger } from '../agent/log.ts';
import { ChunkRefusedError } from '../agent/store.ts';
import type { ChunkStore } from '../agent/store.ts';
import { createChunkHash } from '../hash/chunk-hash.ts';
import { crc32cUpdate } from '../hash/crc32c.js';
import type { ChunkMeta } from '../nodes/node.ts';

export interface HeldChunk extends ChunkMeta {
  checksum: Checksum;
  /** Where the agent serves it: `/v1/chunks/<id>`, as push mode records agent copies. */
  location: string;
}

export interface SinkWrite {
  chunk: HeldChunk;
  crc?: ChunkCrc;
  /** created: written now; exists: an identical copy was there already (nothing replaced). */
  status: 'created' | 'exists';
}

/**
 * Why a write failed, for the worker to decide: `full`, `conflict` and `refused` will fail the same way again,
 * `io` may not.
 */
export class SinkError extends Error {
  readonly code: 'full' | 'conflict' | 'refused' | 'io';
  constructor(code: SinkError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinkError';
    this.code = code;
  }
}

export interface ChunkSink {
  /** The stored chunk with this id, if the agent holds a complete copy. */
  find(chunkId: string): Promise<HeldChunk | undefined>;
  /** Streams `data` (exactly meta.size bytes) into the store, hashing it on the way; kept only once complete. */
  write(meta: ChunkMeta, data: Readable, algorithm: ChecksumAlgorithm, crc?: ChunkCrc['kind'], signal?: AbortSignal): Promise<SinkWrite>;
  /** What the agent holds and has room for, for heartbeats. */
  space(): Promise<{ chunkCount: number; bytesHeld: number; freeBytes: number }>;
  close(): Promise<void>;
}

/** Hashes (and optionally CRCs) the bytes passing through and counts them. */
export class Hasher extends Transform {
  bytes = 0;
  private readonly hash;
  private readonly crcKind: ChunkCrc['kind'] | undefined;
  private crcValue = 0;
  private readonly algorithm: ChecksumAlgorithm;
  private done: { checksum: Checksum; crc?: ChunkCrc } | undefined;

  constructor(algorithm: ChecksumAlgorithm, crc?: ChunkCrc['kind']) {
    super({ highWaterMark: 1 });
    this.algorithm = algorithm;
    this.hash = createChunkHash(algorithm);
    this.crcKind = crc;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    if (this.crcKind === 'crc32c') this.crcValue = crc32cUpdate(this.crcValue, chunk);
    else if (this.crcKind === 'crc32') this.crcValue = crc32(chunk, this.crcValue);
    callback(null, chunk);
  }

  /** Once the stream has ended. */
  result(): { checksum: Checksum; crc?: ChunkCrc } {
    if (!this.done) {
      const checksum = { algorithm: this.algorithm, hex: this.hash.digest('hex') };
      this.done = this.crcKind ? { checksum, crc: { kind: this.crcKind, value: this.crcValue >>> 0 } } : { checksum };
    }
    return this.done;
  }
}

function held(meta: AgentChunkMeta): HeldChunk {
  return heldChunk(meta);
}

/**
 * Straight into the agent's ChunkStore, as its HTTP upload stores: the id checked, the room checked (nothing set
 * aside), the quota charged as bytes arrive, a temp file written while hashing, then commit (atomic rename,
 * metadata last). A write that runs past the quota is refused then and leaves nothing behind.
 */
export function storeSink(store: ChunkStore, options: { maxChunkBytes?: number; log?: AgentLogger } = {}): ChunkSink {
  const log = options.log ?? silentLogger;
  return {
    async find(chunkId) {
      const meta = store.get(chunkId);
      return meta ? held(meta) : undefined;
    },
    async write(meta, data, algorithm, crc, signal) {
      const began = performance.now();
      let temp: string;
      try {
        if (options.maxChunkBytes !== undefined && meta.size > options.maxChunkBytes) {
          throw new SinkError('refused', `${meta.id} is ${meta.size} bytes; this agent accepts chunks of at most ${options.maxChunkBytes} (--max-chunk-bytes)`);
        }
        temp = await tempPathFor(store, meta.id, meta.size);
        if (!(await store.admits(meta.size))) {
          const { freeBytes } = await store.space();
          throw new SinkError('full', `no room for a ${meta.size}-byte chunk in ${store.dir}: ${freeBytes} bytes free${store.maxBytes !== undefined ? ` under the ${store.maxBytes}-byte quota (--max-bytes)` : ' on disk'}`);
        }
      } catch (error) {
        data.destroy();
        throw error;
      }
      const meter = new QuotaMeter(store, meta);
      try {
        const hasher = new Hasher(algorithm, crc);
        try {
          await pipeline(data, meter, hasher, createWriteStream(temp, { flags: 'wx', flush: store.fsync }), ...(signal ? [{ signal }] : []));
        } catch (error) {
          await unlink(temp).catch(() => undefined);
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOSPC' || code === 'EDQUOT') {
            store.noteRefused(meta.size);
            throw new SinkError('full', `the disk of ${store.dir} is full (${code})`, { cause: error });
          }
          throw error;
        }
        if (hasher.bytes !== meta.size) {
          await unlink(temp).catch(() => undefined);
          throw new SinkError('io', `read ${hasher.bytes} bytes for ${meta.id}, expected ${meta.size}`);
        }
        const { checksum, crc: crcValue } = hasher.result();
        const record: AgentChunkMeta = { ...meta, checksum, storedAt: new Date().toISOString() };
        const outcome = await commit(store, record, temp);
        if (outcome.status === 'conflict') {
          throw new SinkError('conflict', `${meta.id} is already stored with ${outcome.existing.checksum.algorithm} ${outcome.existing.checksum.hex} for the same source version and range; these bytes hash to ${checksum.hex}`);
        }
        log.log('info', 'chunk stored', { id: meta.id, status: outcome.status, bytes: meta.size, ms: Math.round(performance.now() - began), via: 'pull' });
        return { chunk: held(outcome.chunk), status: outcome.status === 'exists' ? 'exists' : 'created', ...(crcValue ? { crc: crcValue } : {}) };
      } finally {
        store.uncharge(meter.charged);
      }
    },
    async space() {
      const { freeBytes } = await store.space();
      return { chunkCount: store.chunkCount, bytesHeld: store.bytesHeld, freeBytes };
    },
    async close() {},
  };
}

/**
 * The store refuses some ids for its own sake (ChunkRefusedError): another delivery would meet the same. A temp
 * subfolder that cannot be made on a full disk is the disk being full.
 */
async function tempPathFor(store: ChunkStore, id: string, size: number): Promise<string> {
  try {
    return await store.tempPath(id);
  } catch (error) {
    if (error instanceof ChunkRefusedError) throw new SinkError('refused', error.message, { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error;
    store.noteRefused(size);
    throw new SinkError('full', `the disk of ${store.dir} is full (${code})`, { cause: error });
  }
}

async function commit(store: ChunkStore, record: AgentChunkMeta, temp: string): ReturnType<ChunkStore['commit']> {
  try {
    return await store.commit(record, temp, false);
  } catch (error) {
    if (error instanceof ChunkRefusedError) throw new SinkError('refused', error.message, { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      store.noteRefused(record.size);
      throw new SinkError('full', `the disk of ${store.dir} is full (${code}) while storing the chunk's metadata`, { cause: error });
    }
    throw error;
  }
}

/**
 * Charges the bytes passing through against the store's quota as they arrive (what `charged` holds is the caller's
 * to uncharge), and refuses more bytes than the chunk's size.
 */
class QuotaMeter extends Transform {
  charged = 0;
  private readonly store: ChunkStore;
  private readonly meta: ChunkMeta;

  constructor(store: ChunkStore, meta: ChunkMeta) {
    super();
    this.store = store;
    this.meta = meta;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const arrived = this.charged + chunk.length;
    if (arrived > this.meta.size) {
      callback(new SinkError('io', `the source sent more than the ${this.meta.size} bytes of ${this.meta.id}`));
      return;
    }
    if (!this.store.charge(chunk.length)) {
      this.store.noteRefused(this.meta.size);
      callback(new SinkError('full', `the ${this.store.maxBytes}-byte quota (--max-bytes) of ${this.store.dir} filled up while ${this.meta.id} arrived (${this.charged} of ${this.meta.size} bytes); nothing kept`));
      return;
    }
    this.charged = arrived;
    callback(null, chunk);
  }
}
