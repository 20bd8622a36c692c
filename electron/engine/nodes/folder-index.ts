// A folder node's index: one append-only file of JSON lines, `<node>/.cloud-ingest-index/chunks.jsonl`, instead of a
// metadata sidecar per chunk. A line is a stored chunk's metadata, or a chunk's removal (`"gone": true`); the last
// line about an id is the one that counts. Its writers: the hashing thread that renamed a chunk appends the chunk's
// line in the same job (HashPool IndexLine), and the node's own writer here the rest (streamed writes, removals),
// batched (the first waits for no one; the ones that arrive meanwhile go in the next write). Every write is one
// write(2) of whole lines on an O_APPEND descriptor, so the writes of several writers (threads, two runs on one node
// folder) never interleave on a local file system. Each write starts with a newline: a line torn by a writer that
// died mid-write then stands alone, fails to parse (no prefix of a JSON object is one) and is skipped, and what
// comes after it is read as before. A chunk's line names the subfolder its file is in (`"subfolder": "3f"`, two
// hex digits and nothing else, so a line cannot point outside the node folder); lines written before the
// subfolders have none, and their chunk is in the node folder itself.
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isSubfolderName } from '../chunk-names.ts';
import { KeyIndex } from '../spill.ts';
import type { StoredChunk } from './node.ts';

export const INDEX_DIR = '.cloud-ingest-index';
export const INDEX_FILE = 'chunks.jsonl';
const READ_BLOCK = 1024 * 1024;
const NEWLINE = 0x0a;
/** A descriptor unused this long is closed (and opened again when needed). */
const IDLE_CLOSE_MS = 250;

/**
 * A stored chunk as its index line holds it: where it lives follows from the folder, its id and its subfolder
 * (none: the node folder itself, the layout before the subfolders).
 */
export type IndexedChunk = Omit<StoredChunk, 'location' | 'replace'> & { subfolder?: string };


export function indexPath(folder: string): string {
  return join(folder, INDEX_DIR, INDEX_FILE);
}

/** The index line for a stored chunk, its id first. */
export function chunkLine(chunk: IndexedChunk): string {
  const { id, ...rest } = chunk;
  return JSON.stringify({ id, ...rest });
}

/**
 * The line for a chunk about to be stored, without its checksum and closing brace: the hashing thread that takes
 * the checksum completes it (HashPool IndexLine) into what chunkLine gives.
 */
export function chunkLineHead(chunk: Omit<IndexedChunk, 'checksum' | 'crc'>): string {
  return chunkLine(chunk as IndexedChunk).slice(0, -1);
}

/** The index line that forgets a chunk. */
export function goneLine(id: string): string {
  return JSON.stringify({ id, gone: true });
}

/** What one line says: a chunk, a removal, or nothing (blank, torn, or not ours). */
export function parseLine(text: string): IndexedChunk | { id: string; gone: true } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const line = value as Partial<IndexedChunk> & { gone?: unknown };
  if (typeof line.id !== 'string') return undefined;
  if (line.gone === true) return { id: line.id, gone: true };
  const { checksum } = line;
  const placed = line.subfolder === undefined || (typeof line.subfolder === 'string' && isSubfolderName(line.subfolder));
  const valid = typeof line.file === 'string' && isCount(line.index) && isCount(line.offset) && isCount(line.size) && typeof checksum?.hex === 'string' && typeof checksum.algorithm === 'string' && placed;
  return valid ? (line as IndexedChunk) : undefined;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * A file descriptor opened when first needed and closed once unused for a moment, so a node object nobody closes
 * never leaves one behind for the garbage collector (which warns), and an idle process holds none.
 */
class IdleFile {
  private readonly openFile: () => Promise<FileHandle>;
  private opening: Promise<FileHandle> | undefined;
  private users = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(openFile: () => Promise<FileHandle>) {
    this.openFile = openFile;
  }

