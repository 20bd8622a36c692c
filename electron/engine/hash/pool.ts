// A pool of hashing threads, one per core, so hashing never runs on the thread that moves bytes
// (or on Electron's main thread). Streams are tapped: bytes are copied into 1 MiB blocks of shared memory
// that each thread's streams take from and give back to one free list, so memory stays at a few blocks per
// stream in flight and nothing is allocated per block. A thread that dies (throws, runs out of memory, is
// terminated) fails only the jobs it held, with HashThreadLost, and a new thread takes its place.
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { Readable, Transform, Writable } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { HeapInfo } from 'node:v8';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { Checksum, ChunkCrc } from '../../../shared/types.ts';
import { crcBase64 } from './crc32c.js';
import { keptCachedPerReader } from './drop-cache.js';
import { END_OF_ARCHIVE, memberLength } from '../pack/tar.js';
import { defaultFlagsWhile } from '../heap-growth.ts';

const BLOCK_BYTES = 1024 * 1024;
/** Shards at least twice this size are packed by every thread at once (HashPool.copyShardInParts). */
const SHARD_PART_MIN_BYTES = 4 * 1024 * 1024;
const BLOCKS_IN_FLIGHT = 2;
/** Threads that die before they start, in a row, after which the pool stops replacing them. */
const MAX_START_FAILURES = 3;
/**
 * A thread whose heap has grown past this is replaced by a fresh one once the pool is idle (renewGrownThreads).
 * A hashing thread keeps ~6 MB live, but its heap grows with the run while garbage waits for the next full
 * collection: ~11 MB after 10,000 small files, ~22 MB after 1,000,000.
 */
const RENEW_HEAP_BYTES = 12 * 1024 * 1024;
/** Fault injection for the fault suite: see HashPool.armFaultKill. */
const FAULT_KILL_ENV = 'CLOUD_INGEST_FAULT_KILL_HASH_THREAD_AFTER_MS';

type Reply =
  | { op: 'ready' }
  | { op: 'ack'; id: number; block: number }
  | { op: 'digest'; id: number; hex: string; crc?: ChunkCrc; ranges?: string[] }
  | { op: 'progress'; id: number; bytes: number }
  | { op: 'copied'; id: number; hex: string; crc?: ChunkCrc; members?: string[]; bytes?: number; renamed?: boolean; indexed?: boolean; continued?: boolean }
  | { op: 'alongDone'; id: number; continued: boolean }
  | { op: 'copiedMany'; id: number; results: (Extract<Reply, { op: 'copied' }> | Extract<Reply, { op: 'copyFailed' }>)[] }
  | { op: 'copyFailed'; id: number; code: string; message: string; side: 'source' | 'target'; key?: string }
  | { op: 'writeFailed'; id: number; code: string; message: string }
  | { op: 'fileHashed'; id: number }
  | { op: 'packBlock'; id: number; block: number; length: number }
  | { op: 'packDone'; id: number; digests: string[] }
  | { op: 'packFailed'; id: number; code: string; message: string; key: string }
  | { op: 'packAborted'; id: number }
  | { op: 'stats'; id: number; values: Float64Array }
  | { op: 'replies'; replies: Reply[] };

/** What a job hears: its thread's replies, or that the thread died before the job was done. */
type Delivery = Reply | { op: 'lost'; id: number; error: HashThreadLost };

export interface FileCopyJob {
  algorithm: ChecksumAlgorithm;
  source: string;
  /**
   * The real path of a folder `source` must lie inside: the hashing thread checks the file it opened (on Linux one
   * readlink of /proc/self/fd), so `source` need not be resolved beforehand. Fails with code EACCES, side 'source'.
   */
  inside?: string;
  offset: number;
  length: number;
  /** The source version (see localEtag); the copy fails if the file is another version before or after. */
  etag?: string;
  target: string;
  /** Write into the existing file `target` at this byte position, its other bytes kept, instead of creating it. */
  into?: number;
  /**
   * Once written and closed, `target` is renamed to this path in the same job, unless something already has that
   * name (then it keeps its own: FileCopied.renamed is false).
   */
  renameTo?: string;
  /** Once renamed: the line to append to a folder node's index, which the thread completes (IndexLine). */
  index?: IndexLine;
  /** A whole-file hash to feed these bytes along (see HashPool.copyFile); not for shards. */
  continues?: SequentialHash;
  /** Instead of one range of `source`: a tar shard laid out from these local files (`source` is not read). */
  pack?: LocalShard;
}

/**
 * A line for a folder node's index (nodes/folder-index.ts) that the hashing thread completes and appends once it
 * has renamed the file: `head` is the line's JSON object without its closing brace, to which the thread adds the
 * checksum (and the CRC) it took. One write, a newline before it, on an append-only descriptor.
 */
export interface IndexLine {
  path: string;
  head: string;
}

/** What a copy on a hashing thread did. */
export interface FileCopied {
  checksum: Checksum;
  /** With FileCopyJob.renameTo: whether the file now has that name (false: the name was taken; it kept its own). */
  renamed: boolean;
  /** With FileCopyJob.index: whether its line was appended (it is when the file was renamed). */
  indexed: boolean;
}

/**
 * A shard to lay out from local files on a hashing thread (HashPool.copyFile, packStream): its members' keys
 * (relative to `root`), sizes and versions; the thread writes each member's tar headers as it reaches it.
 */
export interface LocalShard {
  /** The source folder's real path: every member must resolve inside it. */
  root: string;
  keys: string[];
  sizes: number[];
  etags: (string | undefined)[];
  /** Receives each member's checksum, in order, once the shard is written. */
  onMemberDigests?: (digests: string[]) => void;
}

/** A run of a shard's members [from, to) that starts `at` bytes into it and is `length` bytes long (the last one with the end of the archive). */
interface ShardPart {
  from: number;
  to: number;
  at: number;
  length: number;
  last: boolean;
}

/** The members split into at most `count` runs of about equal bytes, in order, each of at least one member. */
export function shardParts(keys: readonly string[], sizes: readonly number[], count: number): ShardPart[] {
  const lengths = keys.map((key, i) => memberLength(key, sizes[i]!));
  const total = lengths.reduce((a, b) => a + b, 0);
  const parts: ShardPart[] = [];
  let from = 0;
  let at = 0;
  let length = 0;
  lengths.forEach((bytes, i) => {
    length += bytes;
    const enough = at + length >= (total * (parts.length + 1)) / count;
    if ((enough && parts.length < count - 1) || i === lengths.length - 1) {
      parts.push({ from, to: i + 1, at, length, last: i === lengths.length - 1 });
      from = i + 1;
      at += length;
      length = 0;
    }
  });
  const last = parts[parts.length - 1];
  if (last) last.length += END_OF_ARCHIVE;
  return parts;
}

/** A thread's answer that a copy was made, as the caller takes it. */
function fileCopied(reply: Extract<Reply, { op: 'copied' }>, algorithm: ChecksumAlgorithm): FileCopied {
  return { checksum: { algorithm, hex: reply.hex }, renamed: reply.renamed === true, indexed: reply.indexed === true };
}

