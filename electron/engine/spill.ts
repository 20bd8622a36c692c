// What a run keeps on disk instead of in memory, so a run of a million files holds a few bytes per file at most:
// JSON-lines files read back by offset (RecordFile), a column of numbers in a file (NumberColumn), and an
// open-addressing table from string keys to numbers (KeyIndex) that keeps only a 52-bit hash per key.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { TextBuffer } from './buffered-writer.ts';

const READ_BLOCK_BYTES = 256 * 1024;
const NEWLINE = 0x0a;

/**
 * An append-only file of JSON lines. `append` returns the line's byte offset; `read(offset)` parses the line back.
 * Writes are buffered and synchronous (1 MiB at a time into the page cache); reads go through one cached block,
 * so reading records in nearly the order they were written costs about one read per block.
 */
export class RecordFile<T> {
  readonly path: string;
  private fd: number;
  /** Appended lines not yet written (one reused buffer, see TextBuffer). */
  private readonly pending = new TextBuffer();
  /** Bytes on disk (flushed); appended bytes beyond this are still in `pending`. */
  private written = 0;
  private readonly block = Buffer.allocUnsafe(READ_BLOCK_BYTES);
  private blockAt = 0;
  private blockLength = 0;

  /** `w+` starts a new file; `r` reads one (a torn last line, as a crash leaves, reads as undefined). */
  constructor(path: string, flags: 'w+' | 'r' = 'w+') {
    this.path = path;
    this.fd = openSync(path, flags);
    if (flags === 'r') this.written = fstatSync(this.fd).size;
  }

  /** Total bytes appended (the offset the next record gets). */
  get size(): number {
    return this.written + this.pending.size;
  }

  append(value: T): number {
    return this.appendJson(JSON.stringify(value));
  }

  /** Appends a record already written as JSON (one line: JSON.stringify's output); returns its offset as `append` does. */
  appendJson(json: string): number {
    const offset = this.size;
    const line = `${json}\n`;
    if (!this.pending.fits(line)) this.flush();
    if (TextBuffer.holds(line)) this.pending.add(line);
    else this.writeOut(Buffer.from(line));
    return offset;
  }

  flush(): void {
    if (this.pending.size > 0) this.writeOut(this.pending.take());
  }

  private writeOut(data: Buffer): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, this.written + done);
    this.written += data.length;
  }

  /** The record at `offset`; undefined for a line that is not JSON (torn by a crash). */
  read(offset: number): T | undefined {
    return parseLine<T>(this.textAt(offset).text);
  }

  /** The record at `offset` (as read) and the offset of the line after it. */
  readWithNext(offset: number): { value: T | undefined; next: number } {
    const { text, next } = this.textAt(offset);
    return { value: parseLine<T>(text), next };
  }

  /** The line at `offset` as text, unparsed, and the offset of the line after it. */
  textAt(offset: number): { text: string; next: number } {
    if (offset >= this.written) this.flush();
    const bytes = this.lineAt(offset);
    return { text: bytes.toString('utf8'), next: offset + bytes.length + 1 };
  }

  /** Every record in file order, with its offset (blank lines skipped). */
  *scan(): Generator<{ offset: number; value: T | undefined }> {
    for (const { offset, line } of this.texts()) yield { offset, value: parseLine<T>(line) };
  }

  /**
   * Every record's line in file order, as text (blank lines skipped), for a file this process wrote: its lines are
   * whole JSON (only a crash tears one, and a run's own spill is never read after one).
   */
  *lines(): Generator<string> {
    for (const { line } of this.texts()) yield line;
  }

  private *texts(): Generator<{ offset: number; line: string }> {
    this.flush();
    let offset = 0;
    while (offset < this.written) {
      const bytes = this.lineAt(offset);
      const line = bytes.toString('utf8');
      if (line.trim().length > 0) yield { offset, line };
      offset += bytes.length + 1;
    }
  }

  /**
   * Reads the records in file order while they are still being appended: `next()` gives the next record, or
   * undefined once it has read every record appended so far (a later call gives those appended since).
   */
  follow(): { next(): { offset: number; value: T | undefined } | undefined } {
    let offset = 0;
    return {
      next: () => {
        for (;;) {
          if (offset >= this.size) return undefined;
          if (offset >= this.written) this.flush();
          const bytes = this.lineAt(offset);
          const line = bytes.toString('utf8');
          const at = offset;
          offset += bytes.length + 1;
          if (line.trim().length > 0) return { offset: at, value: parseLine<T>(line) };
        }
      },
    };
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * The bytes of the line at `offset`, without its newline. A line within the cached block is a view of it (valid
   * until the next read), not a copy: the callers decode it at once, and runs read one line per chunk.
   */
  private lineAt(offset: number): Buffer {
    const parts: Buffer[] = [];
    let at = offset;
    for (;;) {
      if (at < this.blockAt || at >= this.blockAt + this.blockLength) this.loadBlock(at);
      if (this.blockLength === 0) break;
      const start = at - this.blockAt;
      const end = this.block.indexOf(NEWLINE, start);
      if (end >= 0 && end < this.blockLength) {
        if (parts.length === 0) return this.block.subarray(start, end);
        parts.push(this.block.subarray(start, end));
        break;
      }
      parts.push(Buffer.from(this.block.subarray(start, this.blockLength)));
      at = this.blockAt + this.blockLength;
    }
    return Buffer.concat(parts);
  }

  /** Bytes already on disk never change (the file is append-only), so a loaded block never goes stale. */
  private loadBlock(at: number): void {
    this.blockLength = readSync(this.fd, this.block, 0, Math.min(READ_BLOCK_BYTES, Math.max(0, this.written - at)), at);
    this.blockAt = at;
  }
}

