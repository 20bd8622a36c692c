// @ts-check
// Hashing off the calling thread. Plain JavaScript (type-checked through JSDoc) on purpose: a TypeScript worker
// would load Node's type stripper into every hashing thread, ~10 MB each.
import { createHash, hash as hashOnce } from 'node:crypto';
import { constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { normalize, sep } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { memberHeader } from '../pack/tar.js';
import { crc32cUpdate } from './crc32c.js';
import { ReadOnce } from './drop-cache.js';
import { closeFile, openNoSymlinks, renameNoReplace } from './linux-calls.js';

const COPY_BLOCK = 1024 * 1024;
const PROGRESS_EVERY = 8 * COPY_BLOCK;
/** One block, reused for every copy this thread makes. */
const block = Buffer.allocUnsafeSlow(COPY_BLOCK);
/** @type {{ keepCachedBytes?: number, linuxCallsAfter?: number } | undefined} */
const options = workerData;
/** A local source's files, read once a run: past this thread's share, dropped from the page cache once read. */
const sourceReads = new ReadOnce(options?.keepCachedBytes ?? Infinity);

/**
 * @typedef {{ id: number, algorithm: string, source: string, inside?: string, offset: number, length: number, etag?: string, target: string, into?: number, renameTo?: string, index?: IndexLine, continues?: number, cancel: number, pack?: LocalShard }} CopyJob
 * @typedef {{ path: string, head: string }} IndexLine
 * @typedef {{ root: string, keys: string[], sizes: number[], etags: (string | undefined)[], part?: ShardPart }} LocalShard
 * @typedef {{ at: number, last: boolean }} ShardPart
 * @typedef {{ op: 'open', id: number, algorithm?: string, crc?: 'crc32c' | 'crc32', ranges?: RangeSpec, continues?: number }
 *   | { op: 'block', index: number, buffer: SharedArrayBuffer }
 *   | { op: 'update', id: number, block: number, length: number }
 *   | { op: 'digest', id: number, along?: boolean }
 *   | { op: 'along', id: number, continues: number, keep: boolean }
 *   | { op: 'hashFile', id: number, path: string, cancel: number }
 *   | { op: 'statFiles', id: number, paths: string }
 *   | { op: 'checksumFile', id: number, algorithm: string, path: string, offset?: number, length?: number, cancel: number }
 *   | { op: 'cancelPage', index: number, buffer: SharedArrayBuffer }
 *   | { op: 'openFile', id: number, algorithm: string, target: string, crc?: 'crc32c' | 'crc32', renameTo?: string, index?: IndexLine, continues?: number }
 *   | { op: 'closeFile', id: number, keepAs?: number }
 *   | { op: 'abortFile', id: number }
 *   | ({ op: 'copy' } & CopyJob)
 *   | { op: 'copyMany', id: number, cancel: number, jobs: Omit<CopyJob, 'id' | 'cancel'>[] }
 *   | { op: 'sealFile', id: number, algorithm: string, target: string, length: number, renameTo?: string, index?: IndexLine, cancel: number }
 *   | ({ op: 'pack' } & PackJob)
 *   | { op: 'packCredit', id: number, block: number }
 *   | { op: 'packAbort', id: number }} Message
 * @typedef {{ id: number, algorithm: string, root: string, keys: string[], sizes: number[], etags: (string | undefined)[], credits: number[] }} PackJob
 * @typedef {{ algorithm: string, starts: number[], lengths: number[] }} RangeSpec
 * @typedef {{ path: string, renamedTo: string, text: string }} BatchLine
 * @typedef {{ op: 'copied', id: number, hex: string, bytes: number, renamed: boolean, indexed: boolean, continued: unknown }
 *   | { op: 'copyFailed', id: number, code: string, message: string, side: string, key?: string }} CopyReply
 */

/**
 * File operations (opens of a source file, renames of a finished one) made with Node's own calls before this
 * thread loads koffi for the shorter Linux ones (linux-calls.js): loading costs ~15 ms of CPU and ~1.6 MB, which a
 * run of a few dozen files would not win back. Those save a readlink and an lstat per small file.
 */
const NODE_CALLS_FIRST = options?.linuxCallsAfter ?? 256;
let nodeCalls = 0;

function wantsLinuxCalls() {
  return nodeCalls >= NODE_CALLS_FIRST || ++nodeCalls > NODE_CALLS_FIRST;
}

/**
 * Fails unless the file open as `fd` lies inside the folder whose real path is `root`. What is checked is the file
 * that was opened, not a path resolved before (a symlink swapped in between cannot lead outside), and on Linux it
 * costs one readlink of /proc/self/fd instead of one per path component; elsewhere the path is resolved.
 * @param {number} fd
 * @param {string} path
 * @param {string} root
 */
function checkInside(fd, path, root) {
  let real;
  try {
    real = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    real = realpathSync.native(path);
  }
  if (real !== root && !real.startsWith(root + sep)) throw Object.assign(new Error('it resolves outside the source folder'), { code: 'EACCES' });
}

/**
 * Opens `path` for reading; with `root`, only if it lies inside that folder (checkInside).
 * @param {string} path
 * @param {string | undefined} root
 */
function openInside(path, root) {
  if (root !== undefined && wantsLinuxCalls() && path.startsWith(root + sep) && normalize(path) === path) {
    const fd = openNoSymlinks(path); // a path with no symlink in it is its own real path: inside root
    if (fd !== undefined) return fd;
  }
  const fd = openSync(path, 'r');
  if (root === undefined) return fd;
  try {
    checkInside(fd, path, root);
  } catch (error) {
    closeFile(fd);
    throw error;
  }
  return fd;
}

/** Same formula as localEtag() in storage/local.ts: size, mtime in µs, inode. */
function etagOf(/** @type {import('node:fs').Stats} */ stats) {
  return `${stats.size}-${Math.floor(stats.mtimeMs * 1000)}-${stats.ino}`;
}

/**
 * Runs a write-side operation, marking its errors as the target's (the node's) rather than the source's.
 * @template T
 * @param {() => T} operation
 * @returns {T}
 */
function onTarget(operation) {
  try {
    return operation();
  } catch (error) {
    throw Object.assign(/** @type {Error} */ (error), { side: 'target' });
  }
}

/**
 * Reads [offset, offset+length) of `source`, hashing it and writing it to `target`, one reused block at a time.
 * Fails if the source is not the version `etag` names, before or after, or ends early.
 * @param {CopyJob} job
 */
function copy(job) {
  if (job.pack) return packCopy(job, job.pack);
  const along = alongFrom(job.continues, job.algorithm);
  // A range read whole in one block is hashed in one call (no hash object per small file); others as they come.
  const oneShot = along === undefined && job.length > 0 && job.length <= COPY_BLOCK && job.algorithm !== 'crc32c';
  let hash = oneShot ? undefined : newHash(job.algorithm);
  let hex = '';
  const input = openInside(job.source, job.inside);
  let output;
  try {
    // A job of one read is checked after it only: a file changed before the read fails that check too.
    if (job.etag && job.length > COPY_BLOCK && etagOf(fstatSync(input)) !== job.etag) throw Object.assign(new Error('the file changed since it was listed'), { code: 'CHANGED' });
    // `into`: a part of a file others write too (reassemble), written where it lies, nothing truncated.
    const base = job.into ?? 0;
    output = onTarget(() => openSync(job.target, job.into === undefined ? 'w' : constants.O_WRONLY));
    const out = output;
    let done = 0;
    let reported = 0;
    while (done < job.length) {
      throwIfCancelled(job.cancel);
      const n = readSync(input, block, 0, Math.min(COPY_BLOCK, job.length - done), job.offset + done);
      if (n === 0) throw Object.assign(new Error('the file is shorter than listed (it shrank)'), { code: 'CHANGED' });
      writeBlock(out, n, base + done);
      const bytes = block.subarray(0, n);
      if (!hash && n === job.length) hex = hashOnce(job.algorithm, bytes, 'hex');
      else (hash ??= newHash(job.algorithm)).update(bytes); // a short read: the rest comes in another
      if (along !== 'own') along?.update(bytes);
      done += n;
      if (done - reported >= PROGRESS_EVERY) {
        post({ op: 'progress', id: job.id, bytes: done - reported });
        reported = done;
      }
    }
    if (job.etag && etagOf(fstatSync(input)) !== job.etag) throw Object.assign(new Error('the file changed while it was read'), { code: 'CHANGED' });
    // A store folder's file is read once per run; a node's chunk (a repair's source) may be read again.
    if (job.inside !== undefined) sourceReads.done(input, job.offset, job.length);
    const carried = along === 'own' ? hash?.copy() : along;
    // The last bytes are reported with the result: one message fewer per small file.
    return { hex: hash ? hash.digest('hex') : hex, bytes: done - reported, along: carried };
  } finally {
    closeFile(input);
    const out = output;
    if (out !== undefined) onTarget(() => closeFile(out));
  }
}

/** Index files this thread appends to (appendIndexLine), by path, open until it has appended none for a moment. */
/** @type {Map<string, number>} */
const indexFds = new Map();
/** @type {NodeJS.Timeout | undefined} */
let indexIdle;
const INDEX_IDLE_MS = 250;

/**
 * After a rename: the chunk's line in its node's index (folder-index.ts), completed with what only this thread
 * knows (the checksum, the CRC), appended in one write with a newline before it, as the node's own writer does;
 * the chunk exists from then on. A write that fails or falls short (a full disk) removes the renamed file again:
 * bytes no line describes are no chunk.
 * @param {IndexLine} index
 * @param {string} renamedTo
 * @param {string} algorithm
 * @param {string} hex
 * @param {{ kind: string, value: number } | undefined} crc
 */
function appendIndexLine(index, renamedTo, algorithm, hex, crc) {
  const line = Buffer.from(indexLineText(index, algorithm, hex, crc));
  let written;
  try {
    written = appendToIndex(index.path, line);
  } catch (error) {
    unlinkQuietly(renamedTo);
    throw Object.assign(/** @type {Error} */ (error), { side: 'target' });
  }
  if (written < line.length) {
    unlinkQuietly(renamedTo);
    throw noRoomForIndex();
  }
}

/**
 * @param {IndexLine} index
 * @param {string} algorithm
 * @param {string} hex
 * @param {{ kind: string, value: number } | undefined} crc
 */
function indexLineText(index, algorithm, hex, crc) {
  return `\n${index.head},"checksum":${JSON.stringify({ algorithm, hex })}${crc ? `,"crc":${JSON.stringify(crc)}` : ''}}\n`;
}

function noRoomForIndex() {
  return Object.assign(new Error("no room for the chunk's index line"), { code: 'ENOSPC', side: 'target' });
}

/**
 * Appends `bytes` to the index file at `path` in one write (its descriptor kept open while lines keep coming);
 * returns how many were written.
 * @param {string} path
 * @param {Uint8Array} bytes
 */
function appendToIndex(path, bytes) {
  try {
    let fd = indexFds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'a');
      indexFds.set(path, fd);
    }
    return writeSync(fd, bytes, 0, bytes.length, null);
  } catch (error) {
    closeIndexFds(); // the next line opens its file again
    throw error;
  } finally {
    clearTimeout(indexIdle);
    indexIdle = setTimeout(closeIndexFds, INDEX_IDLE_MS);
    indexIdle.unref();
  }
}