/** A thread's answer that a copy failed, as the error the caller gets (naming a shard's member, if one failed). */
function copyError(reply: Extract<Reply, { op: 'copyFailed' }>): FileCopyError {
  return new FileCopyError(reply.code, reply.key !== undefined ? `${reply.key}: ${reply.message}` : reply.message, reply.side, reply.key);
}

/** A shard as the hashing thread takes it (its data, no callbacks). */
function shardMessage(shard: LocalShard): Omit<LocalShard, 'onMemberDigests'> {
  return { root: shard.root, keys: shard.keys, sizes: shard.sizes, etags: shard.etags };
}

/** A copy made on a hashing thread failed; `code` is CHANGED, CANCELLED, or an errno code. */
export class FileCopyError extends Error {
  readonly code: string;
  /** Which file failed: the source being read, or the target being written. */
  readonly side: 'source' | 'target';
  /** The member of a shard that failed (FileCopyJob.pack), by its key. */
  readonly key: string | undefined;

  constructor(code: string, message: string, side: 'source' | 'target', key?: string) {
    super(message);
    this.name = 'FileCopyError';
    this.code = code;
    this.side = side;
    this.key = key;
  }
}

/**
 * The hashing thread a job ran on stopped (it threw, ran out of memory or was terminated) before the job was done.
 * Says nothing about the source or the node: retry the job; the pool has already started a new thread.
 */
export class HashThreadLost extends Error {
  readonly code = 'HASH_THREAD_LOST';
  /** False only when the pool was closed or can start no thread: retrying cannot help then. */
  readonly retryable: boolean;

  constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.name = 'HashThreadLost';
    this.retryable = options.retryable ?? true;
  }
}

/** Whether `error`, or an error it wraps (its `cause` chain, as a NodeError's), is a HashThreadLost. */
export function isHashThreadLost(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) if (e instanceof HashThreadLost) return true;
  return false;
}

interface Slot {
  worker: Worker;
  blocks: SharedBlocks;
  cancels: CancelFlags;
  /** Every message to the thread goes through here, to keep their order. */
  mail: ThreadMail;
  /** Ids of the jobs open on this thread. */
  jobs: Set<number>;
  online: boolean;
  /** Why the thread threw, once it has. */
  failure: unknown;
  /** Set once the thread has stopped: a job claimed on it after that fails at once. */
  lost: HashThreadLost | undefined;
  /** Being replaced by a fresh thread (HashPool.renewGrownThreads): new jobs go to the others, and its exit is no loss. */
  retiring?: boolean;
}

/**
 * The messages to one hashing thread, posted together at the end of this turn of the event loop: one post, one
 * wake of the thread and one message of replies for what every stream and job sent it meanwhile. Posted one by one,
 * each small object from a cloud store cost the engine thread three posts (open, bytes, close), ~160 µs of its CPU
 * per object with 8 reads in flight (10,000 objects from s3rver, profiled): most of it waking the other thread.
 */
class ThreadMail {
  private readonly worker: Worker;
  private outbox: object[] = [];

  constructor(worker: Worker) {
    this.worker = worker;
  }

  send(message: object): void {
    if (this.outbox.push(message) === 1) setImmediate(this.flush);
  }

  /**
   * Posts `message` now, after what is waiting (in order). For a full block of a stream: its sender has only
   * BLOCKS_IN_FLIGHT blocks and waits for each one's ack, which a thread answering a batch would hold until the
   * batch's end; batched, a 512 MiB object from s3rver took ~30% longer.
   */
  sendNow(message: object): void {
    this.flush();
    this.worker.postMessage(message);
  }

  private readonly flush = (): void => {
    const messages = this.outbox;
    if (messages.length === 0) return;
    this.outbox = [];
    this.worker.postMessage(messages.length === 1 ? messages[0] : { op: 'batch', messages });
  };
}

/**
 * The 1 MiB blocks bytes travel to one hashing thread in: shared memory, each handed to the thread once and
 * then named by its index, taken and given back through one free list for every stream on that thread. No
 * buffer is transferred or allocated per block, so the receiving thread's heap sees no garbage from hashing.
 */
class SharedBlocks {
  private readonly mail: ThreadMail;
  private readonly views: Uint8Array[] = [];
  private readonly free: number[] = [];

  constructor(mail: ThreadMail) {
    this.mail = mail;
  }

  view(index: number): Uint8Array {
    return this.views[index]!;
  }

  take(): { index: number; view: Uint8Array } {
    const index = this.free.pop() ?? this.create();
    return { index, view: this.views[index]! };
  }

  give(index: number): void {
    this.free.push(index);
  }

  private create(): number {
    const buffer = new SharedArrayBuffer(BLOCK_BYTES);
    const index = this.views.push(new Uint8Array(buffer)) - 1;
    this.mail.send({ op: 'block', index, buffer });
    return index;
  }
}

/**
 * The flags that cancel file jobs on one hashing thread: cells of shared memory the thread checks between blocks,
 * handed to it a page at a time and reused. A job names its cell; no memory is shared or allocated per job (a
 * SharedArrayBuffer per job cost more than the rest of posting it).
 */
class CancelFlags {
  private static readonly PAGE = 1024;
  private readonly mail: ThreadMail;
  private readonly pages: Int32Array[] = [];
  private readonly free: number[] = [];

  constructor(mail: ThreadMail) {
    this.mail = mail;
  }

  take(): number {
    return this.free.pop() ?? this.addPage();
  }

  cancel(cell: number): void {
    Atomics.store(this.pages[Math.floor(cell / CancelFlags.PAGE)]!, cell % CancelFlags.PAGE, 1);
  }

  give(cell: number): void {
    Atomics.store(this.pages[Math.floor(cell / CancelFlags.PAGE)]!, cell % CancelFlags.PAGE, 0);
    this.free.push(cell);
  }

  private addPage(): number {
    const page = new Int32Array(new SharedArrayBuffer(4 * CancelFlags.PAGE));
    const index = this.pages.push(page) - 1;
    this.mail.send({ op: 'cancelPage', index, buffer: page.buffer });
    const first = index * CancelFlags.PAGE;
    for (let cell = first + CancelFlags.PAGE - 1; cell > first; cell--) this.free.push(cell);
    return first;
  }
}

type Pending = (reply: Delivery) => void;