function parseLine<T>(line: string): T | undefined {
  try {
    return JSON.parse(line) as T;
  } catch {
    return undefined;
  }
}

const COLUMN_PAGE_CELLS = 8192;
const COLUMN_PAGE_BYTES = 8 * COLUMN_PAGE_CELLS;
const COLUMN_CACHED_PAGES = 4;

/**
 * A column of numbers (8 bytes each) kept in a file, `fill` where nothing was set: a few 64 KiB pages in memory,
 * so its memory does not grow with the run. Cells are stored as `value - fill`, so the file's unwritten parts
 * (zeros) read as `fill`. Reads and writes near the last ones (a run's window of chunks in flight, or a pass in
 * order) stay in the cached pages.
 */
export class NumberColumn {
  readonly path: string;
  private fd: number;
  private readonly fill: number;
  private length = 0;
  /** Cached pages, least recently used first. */
  private readonly pages = new Map<number, { cells: Float64Array; dirty: boolean }>();
  /** The page used last (most calls stay on it), kept out of the reordering. */
  private lastNumber = -1;
  private lastPage: { cells: Float64Array; dirty: boolean } | undefined;

  constructor(path: string, fill = -1) {
    this.path = path;
    this.fill = fill;
    this.fd = openSync(path, 'w+');
  }

  get size(): number {
    return this.length;
  }

  get(index: number): number {
    if (index >= this.length) return this.fill;
    return this.page(Math.floor(index / COLUMN_PAGE_CELLS)).cells[index % COLUMN_PAGE_CELLS]! + this.fill;
  }

