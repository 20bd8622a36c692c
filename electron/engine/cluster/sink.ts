// Where a worker keeps the chunks it pulls: the agent's own chunk store. Two ways in, one interface:
//   - storeSink: straight into a ChunkStore this process holds (temp file in .incoming, checksum proven, renamed
//     into place by ChunkStore.commit, metadata sidecar last), for a worker that shares the agent's store object;
//   - agentSink: through the agent's HTTP API on loopback (the same verified upload path push mode uses), for a
//     worker that runs beside an agent whose store it cannot reach (RunningAgent does not expose its store).
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { Checksum, ChunkCrc } from '../../../shared/types.ts';
import type { AgentChunkMeta } from '../agent/protocol.ts';
import { chunkPath } from '../agent/protocol.ts';
import type { ChunkStore } from '../agent/store.ts';
import { createChunkHash } from '../hash/chunk-hash.ts';
import { crc32cUpdate } from '../hash/crc32c.js';
import { AgentNode } from '../nodes/agent-node.ts';
import { NodeError } from '../nodes/node.ts';
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
 * Why a write failed, for the worker to decide: `full` and `conflict` will fail the same way again, anything
 * else may not.
 */
export class SinkError extends Error {
  readonly code: 'full' | 'conflict' | 'unauthorized' | 'refused' | 'io';
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
  return {
    id: meta.id,
    file: meta.file,
    index: meta.index,
    offset: meta.offset,
    size: meta.size,
    ...(meta.sourceEtag !== undefined ? { sourceEtag: meta.sourceEtag } : {}),
    checksum: meta.checksum,
    location: chunkPath(meta.id),
  };
}

/** Straight into a ChunkStore: reserve room, write a temp file while hashing, then commit (atomic rename). */
export function storeSink(store: ChunkStore): ChunkSink {
  return {
    async find(chunkId) {
      const meta = store.get(chunkId);
      return meta ? held(meta) : undefined;
    },
    async write(meta, data, algorithm, crc, signal) {
      if (!(await store.reserve(meta.size))) {
        data.destroy();
        throw new SinkError('full', `no room for a ${meta.size}-byte chunk in ${store.dir}`);
      }
      let temp: string;
      try {
        temp = store.tempPath(meta.id);
      } catch (error) {
        store.release(meta.size);
        data.destroy();
        // The store refuses this id for its own sake (ChunkRefusedError): another delivery would meet the same.
        throw (error as Error).name === 'ChunkRefusedError' ? new SinkError('refused', (error as Error).message, { cause: error }) : error;
      }
      try {
        const hasher = new Hasher(algorithm, crc);
        try {
          await pipeline(data, hasher, createWriteStream(temp, { flags: 'wx', flush: store.fsync }), ...(signal ? [{ signal }] : []));
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
        const outcome = await store.commit(record, temp, false);
        if (outcome.status === 'conflict') {
          throw new SinkError('conflict', `${meta.id} is already stored with ${outcome.existing.checksum.algorithm} ${outcome.existing.checksum.hex} for the same source version and range; these bytes hash to ${checksum.hex}`);
        }
        return { chunk: held(outcome.chunk), status: outcome.status === 'exists' ? 'exists' : 'created', ...(crcValue ? { crc: crcValue } : {}) };
      } finally {
        store.release(meta.size);
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
 * Through the agent's HTTP API (PUT with the checksum in a trailer, the agent hashing again as it receives), on
 * loopback with the agent's own token. `token` stays inside the AgentNode's private env.
 */
export function agentSink(options: { url: string; token: string | undefined; timeoutMs?: number }): ChunkSink {
  const env: NodeJS.ProcessEnv = options.token === undefined ? {} : { CLOUD_INGEST_WORKER_TOKEN: options.token };
  const nodes = new Map<ChecksumAlgorithm, AgentNode>();
  const node = (algorithm: ChecksumAlgorithm): AgentNode => {
    let n = nodes.get(algorithm);
    if (!n) {
      n = new AgentNode({
        id: 'self',
        url: options.url,
        env,
        checksumAlgorithm: algorithm,
        maxSockets: 16,
        ...(options.token === undefined ? {} : { tokenEnv: 'CLOUD_INGEST_WORKER_TOKEN' }),
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      });
      nodes.set(algorithm, n);
    }
    return n;
  };
  return {
    async find(chunkId) {
      try {
        const stored = await node('md5').find(chunkId);
        return stored ? { ...stored, location: chunkPath(stored.id) } : undefined;
      } catch (error) {
        throw sinkError(error);
      }
    },
    async write(meta, data, algorithm, crc, signal) {
      const hasher = new Hasher(algorithm, crc);
      let digest!: (c: Checksum) => void;
      let failed!: (e: unknown) => void;
      const checksum = new Promise<Checksum>((resolve, reject) => ((digest = resolve), (failed = reject)));
      hasher.once('end', () => digest(hasher.result().checksum));
      hasher.once('error', failed);
      data.once('error', (error) => hasher.destroy(error));
      data.pipe(hasher);
      try {
        const stored = await node(algorithm).write(meta, hasher, checksum, signal);
        const crcValue = hasher.result().crc;
        return { chunk: { ...stored, location: chunkPath(stored.id) }, status: 'created', ...(crcValue ? { crc: crcValue } : {}) };
      } catch (error) {
        if (!data.destroyed) data.destroy();
        throw error instanceof NodeError ? sinkError(error) : error;
      }
    },
    async space() {
      const probe = await node('md5').probe();
      return { chunkCount: probe.chunkCount ?? 0, bytesHeld: probe.bytesHeld ?? 0, freeBytes: probe.freeBytes ?? 0 };
    },
    async close() {
      for (const n of nodes.values()) await n.close();
    },
  };
}

function sinkError(error: unknown): unknown {
  if (!(error instanceof NodeError)) return error;
  const code = error.code === 'full' || error.code === 'conflict' || error.code === 'unauthorized' || error.code === 'refused' ? error.code : 'io';
  return new SinkError(code, error.message, { cause: error });
}