export class HashPool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private readonly workerUrl: URL;
  private nextId = 1;
  private closed = false;
  /** Threads retired (renewGrownThreads) whose fresh replacement starts with the next job (startRetiredThreads). */
  private retired = 0;
  private startFailures = 0;
  private lost = 0;
  private faultTimer: NodeJS.Timeout | undefined;

  private readonly threadOptions: { keepCachedBytes: number; linuxCallsAfter?: number };

  /**
   * `keepCachedBytes`: how much of the local source files each thread reads (and leaves in the page cache) before
   * it has the kernel drop what it reads (see drop-cache.js). By default the threads share an eighth of memory.
   * `linuxCallsAfter`: file operations each thread makes with Node's own calls before it loads the shorter Linux
   * ones (see worker.js wantsLinuxCalls); 0 uses them from the first file.
   */
  constructor(size: number = Math.max(1, availableParallelism()), options: { keepCachedBytes?: number; linuxCallsAfter?: number } = {}) {
    this.threadOptions = { keepCachedBytes: options.keepCachedBytes ?? keptCachedPerReader(size), ...(options.linuxCallsAfter !== undefined ? { linuxCallsAfter: options.linuxCallsAfter } : {}) };
    // From source the worker is worker.js beside this file; bundled (Electron), worker.mjs beside the bundle.
    const bundled = extname(fileURLToPath(import.meta.url)) !== '.ts';
    this.workerUrl = new URL(bundled ? './worker.mjs' : './worker.js', import.meta.url);
    this.slots = Array.from({ length: size }, () => this.startThread());
    this.armFaultKill(process.env[FAULT_KILL_ENV]);
  }

  private startThread(): Slot {
    // Hashing allocates almost nothing on the JS heap (blocks are shared memory). Packing holds each shard's
    // member list (keys, versions, digests) while it streams: 16 MB ran out with ten 64 MiB shards of ~3,500 small
    // files in flight (threads were lost and replaced), 48 MB leaves room; a heap only takes what it uses.
    // Held before the Worker exists: its heap is made, and its built-ins compiled, on its own thread meanwhile.
    let started: () => void = () => undefined;
    defaultFlagsWhile(new Promise<void>((resolve) => (started = resolve)));
    const worker = new Worker(this.workerUrl, { workerData: this.threadOptions, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 48 } });
    const mail = new ThreadMail(worker);
    const slot: Slot = { worker, mail, blocks: new SharedBlocks(mail), cancels: new CancelFlags(mail), jobs: new Set(), online: false, failure: undefined, lost: undefined };
    worker.once('message', started); // its first is 'ready', once its modules are loaded
    worker.once('exit', started);
    worker.on('message', (reply: Reply) => this.onReply(slot, reply));
    worker.once('online', () => {
      slot.online = true;
      this.startFailures = 0;
    });
    // A thread that throws stops: 'exit' always follows, and is where its jobs fail.
    worker.on('error', (error) => (slot.failure ??= error));
    worker.once('exit', (code) => this.onThreadExit(slot, code));
    worker.unref(); // after the listeners: the message listener would ref it again
    return slot;
  }

  /**
   * A thread stopped: put a new thread in its place and fail the jobs it held. (Node has closed the files it
   * opened; the callers remove their temp files.)
   */
  private onThreadExit(slot: Slot, code: number): void {
    const index = this.slots.indexOf(slot);
    const cause = slot.failure ?? new Error(`it was terminated or exited (exit code ${code})`);
    slot.lost = this.closed
      ? new HashThreadLost('the hashing pool was closed before this job finished', { retryable: false })
      : new HashThreadLost(`hashing thread ${index} stopped before this job finished (${errorText(cause)}); retry the job`, { cause });
    if (!this.closed && index >= 0) {
      if (!slot.retiring) this.lost++;
      if (slot.retiring) {
        this.slots.splice(index, 1);
        this.retired++;
      }
      // A thread that never started is replaced a few times only: a worker that cannot load would loop forever.
      else if (slot.online || ++this.startFailures < MAX_START_FAILURES) this.slots[index] = this.startThread();
      else this.slots.splice(index, 1);
    }
    for (const id of [...slot.jobs]) {
      const onReply = this.pending.get(id);
      this.release(id, slot);
      onReply?.({ op: 'lost', id, error: slot.lost });
    }
  }

  /** How many hashing threads the pool has (a retired one counts: its replacement starts with the next job). */
  get size(): number {
    return this.slots.length + this.retired;
  }

  /** Hashing threads started and not stopped. */
  get running(): number {
    return this.slots.length;
  }

  /** Threads lost (and replaced) since the pool started; threads stopped by close() do not count. */
  get lostThreads(): number {
    return this.lost;
  }

  /**
   * Once the pool holds no job (nothing in flight, no hash open), stops each thread whose heap has grown past
   * `limitBytes`, so what a long run grew is given back before the next step (a run's manifest, the app's next run).
   * A fresh thread takes its place with the next job, not at once: starting two while the manifest was written made
   * the very peak this lowers (+14 MB at a million files). Resolves with how many it stopped (none while any job is
   * open; they are not counted as lost).
   */
  async renewGrownThreads(limitBytes: number = RENEW_HEAP_BYTES): Promise<number> {
    if (this.closed || this.pending.size > 0) return 0;
    const online = this.slots.filter((slot) => slot.online);
    const sizes = await Promise.all(online.map((slot) => this.heapSize(slot)));
    let renewed = 0;
    // One at a time, each stopped before its replacement starts: two threads starting while two others still
    // held their heaps made the very peak this is meant to lower (+12 MB at a million files).
    for (const slot of online.filter((_, i) => sizes[i]! > limitBytes)) {
      if (this.closed || this.pending.size > 0) break; // a job came meanwhile: leave the rest as they are
      if (!this.slots.includes(slot)) continue; // lost and replaced meanwhile
      slot.retiring = true;
      slot.worker.ref(); // an idle pool's threads are unref'd: the wait must keep the process up
      await slot.worker.terminate();
      renewed++;
    }
    return renewed;
  }

  /** Bytes `slot`'s heap takes (0 if it cannot say). */
  private async heapSize(slot: Slot): Promise<number> {
    try {
      return (await this.heapStatistics(slot)).total_heap_size;
    } catch {
      return 0;
    }
  }

  /** `slot`'s heap statistics. Its thread is ref'd meanwhile: an idle pool's threads are not, and the answer must keep the process up. */
  private async heapStatistics(slot: Slot): Promise<HeapInfo> {
    slot.worker.ref();
    try {
      return await slot.worker.getHeapStatistics();
    } finally {
      if (slot.jobs.size === 0) slot.worker.unref();
    }
  }

  /** @internal Each thread's V8 heap limit in bytes (its young and old generations), in thread order, once all are up. */
  async heapLimits(): Promise<number[]> {
    return Promise.all(
      this.slots.map(async (slot) => {
        slot.worker.ref(); // an idle pool's threads are unref'd: the wait must keep the process up
        if (!slot.online) await once(slot.worker, 'online');
        return (await this.heapStatistics(slot)).heap_size_limit;
      }),
    );
  }

  /** @internal The threads' ids, in thread order (a replaced thread has a new one). */
  threadIds(): number[] {
    return this.slots.map((slot) => slot.worker.threadId);
  }

  /** Open jobs on each thread, in thread order. */
  jobsPerThread(): number[] {
    return this.slots.map((slot) => slot.jobs.size);
  }

  /**
   * Fault injection, for the fault suite and tests: stops hashing thread `index` (by default the busiest) as a
   * crash would. Resolves, once its jobs have failed and a new thread is starting, with the index stopped, or
   * undefined when no thread is busy.
   */
  async terminateThread(index: number | undefined = this.busiestThread()): Promise<number | undefined> {
    const slot = index === undefined ? undefined : this.slots[index];
    if (!slot) return undefined;
    await slot.worker.terminate();
    return index;
  }

  private busiestThread(): number | undefined {
    const loads = this.jobsPerThread();
    const most = Math.max(0, ...loads);
    return most > 0 ? loads.indexOf(most) : undefined;
  }

  /**
   * CLOUD_INGEST_FAULT_KILL_HASH_THREAD_AFTER_MS=<ms> exists for the fault suite (npm run faults), to kill a
   * hashing thread for real in a CLI run: that long after the pool starts, the first thread found busy is
   * terminated (terminateThread), once, and a line on stderr says so.
   */
  private armFaultKill(value: string | undefined): void {
    if (value === undefined || value === '') return;
    const ms = Number(value);
    if (!(Number.isFinite(ms) && ms > 0)) {
      process.stderr.write(`cloud-ingest: ${FAULT_KILL_ENV}='${value}' is not a positive number of milliseconds; ignored (unset it, or set e.g. ${FAULT_KILL_ENV}=500)\n`);
      return;
    }
    const fire = (): void => {
      const index = this.busiestThread();
      if (this.closed) return;
      if (index === undefined) return void (this.faultTimer = setTimeout(fire, 5).unref());
      const open = this.slots[index]!.jobs.size;
      process.stderr.write(`cloud-ingest: fault injection: terminating hashing thread ${index} (${open} ${open === 1 ? 'job' : 'jobs'} open), as ${FAULT_KILL_ENV}=${value} asks\n`);
      void this.terminateThread(index);
    };
    this.faultTimer = setTimeout(fire, ms).unref();
  }

  /**
   * A pass-through stream that hashes what flows through it; `digest` resolves after the last byte. With
   * `crc`, it also takes a CRC of that kind (HashTap.crc). With `continues`, it feeds the bytes along into that
   * whole-file hash too, which takes them once told the chunk was stored (HashTap.settleAlong).
   */
  tap(algorithm: ChecksumAlgorithm, options: { crc?: ChunkCrc['kind']; continues?: SequentialHash } = {}): HashTap {
    return new HashTap(this, algorithm, { ...(options.crc ? { crc: options.crc } : {}), ...(options.continues ? { continues: options.continues } : {}) });
  }

  /**
   * A pass-through stream that hashes each of `ranges` (in stream order, not overlapping) on its own, and not
   * the whole stream: `rangeDigests` resolves to one hex digest per range after the last byte (a shard's members).
   */
  rangeTap(algorithm: ChecksumAlgorithm, ranges: readonly { offset: number; length: number }[]): HashTap {
    return new HashTap(this, algorithm, { ranges: { algorithm, starts: ranges.map((r) => r.offset), lengths: ranges.map((r) => r.length) } });
  }

  /**
   * A writable that hashes what it is given and writes it to `target` (created or truncated) on a hashing thread;
   * with `crc`, it also takes the bytes' CRC of that kind (see FileSink.crc); with `renameTo`, the closed file is
   * renamed there unless the name is taken (see FileSink.renamed).
   */
  fileSink(algorithm: ChecksumAlgorithm, target: string, options: { crc?: ChunkCrc['kind']; renameTo?: string; index?: IndexLine; continues?: SequentialHash } = {}): FileSink {
    return new FileSink(this, algorithm, target, options);
  }

  /**
   * A tar shard of local files, read and laid out on a hashing thread (synchronous reads, nothing per file on the
   * calling thread), each member hashed on the way: the shard's bytes as a stream, and `memberDigests`.
   */
  packStream(job: PackStreamJob): PackStream {
    return new PackStream(this, job);
  }

  /** @internal Blocks of `slot`'s free list, for a job that has the thread fill them. */
  takeBlocks(slot: Slot, count: number): number[] {
    return Array.from({ length: count }, () => slot.blocks.take().index);
  }

  /** @internal */
  giveBlocks(slot: Slot, indexes: readonly number[]): void {
    for (const index of indexes) slot.blocks.give(index);
  }

  /** Stops every thread; jobs still open fail with a HashThreadLost that is not retryable. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.faultTimer);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  /**
   * Copies a byte range of a local file to `target` while hashing it, entirely on a hashing thread with one
   * reused block: no bytes cross threads and nothing is left for the garbage collector. For local folder
   * sources delivering to local folder nodes. With `continues`, the job runs on that hash's thread and feeds it
   * the bytes in the same pass; it takes them only if the copy succeeds (SequentialHash.inputs counts them).
   */
  copyFile(job: FileCopyJob, options: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {}): Promise<FileCopied> {
    const { pack, continues, ...range } = job;
    this.startRetiredThreads(); // before the threads are counted
    if (pack && this.slots.length > 1 && job.length >= 2 * SHARD_PART_MIN_BYTES && pack.keys.length > 1) return this.copyShardInParts(job, pack, options);
    const along = continues && !pack ? continues : undefined;
    const message = { op: 'copy', ...range, ...(pack ? { pack: shardMessage(pack) } : {}), ...(along ? { continues: along.id } : {}) };
    return this.runFileJob(message, job.algorithm, options.signal, options.onBytes, pack?.onMemberDigests, along);
  }

  /**
   * Copies several whole local files, each as copyFile would (checked, hashed, written, renamed, indexed), in one job
   * on one thread: one message there and one back for all of them. Each file is copied or fails on its own (its
   * FileCopyError in its place); the promise rejects only when the thread is lost. No shards, no whole-file hash
   * carried along. Small files cost the engine thread more to hand over one by one than the thread takes to copy.
   */
  copyFiles(jobs: readonly Omit<FileCopyJob, 'pack' | 'continues'>[], options: { signal?: AbortSignal } = {}): Promise<(FileCopied | FileCopyError)[]> {
    if (jobs.length === 0) return Promise.resolve([]);
    return new Promise<(FileCopied | FileCopyError)[]>((resolve, reject) => {
      const { id, slot, cancel } = this.claimCancellable(options.signal, (reply, end) => {
        if (reply.op !== 'copiedMany' && reply.op !== 'lost') return;
        end();
        if (reply.op === 'lost') return reject(reply.error);
        resolve(reply.results.map((r, i) => (r.op === 'copied' ? fileCopied(r, jobs[i]!.algorithm) : copyError(r))));
      });
      if (!slot.lost) slot.mail.send({ op: 'copyMany', id, cancel, jobs });
    });
  }

  /**
   * A shard from local files packed by every thread at once: each lays out a run of members where they lie in the
   * shard (their offsets follow from names and sizes alone), then one thread reads the shard back to hash it whole,
   * renames it and writes its index line. One thread packing a 64 MiB shard alone took ~0.4 s while the other had
   * nothing left to do (10,000 small files); the read back comes from the page cache. A part that fails stops the
   * others, and its error is the copy's once all of them have stopped (nothing writes the file after that).
   */
  private async copyShardInParts(job: FileCopyJob, pack: LocalShard, options: { signal?: AbortSignal; onBytes?: (bytes: number) => void }): Promise<FileCopied> {
    const outer = options.signal;
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    if (outer?.aborted) stop.abort();
    outer?.addEventListener('abort', onAbort, { once: true });
    try {
      let failure: unknown;
      const digests: string[][] = [];
      const parts = shardParts(pack.keys, pack.sizes, this.slots.length).map((part, k) => {
        const members = { root: pack.root, keys: pack.keys.slice(part.from, part.to), sizes: pack.sizes.slice(part.from, part.to), etags: pack.etags.slice(part.from, part.to) };
        const message = { op: 'copy', algorithm: job.algorithm, source: job.source, offset: 0, length: part.length, target: job.target, pack: { ...members, part: { at: part.at, last: part.last } } };
        return this.runFileJob(message, job.algorithm, stop.signal, options.onBytes, (d) => (digests[k] = d)).catch((error: unknown) => {
          failure ??= error; // the first to fail is the cause; the others stop because of it
          stop.abort();
        });
      });
      await Promise.all(parts);
      if (failure !== undefined) throw failure;
      const seal = { op: 'sealFile', algorithm: job.algorithm, target: job.target, length: job.length, ...(job.renameTo !== undefined ? { renameTo: job.renameTo } : {}), ...(job.index ? { index: job.index } : {}) };
      const sealed = await this.runFileJob(seal, job.algorithm, outer);
      pack.onMemberDigests?.(digests.flat());
      return sealed;
    } finally {
      outer?.removeEventListener('abort', onAbort);
    }
  }

  /** Runs a file job on the least busy thread (or `along`'s); it checks its cancel flag between blocks. */
  private runFileJob(job: Record<string, unknown>, algorithm: ChecksumAlgorithm, signal?: AbortSignal, onBytes?: (bytes: number) => void, onMembers?: (digests: string[]) => void, along?: SequentialHash): Promise<FileCopied> {
    return new Promise<FileCopied>((resolve, reject) => {
      const { id, slot, cancel } = this.claimCancellable(
        signal,
        (reply, end) => {
          if (reply.op === 'progress') return onBytes?.(reply.bytes);
          if (reply.op !== 'copied' && reply.op !== 'copyFailed' && reply.op !== 'lost') return;
          end();
          if (reply.op === 'copied') {
            if (reply.bytes) onBytes?.(reply.bytes);
            if (reply.members) onMembers?.(reply.members);
            if (reply.continued) along?.tookInput();
            resolve(fileCopied(reply, algorithm));
          } else if (reply.op === 'lost') reject(reply.error);
          else reject(copyError(reply));
        },
        along?.thread,
      );
      slot.mail.send({ ...job, id, cancel });
    });
  }

  /**
   * An id (claim) for a job its thread stops when `signal` aborts: the thread checks the job's cancel cell between
   * blocks. `onReply` hears the job's replies and calls `end` once it is over (the cell back, the listener off).
   */
  private claimCancellable(signal: AbortSignal | undefined, onReply: (reply: Delivery, end: () => void) => void, slot?: Slot): { id: number; slot: Slot; cancel: number } {
    const end = (): void => {
      signal?.removeEventListener('abort', onAbort);
      claimed.slot.cancels.give(cancel);
      this.release(claimed.id, claimed.slot);
    };
    const claimed = this.claim((reply) => onReply(reply, end), slot);
    const cancel = claimed.slot.cancels.take();
    const onAbort = (): void => claimed.slot.cancels.cancel(cancel);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    return { ...claimed, cancel };
  }

  /**
   * Stats local files on a hashing thread, following symlinks: for each path in order, its size, mtime and inode if it
   * is a regular file, else undefined (gone, a folder, unreadable). A listing's page is one message here, where a
   * promise per file cost the listing thread ~8 µs each (100,000 files, profiled).
   */
  statFiles(paths: readonly string[]): Promise<(FileStat | undefined)[]> {
    if (paths.length === 0) return Promise.resolve([]);
    if (paths.some((path) => path.includes('\0'))) return Promise.reject(new Error('a path holds a NUL character'));
    return new Promise<(FileStat | undefined)[]>((resolve, reject) => {
      const { id, slot } = this.claim((reply) => {
        if (reply.op !== 'stats' && reply.op !== 'lost') return;
        this.release(id, slot);
        if (reply.op === 'stats') resolve(fileStats(reply.values, paths.length));
        else reject(reply.error);
      });
      if (!slot.lost) slot.mail.send({ op: 'statFiles', id, paths: paths.join('\0') });
    });
  }

  /**
   * The checksum (hex, as a chunk's) and size of a local file, or of `range` of it (fewer bytes where the file
   * ends), read and hashed on a hashing thread: its bytes never reach the calling thread. Fails with a
   * FileCopyError (side 'source').
   */
  checksumOfFile(path: string, algorithm: ChecksumAlgorithm, signal?: AbortSignal, range?: { offset: number; length: number }): Promise<{ hex: string; bytes: number }> {
    return new Promise<{ hex: string; bytes: number }>((resolve, reject) => {
      const { id, slot, cancel } = this.claimCancellable(signal, (reply, end) => {
        if (reply.op !== 'copied' && reply.op !== 'copyFailed' && reply.op !== 'lost') return;
        end();
        if (reply.op === 'copied') resolve({ hex: reply.hex, bytes: reply.bytes ?? 0 });
        else if (reply.op === 'lost') reject(reply.error);
        else reject(copyError(reply));
      });
      if (!slot.lost) slot.mail.send({ op: 'checksumFile', id, cancel, algorithm, path, ...range });
    });
  }

  /** One hash or CRC fed, in order, with local files (read on the hashing thread) and streams. */
  sequence(algorithm: SequenceAlgorithm): SequentialHash {
    const open = isCrcKind(algorithm) ? { op: 'open' as const, crc: algorithm } : { op: 'open' as const, algorithm };
    return new SequentialHash(this, algorithm, (onReply) => this.openHasher(open, onReply));
  }

  /** @internal */
  openHasher(
    open: { op: 'open'; algorithm?: ChecksumAlgorithm; crc?: ChunkCrc['kind']; ranges?: RangeSpec; continues?: number } | { op: 'openFile'; algorithm: ChecksumAlgorithm; target: string; crc?: ChunkCrc['kind']; renameTo?: string; index?: IndexLine; continues?: number },
    onReply: Pending,
    slot?: Slot,
  ): { id: number; slot: Slot } {
    const claimed = this.claim(onReply, slot);
    claimed.slot.mail.send({ ...open, id: claimed.id });
    return claimed;
  }

  /**
   * @internal An id on `slot` (by default the least busy thread) whose replies go to `onReply`. On a thread that
   * has already stopped, `onReply` hears so at once.
   */
  claim(onReply: Pending, slot: Slot = this.leastBusy()): { id: number; slot: Slot } {
    const id = this.nextId++;
    const lost = slot.lost;
    if (lost) {
      queueMicrotask(() => onReply({ op: 'lost', id, error: lost }));
      return { id, slot };
    }
    if (slot.jobs.size === 0) slot.worker.ref();
    slot.jobs.add(id);
    this.pending.set(id, onReply);
    return { id, slot };
  }

  /** Starts the fresh threads that take the retired ones' places. */
  private startRetiredThreads(): void {
    for (; this.retired > 0 && !this.closed; this.retired--) this.slots.push(this.startThread());
  }

  private leastBusy(): Slot {
    if (this.closed) throw new HashThreadLost('the hashing pool is closed', { retryable: false });
    this.startRetiredThreads();
    if (this.slots.length === 0) throw new HashThreadLost(`no hashing thread could start (${MAX_START_FAILURES} in a row stopped before starting)`, { retryable: false });
    let best: Slot | undefined;
    for (const slot of this.slots) if (!slot.retiring && (best === undefined || slot.jobs.size < best.jobs.size)) best = slot;
    // Every thread retiring (a pool of one): a job claimed now fails with a retryable HashThreadLost, as on a lost thread.
    return best ?? this.slots[0]!;
  }

  /** @internal Ends job `id`; again, or for a job its thread's loss has ended, does nothing. */
  release(id: number, slot: Slot): void {
    if (!this.pending.delete(id)) return;
    slot.jobs.delete(id);
    if (slot.jobs.size === 0) slot.worker.unref();
  }

  private onReply(slot: Slot, reply: Reply): void {
    if (reply.op === 'ready') return;
    if (reply.op === 'replies') {
      for (const each of reply.replies) this.onReply(slot, each);
      return;
    }
    // A block comes back to the thread's free list even when its stream is gone.
    if (reply.op === 'ack') slot.blocks.give(reply.block);
    this.pending.get(reply.id)?.(reply);
  }
}