  set(index: number, value: number): void {
    const page = this.page(Math.floor(index / COLUMN_PAGE_CELLS));
    page.cells[index % COLUMN_PAGE_CELLS] = value - this.fill;
    page.dirty = true;
    this.length = Math.max(this.length, index + 1);
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private page(number: number): { cells: Float64Array; dirty: boolean } {
    if (number === this.lastNumber) return this.lastPage!;
    const page = this.cachedPage(number);
    this.lastNumber = number;
    this.lastPage = page;
    return page;
  }

  private cachedPage(number: number): { cells: Float64Array; dirty: boolean } {
    let page = this.pages.get(number);
    if (page) {
      if (this.pages.size > 1) {
        this.pages.delete(number);
        this.pages.set(number, page);
      }
      return page;
    }
    // The evicted page's memory is reused: a pass over a million cells loads ~120 pages, and a new 64 KiB array
    // each (garbage until the next collection) lifted a run's peak by ~15 MB as it ended.
    const cells = this.pages.size >= COLUMN_CACHED_PAGES ? this.evictOldest() : new Float64Array(COLUMN_PAGE_CELLS);
    const bytes = new Uint8Array(cells.buffer);
    let read = 0;
    for (let n = -1; n !== 0 && read < bytes.length; read += n) n = readSync(this.fd, bytes, read, bytes.length - read, number * COLUMN_PAGE_BYTES + read);
    bytes.fill(0, read); // past the end of the file: cells never set
    page = { cells, dirty: false };
    this.pages.set(number, page);
    return page;
  }

  /** Drops the least recently used page (written back if it changed) and gives its cells for reuse. */
  private evictOldest(): Float64Array {
    const [number, page] = this.pages.entries().next().value!;
    this.pages.delete(number);
    if (number === this.lastNumber) this.lastNumber = -1;
    if (!page.dirty) return page.cells;
    const bytes = new Uint8Array(page.cells.buffer);
    for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done, number * COLUMN_PAGE_BYTES + done);
    return page.cells;
  }
}

/**
 * String keys to numbers in 16 bytes a key: the table keeps a 52-bit hash of each key, not the key. Two keys may
 * share a hash, so `candidates` yields every value stored under the key's hash, and the caller checks each
 * against its own record (the record holds the key).
 */
export class KeyIndex {
  private hashes: Float64Array;
  private values: Float64Array;
  private used = 0;

  constructor(capacity = 1024) {
    this.hashes = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
  }

  get size(): number {
    return this.used;
  }

  /** Adds a value under `key` (kept beside any value already there). */
  add(key: string, value: number): void {
    if ((this.used + 1) * 2 > this.hashes.length) this.grow();
    this.insert(hashKey(key), value);
    this.used++;
  }

  /** Replaces the value under `key` that `same` accepts, or adds it. */
  set(key: string, value: number, same: (existing: number) => boolean): void {
    const hash = hashKey(key);
    for (let slot = this.slotOf(hash); this.hashes[slot] !== 0; slot = (slot + 1) % this.hashes.length) {
      if (this.hashes[slot] === hash && same(this.values[slot]!)) {
        this.values[slot] = value;
        return;
      }
    }
    this.add(key, value);
  }

  *candidates(key: string): Generator<number> {
    const hash = hashKey(key);
    for (let slot = this.slotOf(hash); this.hashes[slot] !== 0; slot = (slot + 1) % this.hashes.length) {
      if (this.hashes[slot] === hash) yield this.values[slot]!;
    }
  }

  /** Adds every entry of `other` (its keys' hashes carried over as they are). */
  merge(other: KeyIndex): void {
    for (let slot = 0; slot < other.hashes.length; slot++) {
      if (other.hashes[slot] === 0) continue;
      if ((this.used + 1) * 2 > this.hashes.length) this.grow();
      this.insert(other.hashes[slot]!, other.values[slot]!);
      this.used++;
    }
  }

  private slotOf(hash: number): number {
    return hash % this.hashes.length;
  }

  private insert(hash: number, value: number): void {
    let slot = this.slotOf(hash);
    while (this.hashes[slot] !== 0) slot = (slot + 1) % this.hashes.length;
    this.hashes[slot] = hash;
    this.values[slot] = value;
  }

  private grow(): void {
    const { hashes, values } = this;
    this.hashes = new Float64Array(hashes.length * 2);
    this.values = new Float64Array(hashes.length * 2);
    for (let slot = 0; slot < hashes.length; slot++) if (hashes[slot] !== 0) this.insert(hashes[slot]!, values[slot]!);
  }
}

/** A non-zero 52-bit hash of a key (zero marks an empty slot). */
function hashKey(key: string): number {
  const digest = createHash('sha1').update(key).digest();
  const hash = digest.readUIntBE(0, 6) * 16 + (digest[6]! >> 4);
  return hash === 0 ? 1 : hash;
}