/**
 * A batch's index lines (copyMany), one write per index file instead of one per chunk. A chunk whose line was not
 * written whole loses its file and fails, as appendIndexLine fails one; the lines before it stand.
 * @param {number} id
 * @param {(BatchLine & { at: number })[]} lines
 * @param {CopyReply[]} results
 */
function appendBatchIndexLines(id, lines, results) {
  /** @type {Map<string, typeof lines>} */
  const byPath = new Map();
  for (const line of lines) {
    const group = byPath.get(line.path) ?? [];
    if (group.push(line) === 1) byPath.set(line.path, group);
  }
  for (const [path, group] of byPath) {
    const bytes = Buffer.from(group.map((line) => line.text).join(''));
    let written = 0;
    /** @type {NodeJS.ErrnoException | undefined} */
    let thrown;
    try {
      written = appendToIndex(path, bytes);
    } catch (error) {
      thrown = /** @type {NodeJS.ErrnoException} */ (error);
    }
    if (written === bytes.length) continue;
    const failure = thrown ?? noRoomForIndex();
    let end = 0;
    group.forEach((line) => {
      end += Buffer.byteLength(line.text);
      if (end <= written) return;
      unlinkQuietly(line.renamedTo);
      results[line.at] = { op: 'copyFailed', id, code: failure.code ?? 'EIO', message: failure.message, side: 'target' };
    });
  }
}