/** A regular file's stat, as a listing needs it. */
export interface FileStat {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** The worker's statFiles answer (size, mtimeMs, inode, is-a-regular-file per path) as stats. */
function fileStats(values: Float64Array, count: number): (FileStat | undefined)[] {
  const fields = values.length / count;
  return Array.from({ length: count }, (_, i) => {
    const at = i * fields;
    return values[at + 3] === 1 ? { size: values[at]!, mtimeMs: values[at + 1]!, ino: values[at + 2]! } : undefined;
  });
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** A digest promise settled later; its rejection is observed here, so a failure nobody awaits is not fatal. */
function laterDigest(): { promise: Promise<Checksum>; resolve: (c: Checksum) => void; reject: (e: Error) => void } {
  let resolve!: (c: Checksum) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<Checksum>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * The sending half of an open hasher: bytes are copied into shared blocks that are handed to the hashing thread
 * and handed back for reuse, with at most BLOCKS_IN_FLIGHT out at a time. Shared by HashTap and FileSink.
 */
class BlockSender {
  private readonly slot: Slot;
  private readonly id: number;
  private inFlight = 0;
  private block: { index: number; view: Uint8Array } | undefined;
  private filled = 0;
  private waiting: (() => void) | undefined;

  constructor(slot: Slot, id: number) {
    this.slot = slot;
    this.id = id;
  }

  /** A block came back from the hashing thread (the pool has already put it back on the free list). */
  onAck(): void {
    this.inFlight--;
    this.resume();
  }

  /** The thread stopped: bytes waiting for a block fail now, and so will any given later. */
  onLost(): void {
    this.resume();
  }

  private resume(): void {
    const resume = this.waiting;
    this.waiting = undefined;
    resume?.();
  }

  /**
   * Copies `data` into blocks, sending each full one; calls `done` once all of it is taken (maybe later), or with
   * the HashThreadLost once the thread has stopped.
   */
  absorb(data: Uint8Array, done: (error?: HashThreadLost) => void, from = 0): void {
    if (this.slot.lost) return done(this.slot.lost);
    let offset = from;
    while (offset < data.length) {
      if (!this.block) {
        if (this.inFlight >= BLOCKS_IN_FLIGHT) {
          this.waiting = () => this.absorb(data, done, offset);
          return;
        }
        this.block = this.slot.blocks.take();
        this.filled = 0;
      }
      const n = Math.min(data.length - offset, BLOCK_BYTES - this.filled);
      this.block.view.set(data.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === BLOCK_BYTES) this.send();
    }
    done();
  }

  /** Sends the partly filled block, if any. */
  send(): void {
    if (!this.block) return;
    if (this.filled === 0 || this.slot.lost) return this.drop();
    const update = { op: 'update', id: this.id, block: this.block.index, length: this.filled };
    if (this.filled === BLOCK_BYTES) this.slot.mail.sendNow(update);
    else this.slot.mail.send(update); // a small object's only block, or a stream's last: with its open and close
    this.inFlight++;
    this.block = undefined;
    this.filled = 0;
  }

  /** Gives back a block taken but never sent (the stream stopped). */
  drop(): void {
    if (this.block) this.slot.blocks.give(this.block.index);
    this.block = undefined;
    this.filled = 0;
  }
}

/** Byte ranges of a stream hashed each on its own (HashPool.rangeTap). */
interface RangeSpec {
  algorithm: ChecksumAlgorithm;
  starts: number[];
  lengths: number[];
}

export class HashTap extends Transform {
  readonly algorithm: ChecksumAlgorithm;
  readonly digest: Promise<Checksum>;
  /** A rangeTap's digests, one per range, once the last byte has passed. */
  readonly rangeDigests: Promise<string[]>;
  /** The CRC of everything that passed, once `digest` has resolved, when the tap was asked for one. */
  crc: ChunkCrc | undefined;
  bytes = 0;
  /** Called with the size of each block of bytes that passes through. */
  onBytes: ((bytes: number) => void) | undefined;
  private readonly pool: HashPool;
  private readonly id: number;
  private readonly slot: Slot;
  private readonly sender: BlockSender;
  private readonly result = laterDigest();
  private released = false;
  private flushed = false;
  private continues: SequentialHash | undefined;

  constructor(pool: HashPool, algorithm: ChecksumAlgorithm, options: { crc?: ChunkCrc['kind']; ranges?: RangeSpec; continues?: SequentialHash }) {
    super();
    this.pool = pool;
    this.algorithm = algorithm;
    this.digest = this.result.promise;
    let rangeHexes: string[] = [];
    this.rangeDigests = this.digest.then(() => rangeHexes);
    this.rangeDigests.catch(() => undefined);
    // A range tap hashes its ranges only: no hash of the whole stream.
    this.continues = options.ranges ? undefined : options.continues;
    const along = this.continues ? { continues: this.continues.id } : {};
    const open = options.ranges ? { op: 'open' as const, ranges: options.ranges } : { op: 'open' as const, algorithm, ...(options.crc ? { crc: options.crc } : {}), ...along };
    const opened = pool.openHasher(open, (reply) => {
      if (reply.op === 'ack') this.sender.onAck();
      else if (reply.op === 'digest') {
        this.crc = reply.crc;
        rangeHexes = reply.ranges ?? [];
        this.release();
        this.result.resolve({ algorithm, hex: reply.hex });
      } else if (reply.op === 'lost') this.lose(reply.error);
    }, this.continues?.thread);
    this.id = opened.id;
    this.slot = opened.slot;
    this.sender = new BlockSender(opened.slot, opened.id);
  }

  /**
   * With `continues`: whether the chunk these bytes were was stored. The whole-file hash takes them only if it was,
   * and this tap passed all of them. Resolves once the hash has settled it (SequentialHash.inputs counts them then,
   * if it took them). Call once, after the end.
   */
  settleAlong(stored: boolean): Promise<void> {
    const continues = this.continues;
    this.continues = undefined;
    if (!continues) return Promise.resolve();
    return continues.settle({ op: 'along', id: this.id, continues: continues.id, keep: stored });
  }

  /** The thread stopped: the digest fails, and so does the stream unless all of it has already passed. */
  private lose(error: HashThreadLost): void {
    this.release();
    this.result.reject(error);
    if (!this.flushed) this.destroy(error);
    this.sender.onLost();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    this.push(chunk);
    this.sender.absorb(chunk, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.sender.send();
    this.flushed = true;
    this.slot.mail.send({ op: 'digest', id: this.id, ...(this.continues ? { along: true } : {}) });
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.sender.drop();
    // After a clean end the digest is on its way; destroy only cancels an unfinished hash.
    if (!this.released && !(this.flushed && !error)) {
      this.result.reject(error ?? new Error('hashing stopped before the end of the stream'));
      this.slot.mail.send({ op: 'digest', id: this.id });
      this.release();
    }
    callback(error);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.pool.release(this.id, this.slot);
  }
}

/**
 * A writable end that hashes what it is given and writes it to a file, both on a hashing thread: the thread
 * that receives the bytes makes one copy into a block and nothing else (no per-buffer write calls, no fs
 * streams). `digest` resolves once the last byte is written and the file is closed. A failed write fails
 * the stream with a FileCopyError (side 'target') as soon as the hashing thread reports it.
 */
export class FileSink extends Writable {
  readonly digest: Promise<Checksum>;
  /** The CRC of everything written, once `digest` has resolved, when the sink was asked for one. */
  crc: ChunkCrc | undefined;
  /** Once `digest` has resolved: whether the file was renamed to the sink's `renameTo` (false: that name was taken). */
  renamed = false;
  /** Once `digest` has resolved: whether the sink's `index` line was appended (it is when the file was renamed). */
  indexed = false;
  onBytes: ((bytes: number) => void) | undefined;
  private readonly pool: HashPool;
  private readonly id: number;
  private readonly slot: Slot;
  private readonly sender: BlockSender;
  private readonly algorithm: ChecksumAlgorithm;
  /** After keepHash(), once `digest` has resolved: a hash that has taken every byte written and can take more. */
  kept: SequentialHash | undefined;
  private keep = false;
  private readonly continues: SequentialHash | undefined;
  private finishing: ((error?: Error | null) => void) | undefined;
  private readonly result = laterDigest();
  private released = false;

  constructor(pool: HashPool, algorithm: ChecksumAlgorithm, target: string, options: { crc?: ChunkCrc['kind']; renameTo?: string; index?: IndexLine; continues?: SequentialHash }) {
    super();
    this.pool = pool;
    this.algorithm = algorithm;
    this.digest = this.result.promise;
    this.continues = options.continues;
    const along = options.continues ? { continues: options.continues.id } : {};
    const rename = options.renameTo !== undefined ? { renameTo: options.renameTo, ...(options.index ? { index: options.index } : {}) } : {};
    const open = { op: 'openFile' as const, algorithm, target, ...(options.crc ? { crc: options.crc } : {}), ...rename, ...along };
    const opened = pool.openHasher(open, (reply) => {
      if (reply.op === 'ack') this.sender.onAck();
      else if (reply.op === 'writeFailed') this.destroy(new FileCopyError(reply.code, reply.message, 'target'));
      else if (reply.op === 'copied' || reply.op === 'copyFailed') this.settle(reply);
      else if (reply.op === 'lost') {
        this.destroy(reply.error);
        this.sender.onLost();
      }
    }, options.continues?.thread);
    this.id = opened.id;
    this.slot = opened.slot;
    this.sender = new BlockSender(opened.slot, opened.id);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.onBytes?.(chunk.length);
    this.sender.absorb(chunk, callback);
  }

  /** Keep the hash going after the end (see `kept`): the thread copies its state before taking the digest. */
  keepHash(): void {
    this.keep = true;
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.sender.send();
    this.finishing = callback;
    // Claimed now, on this thread, so the copy exists there before anything is sent to it.
    const algorithm = this.algorithm;
    const kept = this.keep ? new SequentialHash(this.pool, algorithm, (onReply) => this.pool.claim(onReply, this.slot)) : undefined;
    this.slot.mail.send({ op: 'closeFile', id: this.id, ...(kept ? { keepAs: kept.id } : {}) });
    this.kept = kept;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.sender.drop();
    if (!this.released) {
      this.kept?.discard();
      this.kept = undefined;
      this.result.reject(error ?? new Error('writing stopped before the end of the stream'));
      this.slot.mail.send({ op: 'abortFile', id: this.id });
      this.release();
    }
    callback(error);
  }

  private settle(reply: Extract<Reply, { op: 'copied' | 'copyFailed' }>): void {
    this.release();
    const finishing = this.finishing;
    this.finishing = undefined;
    if (reply.op !== 'copied') {
      this.kept?.discard();
      this.kept = undefined;
    }
    if (reply.op === 'copied') {
      this.crc = reply.crc;
      this.renamed = reply.renamed === true;
      this.indexed = reply.indexed === true;
      if (reply.continued) this.continues?.tookInput();
      // The kept hash has taken this sink's bytes: its first input (so a follower can hand it on to the next chunk).
      this.kept?.tookInput();
      this.result.resolve({ algorithm: this.algorithm, hex: reply.hex });
      finishing?.();
    } else {
      const error = new FileCopyError(reply.code, reply.message, 'target');
      this.result.reject(error);
      finishing?.(error);
    }
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.pool.release(this.id, this.slot);
  }
}

/** What a SequentialHash computes: a chunk checksum algorithm, or a CRC (a store's, checked from the bytes). */
export type SequenceAlgorithm = ChecksumAlgorithm | ChunkCrc['kind'];

export function isCrcKind(algorithm: SequenceAlgorithm | undefined): algorithm is ChunkCrc['kind'] {
  return algorithm === 'crc32c' || algorithm === 'crc32';
}

/**
 * One hash over several inputs given one at a time, in order: whole local files, which the hashing thread reads
 * itself with its reused block, or streams, whose bytes go over in blocks as a HashTap's do. For checksums of
 * a whole object computed from its chunks as they arrive, or read back at the end.
 */
export class SequentialHash {
  readonly algorithm: SequenceAlgorithm;
  /** @internal */
  readonly id: number;
  private readonly pool: HashPool;
  private readonly slot: Slot;
  private readonly sender: BlockSender;
  private waiter: { resolve: (hex: string) => void; reject: (error: Error) => void } | undefined;
  private released = false;
  private lost: HashThreadLost | undefined;
  private taken = 0;
  /** Taps whose bytes this hash is settling, in the order asked (HashTap.settleAlong). */
  private readonly settling: (() => void)[] = [];

  /** @internal `open` opens the hash on a thread (or claims an id for one that a FileSink keeps going). */
  constructor(pool: HashPool, algorithm: SequenceAlgorithm, open: (onReply: Pending) => { id: number; slot: Slot }) {
    this.pool = pool;
    this.algorithm = algorithm;
    const opened = open((reply) => {
      if (reply.op === 'ack') return this.sender.onAck();
      if (reply.op === 'alongDone') {
        if (reply.continued) this.tookInput();
        return this.settling.shift()?.();
      }
      const waiter = this.waiter;
      this.waiter = undefined;
      if (reply.op === 'lost') {
        this.lost = reply.error;
        this.release();
        waiter?.reject(reply.error);
        for (const settled of this.settling.splice(0)) settled();
        this.sender.onLost();
      } else if (reply.op === 'fileHashed') {
        this.taken++;
        waiter?.resolve('');
      }
      else if (reply.op === 'digest') waiter?.resolve(reply.crc ? crcBase64(reply.crc.value) : reply.hex);
      else if (reply.op === 'copyFailed') waiter?.reject(new FileCopyError(reply.code, reply.message, 'source'));
    });
    this.id = opened.id;
    this.slot = opened.slot;
    this.sender = new BlockSender(opened.slot, opened.id);
  }

  /** Adds the whole of a local file. */
  async addFile(path: string, signal?: AbortSignal): Promise<void> {
    this.sender.send();
    const cancel = this.slot.cancels.take();
    const onAbort = (): void => this.slot.cancels.cancel(cancel);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.ask({ op: 'hashFile', id: this.id, path, cancel });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.slot.cancels.give(cancel);
    }
  }

  /** Adds everything `stream` yields. */
  async addStream(stream: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const data of stream) await new Promise<void>((resolve, reject) => this.sender.absorb(data, (error) => (error ? reject(error) : resolve())));
    this.taken++;
  }

  /**
   * The inputs this hash has taken: files and streams added, and chunks a write fed along in the same pass
   * (HashingWriteOptions.continueHash) once it succeeded. A whole-file hash of chunks 0..i-1 has taken i.
   */
  get inputs(): number {
    return this.taken;
  }

  /** Whether the hash can still take input (not digested, discarded, or lost with its thread). */
  get usable(): boolean {
    return !this.released && !this.lost && !this.slot.lost;
  }

  /** @internal The thread the hash lives on: jobs that feed it along must run there. */
  get thread(): Slot {
    return this.slot;
  }

  /** @internal A job fed this hash along and succeeded. */
  tookInput(): void {
    this.taken++;
  }

  /** @internal Asks this hash's thread to settle a tap's bytes; resolves once it has answered (or is gone). */
  settle(message: { op: 'along'; id: number; continues: number; keep: boolean }): Promise<void> {
    if (!this.usable) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.settling.push(resolve);
      this.slot.mail.send(message);
    });
  }

