// A pool of hashing threads, one per core, so hashing never runs on the thread that moves bytes
// (or on Electron's main thread). Streams are tapped: bytes are copied into reusable blocks that are
// transferred to a worker and handed back, so memory stays at a few blocks per open hasher.
import { availableParallelism } from 'node:os';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { Checksum } from '../../../shared/types.ts';

const BLOCK_BYTES = 512 * 1024;
const BLOCKS_IN_FLIGHT = 3;

type Reply = { op: 'ack'; id: number; buffer: ArrayBuffer } | { op: 'digest'; id: number; hex: string };

interface Slot {
  worker: Worker;
  open: number;
}

interface Pending {
  onAck: (buffer: ArrayBuffer) => void;
  onDigest: (hex: string) => void;
}

export class HashPool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(size: number = Math.max(1, availableParallelism())) {
    const ext = extname(fileURLToPath(import.meta.url));
    const url = new URL(`./worker${ext}`, import.meta.url);
    this.slots = Array.from({ length: size }, () => {
      const worker = new Worker(url);
      worker.on('message', (reply: Reply) => this.onReply(reply));
      worker.unref(); // after the listener, which would ref it again
      return { worker, open: 0 };
    });
  }

  /** A pass-through stream that hashes what flows through it; `digest` resolves after the last byte. */
  tap(algorithm: ChecksumAlgorithm): HashTap {
    return new HashTap(this, algorithm);
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  /** @internal */
  openHasher(algorithm: ChecksumAlgorithm, handlers: Pending): { id: number; slot: Slot } {
    const slot = this.slots.reduce((a, b) => (b.open < a.open ? b : a));
    if (slot.open++ === 0) slot.worker.ref();
    const id = this.nextId++;
    this.pending.set(id, handlers);
    slot.worker.postMessage({ op: 'open', id, algorithm });
    return { id, slot };
  }

  /** @internal */
  release(id: number, slot: Slot): void {
    this.pending.delete(id);
    if (--slot.open === 0) slot.worker.unref();
  }

  private onReply(reply: Reply): void {
    const handlers = this.pending.get(reply.id);
    if (!handlers) return;
    if (reply.op === 'ack') handlers.onAck(reply.buffer);
    else handlers.onDigest(reply.hex);
  }
}

export class HashTap extends Transform {
  readonly algorithm: ChecksumAlgorithm;
  readonly digest: Promise<Checksum>;
  bytes = 0;
  /** Called with the size of each block of bytes that passes through. */
  onBytes: ((bytes: number) => void) | undefined;
  private readonly pool: HashPool;
  private readonly id: number;
  private readonly slot: Slot;
  private readonly free: ArrayBuffer[] = [];
  private inFlight = 0;
  private block: Uint8Array | undefined;
  private filled = 0;
  private waiting: (() => void) | undefined;
  private resolveDigest!: (c: Checksum) => void;
  private rejectDigest!: (e: Error) => void;
  private released = false;
  private flushed = false;

  constructor(pool: HashPool, algorithm: ChecksumAlgorithm) {
    super();
    this.pool = pool;
    this.algorithm = algorithm;
    this.digest = new Promise<Checksum>((resolve, reject) => {
      this.resolveDigest = resolve;
      this.rejectDigest = reject;
    });
    this.digest.catch(() => undefined);
    const opened = pool.openHasher(algorithm, {
      onAck: (buffer) => {
        this.inFlight--;
        this.free.push(buffer);
        const resume = this.waiting;
        this.waiting = undefined;
        resume?.();
      },
      onDigest: (hex) => {
        this.release();
        this.resolveDigest({ algorithm, hex });
      },
    });
    this.id = opened.id;
    this.slot = opened.slot;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    this.push(chunk);
    this.absorb(chunk, 0, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.send();
    this.flushed = true;
    this.slot.worker.postMessage({ op: 'digest', id: this.id });
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // After a clean end the digest is on its way; destroy only cancels an unfinished hash.
    if (!this.released && !(this.flushed && !error)) {
      this.rejectDigest(error ?? new Error('hashing stopped before the end of the stream'));
      this.slot.worker.postMessage({ op: 'digest', id: this.id });
      this.release();
    }
    callback(error);
  }

  /** Copies `chunk` into blocks, sending each full block; waits when too many blocks are in flight. */
  private absorb(chunk: Buffer, from: number, callback: TransformCallback): void {
    let offset = from;
    while (offset < chunk.length) {
      if (!this.block) {
        if (this.inFlight >= BLOCKS_IN_FLIGHT) {
          this.waiting = () => this.absorb(chunk, offset, callback);
          return;
        }
        this.block = new Uint8Array(this.free.pop() ?? new ArrayBuffer(BLOCK_BYTES));
        this.filled = 0;
      }
      const n = Math.min(chunk.length - offset, this.block.length - this.filled);
      this.block.set(chunk.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.block.length) this.send();
    }
    callback();
  }

  private send(): void {
    if (!this.block || this.filled === 0) return;
    const buffer = this.block.buffer as ArrayBuffer;
    this.slot.worker.postMessage({ op: 'update', id: this.id, buffer, length: this.filled }, [buffer]);
    this.inFlight++;
    this.block = undefined;
    this.filled = 0;
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.pool.release(this.id, this.slot);
  }
}

let shared: HashPool | undefined;

/** The process-wide pool; its threads are unref'd while idle so they never keep a CLI alive. */
export function sharedHashPool(): HashPool {
  shared ??= new HashPool();
  return shared;
}