function closeIndexFds() {
  for (const fd of indexFds.values()) {
    try {
      closeFile(fd);
    } catch {
      // nothing to do about it
    }
  }
  indexFds.clear();
}

/**
 * Gives a finished file its final name in the same job, unless something already has that name: a stored copy
 * is left for the caller to replace in its own order (see FolderNode.commit). Returns whether it renamed.
 * @param {string} from
 * @param {string} to
 */
function renameUnlessTaken(from, to) {
  return onTarget(() => {
    const renamed = wantsLinuxCalls() ? renameNoReplace(from, to) : undefined;
    if (renamed !== undefined) return renamed;
    if (lstatSync(to, { throwIfNoEntry: false }) !== undefined) return false;
    renameSync(from, to);
    return true;
  });
}

/**
 * A chunk checksum as a Hash-like object: node:crypto's md5 and sha256, or a CRC-32C (hex, big-endian, as its
 * value reads), on the CPU's CRC instructions when the native module loaded.
 * @typedef {{ update(bytes: Uint8Array): unknown, digest(encoding: 'hex'): string, copy(): ChunkHash }} ChunkHash
 * @param {string} algorithm
 * @returns {ChunkHash}
 */
function newHash(algorithm) {
  return algorithm === 'crc32c' ? new Crc32cHash(0) : createHash(algorithm);
}

class Crc32cHash {
  /** @param {number} value */
  constructor(value) {
    this.value = value;
  }

  /** @param {Uint8Array} bytes */
  update(bytes) {
    this.value = crc32cUpdate(this.value, bytes);
    return this;
  }

  digest() {
    return this.value.toString(16).padStart(8, '0');
  }

  copy() {
    return new Crc32cHash(this.value);
  }
}

/**
 * A copy job run to its end: copied, given its final name (renameTo) and its index line; the reply that says so,
 * or that it failed.
 * @param {CopyJob} job
 * @param {((line: BatchLine) => void) | undefined} deferLine takes the index line instead of writing it (a batch writes its lines together)
 * @returns {CopyReply}
 */
function copyAndName(job, deferLine = undefined) {
  try {
    const { along, ...copied } = copy(job);
    const { renamed, indexed } = nameAndIndex(job, copied.hex, deferLine);
    const continued = carryAlong(job.continues, along);
    return { op: 'copied', id: job.id, ...copied, renamed, indexed, continued };
  } catch (error) {
    const { code, message: text, side, key } = /** @type {NodeJS.ErrnoException & { side?: string, key?: string }} */ (error);
    return { op: 'copyFailed', id: job.id, code: code ?? 'EIO', message: text, side: side ?? 'source', ...(key !== undefined ? { key } : {}) };
  }
}

/**
 * Writes the first `n` bytes of the block into `fd` at byte `at`.
 * @param {number} fd
 * @param {number} n
 * @param {number} at
 */
function writeBlock(fd, n, at) {
  onTarget(() => {
    for (let written = 0; written < n; ) written += writeSync(fd, block, written, n - written, at + written);
  });
}

/**
 * A file written whole at `job.target` takes its final name (renameTo, unless taken) and then its index line.
 * @param {{ target: string, renameTo?: string, index?: IndexLine, algorithm: string }} job
 * @param {string} hex its checksum
 * @param {((line: BatchLine) => void) | undefined} deferLine as in copyAndName
 */