  /** The result as the manifest shows it: hex for a hash, big-endian base64 for a CRC (the stores' own form). */
  async digest(): Promise<string> {
    this.sender.send();
    try {
      return await this.ask({ op: 'digest', id: this.id });
    } finally {
      this.release();
    }
  }

  /** Stops hashing; the thread forgets the hash. */
  discard(): void {
    this.sender.drop();
    if (this.released) return;
    this.slot.mail.send({ op: 'digest', id: this.id });
    this.release();
  }

  private ask(message: Record<string, unknown>): Promise<string> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.released) return Promise.reject(new Error('this hash was discarded'));
    return new Promise<string>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.slot.mail.send(message);
    });
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.pool.release(this.id, this.slot);
    // Its answers no longer come here: nobody waits for them.
    for (const settled of this.settling.splice(0)) settled();
  }
}

let shared: HashPool | undefined;

/** The process-wide pool; its threads are unref'd while idle so they never keep a CLI alive. */
export function sharedHashPool(): HashPool {
  shared ??= new HashPool();
  return shared;
}

export interface PackStreamJob extends LocalShard {
  algorithm: ChecksumAlgorithm;
  /** A member that cannot be read, as the caller reports it (e.g. the store's own error). */
  sourceError?: (error: FileCopyError, key: string) => Error;
}