  /** The descriptor, held until release(); rejects as open(2) does. */
  async acquire(): Promise<FileHandle> {
    this.users++;
    clearTimeout(this.timer);
    const opening = (this.opening ??= this.openFile());
    try {
      return await opening;
    } catch (error) {
      if (this.opening === opening) this.opening = undefined;
      this.release();
      throw error;
    }
  }

  release(): void {
    if (--this.users === 0) this.timer = setTimeout(() => void this.close().catch(() => undefined), IDLE_CLOSE_MS).unref();
  }

  /** Lets the descriptor go now (after it failed: the next acquire opens the file again). */
  drop(): void {
    const opening = this.opening;
    this.opening = undefined;
    void opening?.then((handle) => handle.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    if (this.users > 0) return;
    const opening = this.opening;
    this.opening = undefined;
    await (await opening?.catch(() => undefined))?.close();
  }
}

interface QueuedLine {
  bytes: Buffer;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The one writer of a node's index in this process (per FolderNode). */
export class IndexWriter {
  private readonly file: IdleFile;
  private queue: QueuedLine[] = [];
  private flushing: Promise<void> | undefined;

  constructor(folder: string) {
    const path = indexPath(folder);
    this.file = new IdleFile(async () => {
      await mkdir(dirname(path), { recursive: true });
      return open(path, 'a');
    });
  }

  /** Resolves once `line` is in the file (one write with the lines queued beside it); rejects if it is not. */
  append(line: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ bytes: Buffer.from(`${line}\n`), resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.file.close();
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) await this.write(this.queue.splice(0));
    this.flushing = undefined;
  }

  /**
   * One write of the batch. A short write (a disk filling up) keeps the lines it holds whole; the rest go again in
   * a write of their own, so no line is ever written in two pieces another writer's batch could come between.
   */
  private async write(batch: QueuedLine[]): Promise<void> {
    let pending = batch;
    let handle: FileHandle | undefined;
    try {
      handle = await this.file.acquire();
      while (pending.length > 0) {
        const bytes = Buffer.concat([Buffer.from([NEWLINE]), ...pending.map((q) => q.bytes)]);
        const { bytesWritten } = await handle.write(bytes, 0, bytes.length, null);
        let end = 1;
        let whole = 0;
        for (const q of pending) {
          end += q.bytes.length;
          if (end > bytesWritten) break;
          whole++;
        }
        for (const q of pending.slice(0, whole)) q.resolve();
        pending = pending.slice(whole);
        if (bytesWritten === 0) throw Object.assign(new Error('the index took no bytes'), { code: 'EIO', syscall: 'write' });
      }
    } catch (error) {
      // The descriptor may be what failed: the next batch opens the file again.
      if (handle) this.file.drop();
      for (const q of pending) q.reject(error);
    } finally {
      if (handle) this.file.release();
    }
  }
}

/**
 * What a node's index says, read as it grows: which line counts for each id, by its offset in the file (a removal
 * as -1 - its offset). Kept in memory as 16 bytes an id (a 52-bit hash of it and the offset, KeyIndex), not the
 * ids: a chunk's line is read when asked for, and its id checked. Two ids sharing a hash (about one pair in 10^4
 * among a million ids) share one entry, the later line's: the other is then not found and is sent again, never
 * taken for the wrong chunk. Only whole lines are taken: a line still being written (or torn) is read again once
 * a newline follows it.
 */
export class IndexReader {
  private readonly file: IdleFile;
  private latest = new KeyIndex();
  /** Bytes of the file taken so far: every line before this offset is in `latest`. */
  private taken = 0;
  /** The file those bytes are of (another file in its place is read from its start). */
  private ino: number | undefined;
  private reading: Promise<void> = Promise.resolve();

  constructor(folder: string) {
    const path = indexPath(folder);
    this.file = new IdleFile(() => open(path, 'r'));
  }

  /** Takes the lines appended since the last call (by anyone); concurrent calls take turns, each sees the file at its turn. */
  catchUp(): Promise<void> {
    const turn = this.reading.then(() => this.readNewLines());
    this.reading = turn.catch(() => undefined);
    return turn;
  }