function nameAndIndex(job, hex, deferLine = undefined) {
  const renamed = job.renameTo !== undefined && renameUnlessTaken(job.target, job.renameTo);
  const indexed = renamed && job.index !== undefined && job.renameTo !== undefined;
  if (!indexed) return { renamed, indexed };
  const index = /** @type {IndexLine} */ (job.index);
  const renamedTo = /** @type {string} */ (job.renameTo);
  if (deferLine) deferLine({ path: index.path, renamedTo, text: indexLineText(index, job.algorithm, hex, undefined) });
  else appendIndexLine(index, renamedTo, job.algorithm, hex, undefined);
  return { renamed, indexed };
}

/** Pages of the flags that cancel file jobs, all of one size (see CancelFlags in pool.ts). @type {Int32Array[]} */
const cancelPages = [];

/**
 * Throws CANCELLED once the sender has raised a job's cancel flag.
 * @param {number} cell
 */
function throwIfCancelled(cell) {
  const cells = /** @type {Int32Array} */ (cancelPages[0]).length;
  const page = /** @type {Int32Array} */ (cancelPages[Math.floor(cell / cells)]);
  if (Atomics.load(page, cell % cells) !== 0) throw Object.assign(new Error('cancelled'), { code: 'CANCELLED' });
}

/** Shared blocks the sender fills, by index (see SharedBlocks in pool.ts). @type {Uint8Array[]} */
const blocks = [];
/** @type {Map<number, ChunkHash>} */
const hashes = new Map();
/**
 * Open hashes that have taken nothing yet, with their algorithm: a job of the same algorithm feeding one along
 * needs no second hash (alongFrom 'own').
 * @type {Map<number, string>}
 */
const untouched = new Map();

/**
 * A copy of open hash `id` (a whole-file hash of the chunks before this one) for a job to feed along with its own
 * bytes: the hash itself takes them only once the job has succeeded (carryAlong), so a job that fails part way
 * leaves it as it was for the job's retry. 'own' when the hash has taken nothing yet and the job hashes with the
 * same algorithm: the job's own hash is then the whole-file hash so far (copied before its digest), no bytes are
 * hashed twice. Undefined when this thread holds no such hash (the bytes are hashed again later, from where they
 * were stored).
 * @param {number | undefined} id
 * @param {string | undefined} algorithm
 * @returns {ChunkHash | 'own' | undefined}
 */
function alongFrom(id, algorithm) {
  if (id === undefined) return undefined;
  if (algorithm !== undefined && untouched.get(id) === algorithm && hashes.has(id)) return 'own';
  return hashes.get(id)?.copy();
}

/**
 * A job that fed `along` succeeded: open hash `id` now holds its bytes too. Says whether it did.
 * @param {number | undefined} id
 * @param {ChunkHash | undefined} along
 */
function carryAlong(id, along) {
  if (id === undefined || along === undefined || !hashes.has(id)) return false;
  hashes.set(id, along);
  untouched.delete(id);
  return true;
}

/**
 * Taps (open hashers) feeding a whole-file hash along: the hash they continue and their copy of it ('own': the
 * tap's own hash, copied at its end). After the tap's end the copy waits for the sender's word (op 'along': the
 * chunk was stored, or not).
 * @type {Map<number, { continues: number, hash: ChunkHash | 'own', ended: boolean }>}
 */
const alongs = new Map();

/**
 * CRCs taken beside the hash of an open hasher (HashTap), by id.
 * @type {Map<number, { kind: 'crc32c' | 'crc32', value: number }>}
 */
const crcs = new Map();

/**
 * Hashes of byte ranges of an open hasher's stream (a shard's members), by id: each range gets its own digest,
 * in order, as the stream passes it.
 * @typedef {{ spec: RangeSpec, next: number, position: number, hash: ChunkHash | undefined, hexes: string[] }} RangeHashes
 * @type {Map<number, RangeHashes>}
 */
const rangeHashes = new Map();

/**
 * Feeds `bytes`, the next bytes of the stream, to the ranges they overlap.
 * @param {RangeHashes} r
 * @param {Uint8Array} bytes
 */
function feedRanges(r, bytes) {
  const { starts, lengths, algorithm } = r.spec;
  let i = 0;
  while (i < bytes.length && r.next < starts.length) {
    const start = /** @type {number} */ (starts[r.next]);
    const end = start + /** @type {number} */ (lengths[r.next]);
    const at = r.position + i;
    if (at < start) {
      i += Math.min(bytes.length - i, start - at);
      continue;
    }
    const take = Math.min(bytes.length - i, end - at);
    r.hash ??= newHash(algorithm);
    r.hash.update(bytes.subarray(i, i + take));
    i += take;
    if (r.position + i === end) {
      r.hexes.push(r.hash.digest('hex'));
      r.hash = undefined;
      r.next++;
    }
  }
  r.position += bytes.length;
}

/**
 * @param {{ kind: 'crc32c' | 'crc32', value: number }} crc
 * @param {Uint8Array} bytes
 */
function updateCrc(crc, bytes) {
  crc.value = crc.kind === 'crc32c' ? crc32cUpdate(crc.value, bytes) : crc32(bytes, crc.value);
}
/**
 * Open file sinks: bytes are hashed (and CRC'd when `crc` is set) and written here. After a failed write,
 * `failure` holds it and the rest is dropped.
 * `target` is the file it made (removed if the sink is aborted). With `renameTo`, the file is renamed there once
 * closed, unless that name is taken (renameUnlessTaken).
 * With `continues`, `along` is fed too (see alongFrom).
 * @type {Map<number, { hash: ChunkHash, algorithm: string, crc?: { kind: 'crc32c' | 'crc32', value: number }, fd: number | undefined, target?: string, renameTo?: string, index?: IndexLine, continues?: number, along?: ChunkHash | 'own', failure?: { code: string, message: string } }>}
 */