/** Blocks a shard being packed may have out at once (being filled, or waiting to be read). */
const PACK_BLOCKS = 3;

/**
 * The bytes of a shard packed on a hashing thread, as a Readable: the thread fills shared blocks it is granted,
 * each is copied out and granted again when the reader wants more. A member that cannot be read fails the stream
 * (FileCopyError side 'source', or what `sourceError` makes of it).
 */
export class PackStream extends Readable {
  readonly memberDigests: Promise<string[]>;
  private readonly pool: HashPool;
  private readonly slot: Slot;
  private readonly id: number;
  private readonly blocks: number[];
  private readonly job: PackStreamJob;
  /** Blocks read and not yet granted again (the reader is full). */
  private readonly held: number[] = [];
  private readonly result: { resolve: (d: string[]) => void; reject: (e: Error) => void };
  private finished = false;

  constructor(pool: HashPool, job: PackStreamJob) {
    super({ highWaterMark: 1024 * 1024 });
    this.pool = pool;
    this.job = job;
    let resolve!: (d: string[]) => void;
    let reject!: (e: Error) => void;
    this.memberDigests = new Promise<string[]>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.memberDigests.catch(() => undefined);
    this.result = { resolve, reject };
    const claimed = pool.claim((reply) => this.onReply(reply));
    this.id = claimed.id;
    this.slot = claimed.slot;
    this.blocks = claimed.slot.lost ? [] : pool.takeBlocks(claimed.slot, PACK_BLOCKS);
    this.slot.mail.send({ op: 'pack', id: this.id, algorithm: job.algorithm, ...shardMessage(job), credits: [...this.blocks] });
  }

