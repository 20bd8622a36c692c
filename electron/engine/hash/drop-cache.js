// @ts-check
// Tells the kernel a source file's pages will not be read again, as rclone does after each local file it reads.
// Without it, a run over more data than the page cache holds makes the kernel reclaim pages as it goes (a million
// files on a 23 GB VM: 593,000 pages scanned, 0.9 GB of the source read from disk a second time). A small run
// keeps what it read cached (each reader's first `keepBytes`, ReadOnce): dropping costs about as much as reading a
// small cached file, and a second run over the same data finds it in memory.
// Node has no posix_fadvise; it is called through koffi (libc.js). Where that is missing or fails to load, nothing
// is dropped and nothing else changes.
import { totalmem } from 'node:os';
import { libc } from './libc.js';

/** Linux's POSIX_FADV_DONTNEED (the value differs on other systems, where nothing is dropped). */
const POSIX_FADV_DONTNEED = 4;
/** Ranges are widened to this (the largest page size Linux uses): the kernel keeps a page only partly inside. */
const PAGE = 64 * 1024;

/** @typedef {(fd: number, offset: number, length: number, advice: number) => number} Fadvise */

/** @type {Fadvise | undefined | null} null until first needed; undefined where it cannot be had. */
let loaded = null;

/** The libc call, loaded on first use (a run that never needs it never loads koffi). */
function fadvise() {
  if (loaded === null) loaded = load();
  return loaded;
}

/** @returns {Fadvise | undefined} */
function load() {
  try {
    return /** @type {Fadvise | undefined} */ (libc()?.libc.func('int posix_fadvise(int fd, int64_t offset, int64_t len, int advice)'));
  } catch {
    return undefined;
  }
}

/**
 * Advises the kernel to drop the cached pages of [offset, offset + length) of open file `fd`. Advice only: a
 * failure changes nothing. A page-cache folio (up to 2 MiB, aligned to its size) that reaches past the range
 * stays: chunk sizes that are multiples of 2 MiB leave nothing behind.
 * @param {number} fd
 * @param {number} offset
 * @param {number} length
 */
function dropCachedPages(fd, offset, length) {
  const call = fadvise();
  if (!call) return;
  const start = Math.floor(offset / PAGE) * PAGE;
  call(fd, start, Math.ceil((offset + length) / PAGE) * PAGE - start, POSIX_FADV_DONTNEED);
}

/**
 * What the readers of one run leave cached, shared among `readers` (each gets this much): an eighth of memory.
 * @param {number} readers
 */
export function keptCachedPerReader(readers = 1) {
  return Math.floor(totalmem() / 8 / readers);
}

/**
 * One reader's source ranges, each read once: the first `keepBytes` stay cached, what is read after them is
 * dropped from the page cache as soon as it has been read.
 */
export class ReadOnce {
  /** @param {number} keepBytes */
  constructor(keepBytes) {
    /** Bytes still read before ranges are dropped. */
    this.keepBytes = keepBytes;
  }

  /**
   * Range [offset, offset + length) of open file `fd` was read and will not be read again.
   * @param {number} fd
   * @param {number} offset
   * @param {number} length
   */
  done(fd, offset, length) {
    if (this.keepBytes > 0) this.keepBytes -= length;
    else dropCachedPages(fd, offset, length);
  }
}

/** @internal Whether pages can be dropped here: 'fadvise' or 'unavailable'. */
export function dropCacheImplementation() {
  return fadvise() ? 'fadvise' : 'unavailable';
}