const sinks = new Map();

/** @param {unknown} error */
function failureOf(error) {
  const { code, message } = /** @type {NodeJS.ErrnoException} */ (error);
  return { code: code ?? 'EIO', message };
}

/**
 * @param {number} id
 * @param {Uint8Array} bytes
 */
function writeToSink(id, bytes) {
  const sink = sinks.get(id);
  if (!sink || sink.failure || sink.fd === undefined) return;
  const fd = sink.fd;
  sink.hash.update(bytes);
  if (sink.along !== 'own') sink.along?.update(bytes);
  if (sink.crc) updateCrc(sink.crc, bytes);
  try {
    for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written, bytes.length - written);
  } catch (error) {
    sink.failure = failureOf(error);
    closeQuietly(sink);
    post({ op: 'writeFailed', id, ...sink.failure });
  }
}

/** @param {string} path */
function unlinkQuietly(path) {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** @param {{ fd: number | undefined }} sink */
function closeQuietly(sink) {
  if (sink.fd === undefined) return;
  try {
    closeFile(sink.fd);
  } catch {
    // already failed; the first error is the one reported
  }
  sink.fd = undefined;
}
/**
 * Shards being packed from local files (HashPool.packStream): each member's tar headers, its bytes read from the
 * source folder, its padding, then the end of the archive, written into the blocks the sender grants (credits)
 * and posted back one block at a time; each member's bytes are hashed on the way. By id.
 * @typedef {{ job: PackJob, member: number, phase: 'header' | 'data' | 'pad' | 'end' | 'done', at: number, header: Buffer | undefined, fd: number | undefined, hash: ChunkHash | undefined, digests: string[], ends: boolean }} Packing
 * @type {Map<number, Packing>}
 */
const packings = new Map();
const END_OF_ARCHIVE = 1024;

/** @param {number} size */
function paddingOf(size) {
  return (512 - (size % 512)) % 512;
}

/**
 * Opens member `i` of the job as the local driver would read it: its real path must stay inside the source
 * folder, and it must be the version the listing saw.
 * @param {PackJob} job
 * @param {number} i
 */
function openMember(job, i) {
  const fd = openInside([job.root, ...(/** @type {string} */ (job.keys[i])).split('/')].join(sep), job.root);
  const etag = job.etags[i];
  if (etag && etagOf(fstatSync(fd)) !== etag) {
    closeFile(fd);
    throw Object.assign(new Error('the file changed since it was listed'), { code: 'CHANGED' });
  }
  return fd;
}

/**
 * Fills granted blocks until the credits run out or the shard is done; posts each block, then the digests.
 * @param {number} id
 */
function pack(id) {
  const p = packings.get(id);
  if (!p) return;
  const { job } = p;
  try {
    const done = () => p.phase === 'done';
    while (job.credits.length > 0 && !done()) {
      const index = /** @type {number} */ (job.credits.shift());
      const view = /** @type {Uint8Array} */ (blocks[index]);
      const filled = fillBlock(p, view);
      post({ op: 'packBlock', id, block: index, length: filled });
    }
    if (done()) {
      packings.delete(id);
      post({ op: 'packDone', id, digests: p.digests });
    }
  } catch (error) {
    if (p.fd !== undefined) closeFile(p.fd);
    packings.delete(id);
    const { code, message } = /** @type {NodeJS.ErrnoException} */ (error);
    post({ op: 'packFailed', id, code: code ?? 'EIO', message, key: job.keys[p.member] ?? '' });
  }
}

/**
 * The next bytes of the shard into `view`; returns how many.
 * @param {Packing} p
 * @param {Uint8Array} view
 */
function fillBlock(p, view) {
  const { job } = p;
  let filled = 0;
  while (filled < view.length && p.phase !== 'done') {
    if (p.phase === 'end') {
      const n = Math.min(view.length - filled, END_OF_ARCHIVE - p.at);
      view.fill(0, filled, filled + n);
      filled += n;
      p.at += n;
      if (p.at === END_OF_ARCHIVE) p.phase = 'done';
      continue;
    }
    const size = /** @type {number} */ (job.sizes[p.member]);
    if (p.phase === 'header') {
      // Written here as the member is reached (512 bytes, or three blocks with a pax name): a shard's headers are
      // never built up front, nor posted from the main thread.
      const header = (p.header ??= memberHeader(/** @type {string} */ (job.keys[p.member]), size));
      const n = Math.min(view.length - filled, header.length - p.at);
      view.set(header.subarray(p.at, p.at + n), filled);
      filled += n;
      p.at += n;
      if (p.at === header.length) {
        p.header = undefined;
        p.phase = 'data';
        p.at = 0;
        p.fd = openMember(job, p.member);
        p.hash = newHash(job.algorithm);
      }
    } else if (p.phase === 'data') {
      const fd = /** @type {number} */ (p.fd);
      const n = readSync(fd, view, filled, Math.min(view.length - filled, size - p.at), p.at);
      if (n === 0 && p.at < size) throw Object.assign(new Error('the file is shorter than listed (it shrank)'), { code: 'CHANGED' });
      p.hash?.update(view.subarray(filled, filled + n));
      filled += n;
      p.at += n;
      if (p.at === size) {
        const etag = job.etags[p.member];
        const changed = etag !== undefined && etagOf(fstatSync(fd)) !== etag;
        sourceReads.done(fd, 0, size);
        closeFile(fd);
        p.fd = undefined;
        if (changed) throw Object.assign(new Error('the file changed while it was read'), { code: 'CHANGED' });
        p.digests.push(/** @type {ChunkHash} */ (p.hash).digest('hex'));
        p.hash = undefined;
        p.phase = 'pad';
        p.at = 0;
      }
    } else {
      const n = Math.min(view.length - filled, paddingOf(size) - p.at);
      view.fill(0, filled, filled + n);
      filled += n;
      p.at += n;
      if (p.at === paddingOf(size)) {
        p.member++;
        p.phase = p.member < job.keys.length ? 'header' : p.ends ? 'end' : 'done';
        p.at = 0;
      }
    }
  }
  return filled;
}

/**
 * Lays out a shard of local files straight into `job.target` with the reused block: headers, each member read,
 * hashed on its own and with the whole shard, padding, the end of the archive. A member that cannot be read fails
 * the copy on the source side, naming its key.
 * @param {CopyJob} job
 * @param {LocalShard} shard
 */
function packCopy(job, shard) {
  const part = shard.part;
  // A part writes its members where they lie in the shard, into a file the other parts write too; the whole
  // shard is hashed once every part is written (sealFile).
  const whole = part ? undefined : newHash(job.algorithm);
  const ends = part ? part.last : true;
  /** @type {Packing} */
  const p = { job: { ...shard, id: job.id, algorithm: job.algorithm, credits: [] }, member: 0, phase: shard.keys.length > 0 ? 'header' : ends ? 'end' : 'done', at: 0, header: undefined, fd: undefined, hash: undefined, digests: [], ends };
  const output = onTarget(() => openSync(job.target, part ? constants.O_WRONLY | constants.O_CREAT : 'w'));
  let done = 0;
  let reported = 0;
  try {
    while (p.phase !== 'done') {
      throwIfCancelled(job.cancel);
      let n;
      try {
        n = fillBlock(p, block);
      } catch (error) {
        throw Object.assign(/** @type {Error} */ (error), { key: shard.keys[p.member] });
      }
      const bytes = block.subarray(0, n);
      whole?.update(bytes);
      const at = part ? part.at + done : null;
      onTarget(() => {
        for (let written = 0; written < n; ) written += writeSync(output, bytes, written, n - written, at === null ? null : at + written);
      });
      done += n;
      if (done - reported >= PROGRESS_EVERY) {
        post({ op: 'progress', id: job.id, bytes: done - reported });
        reported = done;
      }
    }
    return { hex: whole ? whole.digest('hex') : '', members: p.digests, bytes: done - reported, along: undefined };
  } finally {
    if (p.fd !== undefined) closeFile(p.fd);
    onTarget(() => closeFile(output));
  }
}

const port = parentPort;
if (!port) throw new Error('hash worker must run in a worker thread');

/**
 * Adds bytes to open hash `id`: its hash, its CRC, or both.
 * @param {number} id
 * @param {Uint8Array} bytes
 */
function updateOpen(id, bytes) {
  hashes.get(id)?.update(bytes);
  untouched.delete(id);
  const along = alongs.get(id)?.hash;
  if (along !== 'own') along?.update(bytes);
  const crc = crcs.get(id);
  if (crc) updateCrc(crc, bytes);
  const ranges = rangeHashes.get(id);
  if (ranges) feedRanges(ranges, bytes);
}

/**
 * Feeds a whole file into open hash `id` with the reused block.
 * @param {number} id
 * @param {string} path
 * @param {number} cancel its cancel flag's cell (throwIfCancelled)
 */
function hashFileInto(id, path, cancel) {
  const input = openSync(path, 'r');
  try {
    for (let n; (n = readSync(input, block, 0, COPY_BLOCK, null)) > 0; ) {
      throwIfCancelled(cancel);
      updateOpen(id, block.subarray(0, n));
    }
  } finally {
    closeFile(input);
  }
}

/**
 * The checksum (hex) and size of the file at `path`, or of `length` bytes of it from `offset` (fewer where it
 * ends): a stored chunk verified, or a rebuilt file's chunk checked, without its bytes crossing threads.
 * @param {{ algorithm: string, path: string, offset?: number, length?: number, cancel: number }} job
 */
function checksumFile(job) {
  const input = openSync(job.path, 'r');
  try {
    return digestOf(input, job.algorithm, job.cancel, job.offset, job.length);
  } finally {
    closeFile(input);
  }
}

/**
 * Hashes up to `limit` bytes of the open file `input` from `start`, with this thread's block: its hex digest and
 * the bytes read. `read` makes each read (a target's reads fail as the target's).
 * @param {number} input
 * @param {string} algorithm
 * @param {number} cancel
 * @param {number} [start]
 * @param {number} [limit]
 * @param {(fd: number, buffer: Buffer, offset: number, length: number, position: number) => number} [read]
 */
function digestOf(input, algorithm, cancel, start = 0, limit = Infinity, read = readSync) {
  const hash = newHash(algorithm);
  let bytes = 0;
  for (let n; bytes < limit && (n = read(input, block, 0, Math.min(COPY_BLOCK, limit - bytes), start + bytes)) > 0; bytes += n) {
    throwIfCancelled(cancel);
    hash.update(block.subarray(0, n));
  }
  return { hex: hash.digest('hex'), bytes };
}

/**
 * The checksum of a file this thread's jobs wrote in parts (a shard packed in parts), read back whole; it must be
 * exactly `length` bytes.
 * @param {{ algorithm: string, target: string, length: number, cancel: number }} job
 */
function hashWritten(job) {
  const input = onTarget(() => openSync(job.target, 'r'));
  try {
    const { hex, bytes } = digestOf(input, job.algorithm, job.cancel, 0, Infinity, (fd, buffer, offset, length, position) => onTarget(() => readSync(fd, buffer, offset, length, position)));
    if (bytes !== job.length) throw Object.assign(new Error(`the file written holds ${bytes} bytes, not ${job.length}`), { code: 'EIO', side: 'target' });
    return hex;
  } finally {
    closeFile(input);
  }
}

/**
 * Replies held while a batch of jobs runs (see HashPool's outbox), posted as one message at its end: one post for
 * many small copies instead of one each. Undefined outside a batch: replies go at once.
 * @type {object[] | undefined}
 */
let heldReplies;

/**
 * Posts a reply to the sender, or holds it until the batch being run ends. Progress is never held: a batch of
 * large copies would otherwise report nothing until all of them were done.
 * @param {{ op: string, [field: string]: unknown }} reply
 */
function post(reply) {
  if (!heldReplies) return port?.postMessage(reply);
  heldReplies.push(reply);
  if (reply.op === 'progress') postHeld();
}

function postHeld() {
  const replies = heldReplies ?? [];
  if (replies.length === 1) port?.postMessage(replies[0]);
  else if (replies.length > 1) port?.postMessage({ op: 'replies', replies });
  if (heldReplies) heldReplies = [];
}

port.on('message', (/** @type {Message | { op: 'batch', messages: Message[] }} */ message) => {
  if (message.op !== 'batch') return handle(message);
  heldReplies = [];
  try {
    for (const each of message.messages) handle(each);
  } finally {
    postHeld();
    heldReplies = undefined;
  }
});

/** What statFiles gives per path: size, mtimeMs, inode, and 1 for a regular file (0, with NaNs, for none). */
const STAT_FIELDS = 4;

/**
 * Stats the NUL-separated `paths` (following symlinks) for a listing: one message for a page of files, and on this
 * thread the synchronous calls cost a fraction of what the listing thread paid for a promise each. A path that is
 * gone, or not a regular file, gives 0 in its last field.
 * @param {number} id
 * @param {string} paths
 */
function statFiles(id, paths) {
  const list = paths.split('\0');
  const values = new Float64Array(list.length * STAT_FIELDS).fill(Number.NaN);
  list.forEach((path, i) => {
    let stats;
    try {
      stats = statSync(path, { throwIfNoEntry: false });
    } catch {
      stats = undefined; // unreadable: left out, as a vanished file is
    }
    const at = i * STAT_FIELDS;
    values[at + 3] = stats?.isFile() ? 1 : 0;
    if (!stats) return;
    values[at] = stats.size;
    values[at + 1] = stats.mtimeMs;
    values[at + 2] = stats.ino;
  });
  port?.postMessage({ op: 'stats', id, values }, [values.buffer]);
}

/** @param {Message} message */
function handle(message) {
  switch (message.op) {
    case 'open': {
      const along = alongFrom(message.continues, message.ranges ? undefined : message.algorithm);
      if (along && message.continues !== undefined) alongs.set(message.id, { continues: message.continues, hash: along, ended: false });
      if (message.algorithm) hashes.set(message.id, newHash(message.algorithm));
      if (message.algorithm && !message.crc && !message.ranges && message.continues === undefined) untouched.set(message.id, message.algorithm);
      if (message.crc) crcs.set(message.id, { kind: message.crc, value: 0 });
      if (message.ranges) rangeHashes.set(message.id, { spec: message.ranges, next: 0, position: 0, hash: undefined, hexes: [] });
      break;
    }
    case 'block':
      blocks[message.index] = new Uint8Array(message.buffer);
      break;
    case 'cancelPage':
      cancelPages[message.index] = new Int32Array(message.buffer);
      break;
    case 'update': {
      const bytes = /** @type {Uint8Array} */ (blocks[message.block]).subarray(0, message.length);
      if (sinks.has(message.id)) writeToSink(message.id, bytes);
      else updateOpen(message.id, bytes);
      // The block is free again once this is read: the sender reuses it, nothing is allocated per block.
      post({ op: 'ack', id: message.id, block: message.block });
      break;
    }
    case 'copy':
      post(copyAndName(message));
      break;
    case 'copyMany': {
      // One reply for the lot: each file copied, renamed and indexed, or failed, on its own.
      /** @type {(BatchLine & { at: number })[]} */
      const lines = [];
      const results = message.jobs.map((job, at) => copyAndName({ ...job, id: message.id, cancel: message.cancel }, (line) => lines.push({ ...line, at })));
      appendBatchIndexLines(message.id, lines, results);
      post({ op: 'copiedMany', id: message.id, results });
      break;
    }
    case 'sealFile':
      try {
        const hex = hashWritten(message);
        post({ op: 'copied', id: message.id, hex, bytes: 0, ...nameAndIndex(message, hex) });
      } catch (error) {
        post({ op: 'copyFailed', id: message.id, ...failureOf(error), side: 'target' });
      }
      break;
    case 'statFiles':
      statFiles(message.id, message.paths);
      break;
    case 'checksumFile':
      try {
        post({ op: 'copied', id: message.id, ...checksumFile(message) });
      } catch (error) {
        post({ op: 'copyFailed', id: message.id, ...failureOf(error), side: 'source' });
      }
      break;
    case 'hashFile': {
      if (!hashes.has(message.id) && !crcs.has(message.id)) break;
      try {
        hashFileInto(message.id, message.path, message.cancel);
        post({ op: 'fileHashed', id: message.id });
      } catch (error) {
        post({ op: 'copyFailed', id: message.id, ...failureOf(error), side: 'source' });
      }
      break;
    }
    case 'openFile':
      try {
        const crc = message.crc ? { kind: message.crc, value: 0 } : undefined;
        const renameTo = message.renameTo !== undefined ? { renameTo: message.renameTo, ...(message.index ? { index: message.index } : {}) } : {};
        const along = alongFrom(message.continues, message.algorithm);
        const carry = along ? { continues: message.continues, along } : {};
        const fd = openSync(message.target, 'w');
        sinks.set(message.id, { hash: newHash(message.algorithm), algorithm: message.algorithm, ...(crc ? { crc } : {}), target: message.target, ...renameTo, ...carry, fd });
      } catch (error) {
        const failure = failureOf(error);
        sinks.set(message.id, { hash: newHash(message.algorithm), algorithm: message.algorithm, fd: undefined, failure });
        post({ op: 'writeFailed', id: message.id, ...failure });
      }
      break;
    case 'closeFile': {
      const sink = sinks.get(message.id);
      sinks.delete(message.id);
      if (!sink) break;
      try {
        if (sink.failure) throw Object.assign(new Error(sink.failure.message), { code: sink.failure.code });
        if (sink.fd !== undefined) closeFile(sink.fd);
        sink.fd = undefined;
        const renamed = sink.renameTo !== undefined && sink.target !== undefined && renameUnlessTaken(sink.target, sink.renameTo);
        // The hash so far lives on as an open hash: the start of a whole-file hash that continues with the next chunk.
        const kept = message.keepAs !== undefined ? sink.hash.copy() : undefined;
        const carried = sink.along === 'own' ? sink.hash.copy() : sink.along;
        const hex = sink.hash.digest('hex');
        const indexed = renamed && sink.index !== undefined && sink.renameTo !== undefined;
        if (indexed) appendIndexLine(/** @type {IndexLine} */ (sink.index), /** @type {string} */ (sink.renameTo), sink.algorithm, hex, sink.crc);
        if (kept && message.keepAs !== undefined) hashes.set(message.keepAs, kept);
        const continued = carryAlong(sink.continues, carried);
        post({ op: 'copied', id: message.id, hex, crc: sink.crc, renamed, indexed, continued });
      } catch (error) {
        post({ op: 'copyFailed', id: message.id, ...failureOf(error), side: 'target' });
      }
      break;
    }
    case 'pack':
      packings.set(message.id, { job: message, member: 0, phase: message.keys.length > 0 ? 'header' : 'end', at: 0, header: undefined, fd: undefined, hash: undefined, digests: [], ends: true });
      pack(message.id);
      break;
    case 'packCredit': {
      const p = packings.get(message.id);
      if (!p) break;
      p.job.credits.push(message.block);
      pack(message.id);
      break;
    }
    case 'packAbort': {
      const p = packings.get(message.id);
      packings.delete(message.id);
      if (p?.fd !== undefined) closeFile(p.fd);
      post({ op: 'packAborted', id: message.id });
      break;
    }
    case 'abortFile': {
      const sink = sinks.get(message.id);
      sinks.delete(message.id);
      if (!sink) break;
      closeQuietly(sink);
      // The sender removes the file too, but may have done so before this thread made it (the open waited
      // behind other jobs): the file this sink made goes with it.
      if (sink.target !== undefined) unlinkQuietly(sink.target);
      break;
    }
    case 'along': {
      const along = alongs.get(message.id);
      alongs.delete(message.id);
      const continued = message.keep && along?.ended === true && along.hash !== 'own' && carryAlong(along.continues, along.hash);
      // Answered to the whole-file hash, which counts what it has taken.
      post({ op: 'alongDone', id: message.continues, continued });
      break;
    }
    case 'digest': {
      const along = alongs.get(message.id);
      const hash = hashes.get(message.id);
      // A tap's end: its copy of the whole-file hash waits for the word that its chunk was stored. A cancel: dropped.
      if (along && message.along) {
        if (along.hash === 'own' && hash) along.hash = hash.copy();
        along.ended = true;
      } else alongs.delete(message.id);
      const crc = crcs.get(message.id);
      const ranges = rangeHashes.get(message.id)?.hexes;
      hashes.delete(message.id);
      untouched.delete(message.id);
      crcs.delete(message.id);
      rangeHashes.delete(message.id);
      post({ op: 'digest', id: message.id, hex: hash?.digest('hex') ?? '', crc, ranges });
      break;
    }
  }
}

// Loaded: the pool holds V8's default flags until now, so that the built-in modules above came from Node's code
// cache (heap-growth.ts defaultFlagsWhile).
port.postMessage({ op: 'ready' });