  override _read(): void {
    for (const block of this.held.splice(0)) this.slot.mail.send({ op: 'packCredit', id: this.id, block });
  }

  private onReply(reply: Delivery): void {
    if (reply.op === 'packBlock') {
      const view = this.slot.blocks.view(reply.block);
      if (this.push(Buffer.from(view.subarray(0, reply.length)))) this.slot.mail.send({ op: 'packCredit', id: this.id, block: reply.block });
      else this.held.push(reply.block);
    } else if (reply.op === 'packDone') {
      this.end(() => this.result.resolve(reply.digests));
    } else if (reply.op === 'packFailed') {
      const error = new FileCopyError(reply.code, `${reply.key}: ${reply.message}`, 'source', reply.key);
      this.end(() => this.destroy(this.job.sourceError?.(error, reply.key) ?? error));
    } else if (reply.op === 'packAborted') {
      this.end(() => undefined);
    } else if (reply.op === 'lost') {
      this.finished = true;
      this.pool.release(this.id, this.slot);
      this.destroy(reply.error);
    }
  }

  /** The thread is done with the job: its blocks go back to the free list, then `then` runs. */
  private end(then: () => void): void {
    this.finished = true;
    this.pool.giveBlocks(this.slot, this.blocks);
    this.pool.release(this.id, this.slot);
    then();
    if (!this.destroyed) this.push(null);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.result.reject(error ?? new Error('the shard was not read to its end'));
    // The thread still holds blocks: they come back with its packAborted.
    if (!this.finished) this.slot.mail.send({ op: 'packAbort', id: this.id });
    callback(error);
  }
}