  /** The chunk the index holds for `id`: its metadata, 'gone' when its last line removes it, undefined when no line names it. */
  async find(id: string): Promise<IndexedChunk | 'gone' | undefined> {
    await this.catchUp();
    const offset = this.offsetOf(id);
    if (offset === undefined) return undefined;
    if (offset < 0) return 'gone';
    const handle = await this.file.acquire();
    try {
      const line = parseLine(await lineAt(handle, offset));
      // Another id's line under the same hash: this one's last word is lost, so it is not held.
      return line && !('gone' in line) && line.id === id ? line : 'gone';
    } finally {
      this.file.release();
    }
  }

  /** Whether any line names `id` (read so far), or another id's under the same hash. */
  names(id: string): boolean {
    return this.offsetOf(id) !== undefined;
  }

  private offsetOf(id: string): number | undefined {
    for (const offset of this.latest.candidates(id)) return offset;
    return undefined;
  }

  /**
   * Every chunk the index holds, in the order their lines were written. A chunk whose line is superseded while
   * this runs is left out and listed by the next call.
   */
  async *chunks(): AsyncIterable<IndexedChunk> {
    await this.catchUp();
    if (this.taken === 0) return;
    const handle = await this.file.acquire();
    try {
      for await (const { offset, text } of lines(handle, 0, this.taken)) {
        const line = parseLine(text);
        if (line && !('gone' in line) && this.offsetOf(line.id) === offset) yield line;
      }
    } finally {
      this.file.release();
    }
  }

  async close(): Promise<void> {
    await this.reading;
    await this.file.close();
  }

  private async readNewLines(): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await this.file.acquire();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      const { size, ino } = await handle.stat();
      if (this.ino !== undefined && ino !== this.ino) {
        this.latest = new KeyIndex();
        this.taken = 0;
      }
      this.ino = ino;
      if (size <= this.taken) return;
      let end = this.taken;
      for await (const { offset, text, next } of lines(handle, this.taken, size)) {
        end = next;
        const line = parseLine(text);
        if (line) this.latest.set(line.id, 'gone' in line ? -1 - offset : offset, () => true);
      }
      this.taken = end;
    } finally {
      this.file.release();
    }
  }
}

/** The whole lines in [from, to) of the file, each with its offset and the offset after its newline. */
async function* lines(handle: FileHandle, from: number, to: number): AsyncIterable<{ offset: number; text: string; next: number }> {
  const block = Buffer.allocUnsafe(READ_BLOCK);
  let carry: Buffer = Buffer.alloc(0);
  let carryAt = from;
  for (let at = from; at < to; ) {
    const { bytesRead } = await handle.read(block, 0, Math.min(READ_BLOCK, to - at), at);
    if (bytesRead === 0) break;
    at += bytesRead;
    const bytes = carry.length > 0 ? Buffer.concat([carry, block.subarray(0, bytesRead)]) : block.subarray(0, bytesRead);
    let start = 0;
    for (let nl = bytes.indexOf(NEWLINE); nl >= 0; nl = bytes.indexOf(NEWLINE, start)) {
      yield { offset: carryAt + start, text: bytes.toString('utf8', start, nl), next: carryAt + nl + 1 };
      start = nl + 1;
    }
    carry = Buffer.from(bytes.subarray(start));
    carryAt += start;
  }
}

/** The line that starts at `offset`. */
async function lineAt(handle: FileHandle, offset: number): Promise<string> {
  const parts: Buffer[] = [];
  for (let at = offset; ; ) {
    const block = Buffer.allocUnsafe(4096);
    const { bytesRead } = await handle.read(block, 0, block.length, at);
    if (bytesRead === 0) break;
    const nl = block.subarray(0, bytesRead).indexOf(NEWLINE);
    parts.push(block.subarray(0, nl >= 0 ? nl : bytesRead));
    if (nl >= 0) break;
    at += bytesRead;
  }
  return Buffer.concat(parts).toString('utf8');
}
