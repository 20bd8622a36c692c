// Rebuilds a source file from its chunks, on whichever nodes hold a good copy, and checks it.
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { Writable } from 'node:stream';
import { chmod, link, lstat, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { Manifest, ManifestChunk, ManifestFile, ReassembleReport } from '../../shared/types.ts';
import type { LoadedConfig } from './config.ts';
import { FileCopyError, sharedHashPool } from './hash/pool.ts';
import type { HashPool } from './hash/pool.ts';
import { fileChecksum } from './chunks.ts';
import { forEachLimited } from './limit.ts';
import { chunkEntryProblem, chunkIdOf } from './manifest-check.ts';
import { lookUpFile } from './manifest-reader.ts';
import type { NodeTarget } from './nodes/node.ts';
import { nodesForManifest } from './nodes/for-manifest.ts';
import { memberChunk, readPiece } from './pack/member.ts';
import type { PieceChunk } from './pack/member.ts';

export type { ReassembleReport } from '../../shared/types.ts';

export class ReassembleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReassembleError';
  }
}

/** The request cannot be carried out as given (the output path, the key, the manifest): nothing was read or written. */
export class ReassembleInputError extends ReassembleError {
  constructor(message: string) {
    super(message);
    this.name = 'ReassembleInputError';
  }
}

export interface ReassembleOptions {
  loaded: LoadedConfig;
  manifestPath: string;
  key: string;
  outPath: string;
  /** Replace `outPath` if it is an existing regular file (never a folder, link or device). */
  force?: boolean;
  signal?: AbortSignal;
  pool?: HashPool;
  /** Hears how far it is: the bytes written (each chunk's copy), then the bytes read back and checked. */
  onProgress?: (progress: ReassembleProgress) => void;
}

export interface ReassembleProgress {
  phase: 'writing' | 'checking';
  bytes: number;
  /** The file's size. */
  total: number;
}

export async function reassembleFile(options: ReassembleOptions): Promise<ReassembleReport> {
  // Streamed: only the file's entry and its chunks are parsed and held (a million-file manifest is ~240 MB of text).
  const found = await lookUpFile(options.manifestPath, options.key);
  const file = found.file;
  if (!file) {
    const known = `${found.someKeys.join(', ')}${found.moreKeys ? ', ...' : ''}`;
    throw new ReassembleInputError(`${options.key} is not in manifest ${options.manifestPath}. Fix: use one of its files: ${known}.`);
  }
  const { status, checksumAlgorithm: algorithm } = found.head;
  const chunks = file.packed ? [packedLayout(options.manifestPath, found.chunks[0], file, status)] : chunkLayout(options.manifestPath, file, found.chunks.filter(isFileChunk), status);
  const outPath = resolve(options.outPath);
  const replacing = await checkOutputPath(outPath, options.force === true);
  const pool = options.pool ?? sharedHashPool();
  const nodes = nodesForManifest(options.loaded, found.nodes);
  await mkdir(dirname(outPath), { recursive: true });
  const temp = join(dirname(outPath), `.${basename(outPath)}.${randomBytes(4).toString('hex')}.part`);
  const handle = await open(temp, 'wx');
  try {
    const progress = options.onProgress;
    const total = file.size;
    await writeChunks({ handle, path: temp }, chunks, algorithm, nodes, pool, options.signal, progress && ((bytes) => progress({ phase: 'writing', bytes, total })));
    await handle.close();
    const written = await hashWritten(temp, chunks, algorithm, pool, options.signal, progress && ((bytes) => progress({ phase: 'checking', bytes, total })));
    const actual = fileChecksum(algorithm, written.chunkDigests);
    await placeOutput(temp, outPath, replacing);
    const matched = actual === file.checksum && written.bytes === file.size;
    return { key: file.key, outPath, bytes: written.bytes, expected: file.checksum, actual, matched, md5Hex: written.md5Hex };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw outputFailure(error, outPath);
  } finally {
    await Promise.all([...nodes.values()].map((n) => n.close()));
  }
}

/** A failed write into the output, as the user's error: which file, why, that nothing is left, and the fix. */
function outputFailure(error: unknown, outPath: string): unknown {
  if (!(error instanceof FileCopyError && error.side === 'target')) return error;
  return new ReassembleError(
    `writing ${outPath} failed: ${error.message}. Nothing was left at ${outPath}. Fix: free space on its disk (or raise the file-size limit, ulimit -f), or write it to another disk.`,
  );
}

/**
 * The file's chunks in order, after checking that they tile it: indexes 0..n-1 once each, offsets and sizes
 * non-negative safe integers, each chunk starting where the one before ends, the last ending at the file's size.
 * A hand-edited or damaged manifest would otherwise write at a negative, non-numeric or huge position.
 */
function chunkLayout(manifestPath: string, file: ManifestFile, ofFile: readonly ManifestChunk[], status: Manifest['status']): ManifestChunk[] {
  const bad = (what: string): ReassembleInputError =>
    new ReassembleInputError(`${manifestPath}: ${what}. Fix: pass the manifest the run wrote (it is not meant to be edited), or ingest ${file.key} again.`);
  if (!isByteCount(file.size)) throw bad(`${file.key}: size ${JSON.stringify(file.size)} is not a byte count`);
  if (!isByteCount(file.chunkCount)) throw bad(`${file.key}: chunkCount ${JSON.stringify(file.chunkCount)} is not a count`);
  const byIndex = new Map<number, ManifestChunk>();
  for (const chunk of ofFile) {
    if (!isByteCount(chunk.index)) throw bad(`${chunk.id}: index ${JSON.stringify(chunk.index)} is not a chunk number`);
    const twin = byIndex.get(chunk.index);
    if (twin) throw bad(`${twin.id} and ${chunk.id} both have index ${chunk.index}`);
    byIndex.set(chunk.index, chunk);
  }
  if (byIndex.size !== file.chunkCount) {
    const missing = Array.from({ length: file.chunkCount }, (_, i) => i).find((i) => !byIndex.has(i));
    const detail = missing !== undefined ? `${file.key}_chunk_${missing} is missing` : `there are ${byIndex.size}`;
    throw bad(`${file.key} has ${file.chunkCount} chunks (chunkCount) but the manifest lists ${byIndex.size} (the run was ${status}): ${detail}`);
  }
  const chunks: ManifestChunk[] = [];
  let end = 0;
  for (let index = 0; index < file.chunkCount; index++) {
    const chunk = byIndex.get(index);
    if (!chunk) throw bad(`${file.key}_chunk_${index} is missing (indexes run from 0 to ${file.chunkCount - 1})`);
    if (!isByteCount(chunk.offset) || chunk.offset !== end) throw bad(`${chunk.id}: offset ${JSON.stringify(chunk.offset)} should be ${end}, where the chunk before it ends`);
    if (!isByteCount(chunk.size) || chunk.size === 0) throw bad(`${chunk.id}: size ${JSON.stringify(chunk.size)} is not a positive byte count`);
    end += chunk.size;
    if (end > file.size) throw bad(`${chunk.id} ends at byte ${end}, past the end of ${file.key} (${file.size} bytes)`);
    const why = chunkEntryProblem(chunk);
    if (why) throw bad(`${chunk.id}: ${why}`);
    chunks.push(chunk);
  }
  if (end !== file.size) throw bad(`${file.key}: its chunks' sizes add up to ${end} bytes, not its size ${file.size}; ${chunks.at(-1)?.id ?? 'no chunk'} ends short`);
  return chunks;
}

/**
 * Whether a chunk is one of its file's own (`<key>_chunk_<index>`), not a shard: a shard's `file` is its own id
 * (`shard-….tar`), which a listed key may equal, and it holds none of that file's bytes.
 */
function isFileChunk(chunk: ManifestChunk): boolean {
  return chunk.id !== chunk.file;
}

/** A packed file: one piece of its shard (ingestion.pack_below_mb). */
function packedLayout(manifestPath: string, shard: ManifestChunk | undefined, file: ManifestFile, status: Manifest['status']): PieceChunk {
  const why = shard && chunkEntryProblem(shard);
  const piece = why ? `${file.key} is packed into shard ${chunkIdOf(shard)}, whose entry is damaged: ${why}` : memberChunk(shard, file, status);
  if (typeof piece === 'string') throw new ReassembleInputError(`${manifestPath}: ${piece}. Fix: pass the manifest the run wrote (it is not meant to be edited), or ingest ${file.key} again.`);
  return piece;
}

function isByteCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Refuses what reassemble must never replace: an existing path unless `force` and it is a regular file; folders,
 * symbolic links (neither the link nor its target) and devices, FIFOs and sockets never. Returns the file that
 * `--force` replaces, if any.
 */
async function checkOutputPath(outPath: string, force: boolean): Promise<Stats | undefined> {
  let stats: Stats;
  try {
    stats = await lstat(outPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new ReassembleInputError(`Cannot write ${outPath}: ${code === 'ENOTDIR' ? 'a folder on its path is a file' : (error as Error).message}. Fix: pass --out with a path in a folder you can write.`);
  }
  if (stats.isFile()) {
    if (force) return stats;
    throw new ReassembleInputError(`${outPath} already exists. Fix: pass --force to replace it, or choose a new --out path.`);
  }
  const kind = stats.isDirectory() ? 'a folder' : stats.isSymbolicLink() ? 'a symbolic link' : stats.isCharacterDevice() ? 'a character device' : stats.isBlockDevice() ? 'a block device' : stats.isFIFO() ? 'a FIFO (named pipe)' : 'a socket';
  const example = stats.isDirectory() ? `, e.g. ${join(outPath, 'rebuilt.bin')}` : '';
  const through = stats.isSymbolicLink() ? ' or writes through it' : '';
  throw new ReassembleInputError(`${outPath} is ${kind}, not a regular file: reassemble never replaces it${through}, even with --force. Fix: pass --out with a new file path${example}.`);
}

/**
 * Puts the finished temp file at `outPath`. A new path is taken with link(), which fails if anything appeared
 * there meanwhile; `--force` renames over the file checked at the start, if it is still that regular file.
 */
async function placeOutput(temp: string, outPath: string, replacing: Stats | undefined): Promise<void> {
  const now = await checkOutputPath(outPath, replacing !== undefined);
  if (now && replacing && (now.ino !== replacing.ino || now.dev !== replacing.dev)) {
    throw new ReassembleInputError(`${outPath} was replaced by another file while it was being rebuilt. Fix: run reassemble again.`);
  }
  if (now) {
    await chmod(temp, now.mode & 0o777);
    await rename(temp, outPath);
    return;
  }
  try {
    await link(temp, outPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ReassembleInputError(`${outPath} was created by something else while the file was being rebuilt. Fix: pass --force to replace it, or choose a new --out path.`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
    // A file system without hard links: the path was free a moment ago (checked above).
    await rename(temp, outPath);
    return;
  }
  await rm(temp, { force: true });
}

/**
 * Reads the written file back on the hashing threads (its bytes never cross to this one): each chunk's digest in
 * the manifest's algorithm, and the whole file's plain MD5 beside them.
 */
async function hashWritten(path: string, chunks: ManifestChunk[], algorithm: ChecksumAlgorithm, pool: HashPool, signal?: AbortSignal, onChecked?: (bytes: number) => void): Promise<{ chunkDigests: string[]; md5Hex: string; bytes: number }> {
  const whole = pool.sequence('md5');
  const wholeRead = whole.addFile(path, signal);
  try {
    const chunkDigests: string[] = [];
    let checked = 0;
    for (const chunk of chunks) {
      chunkDigests.push((await pool.checksumOfFile(path, algorithm, signal, { offset: chunk.offset, length: chunk.size })).hex);
      onChecked?.((checked += chunk.size));
    }
    await wholeRead;
    return { chunkDigests, md5Hex: await whole.digest(), bytes: (await stat(path)).size };
  } catch (error) {
    await wholeRead.catch(() => undefined);
    whole.discard();
    throw error;
  }
}

/**
 * Writes every chunk at its offset, as many at once as there are hashing threads. A failure stops new ones from
 * starting; once those running have ended, the failure of the first chunk in the file that failed is thrown (the
 * same one whichever thread was quicker).
 */
async function writeChunks(out: Output, chunks: readonly PieceChunk[], algorithm: ChecksumAlgorithm, nodes: Map<string, NodeTarget>, pool: HashPool, signal?: AbortSignal, onWritten?: (bytes: number) => void): Promise<void> {
  let failure: { error: unknown; index: number } | undefined;
  const written = new WrittenBytes(chunks.length, onWritten);
  const write = async (chunk: PieceChunk, index: number): Promise<void> => {
    try {
      await writeChunk(out, chunk, algorithm, nodes, pool, signal, written.counter(index));
    } catch (error) {
      if (!failure || index < failure.index) failure = { error, index };
    }
  };
  await forEachLimited(chunks, pool.size, write, () => failure !== undefined);
  if (failure) throw failure.error;
}

/**
 * The bytes written so far across chunks, each chunk counting its latest copy's only (a bad copy's bytes are
 * written over by the next), and never told as less than before.
 */
class WrittenBytes {
  private readonly byChunk: number[];
  private sum = 0;
  private told = 0;
  private readonly onWritten: ((bytes: number) => void) | undefined;

  constructor(chunks: number, onWritten: ((bytes: number) => void) | undefined) {
    this.byChunk = new Array<number>(chunks).fill(0);
    this.onWritten = onWritten;
  }

  /** For chunk `index`: `start()` as each copy is tried, `add(bytes)` as it is written. */
  counter(index: number): ChunkBytes {
    return {
      start: () => {
        this.sum -= this.byChunk[index]!;
        this.byChunk[index] = 0;
      },
      add: (bytes) => {
        this.byChunk[index]! += bytes;
        this.sum += bytes;
        if (this.sum <= this.told) return;
        this.told = this.sum;
        this.onWritten?.(this.sum);
      },
    };
  }
}

interface ChunkBytes {
  start(): void;
  add(bytes: number): void;
}

/** The file being rebuilt: open here, and by path for the hashing threads that write into it. */
interface Output {
  handle: FileHandle;
  path: string;
}

/**
 * Writes the chunk at its offset from the first copy whose bytes hash to the manifest's checksum. A copy on this
 * machine (NodeTarget.copyStoredInto) is copied and hashed on a hashing thread; any other streams through a tap.
 * A write into the output that fails ends the rebuild: another copy would fail the same way.
 */
async function writeChunk(out: Output, chunk: PieceChunk, algorithm: ChecksumAlgorithm, nodes: Map<string, NodeTarget>, pool: HashPool, signal: AbortSignal | undefined, bytes: ChunkBytes): Promise<void> {
  const failures: string[] = [];
  for (const copy of chunk.copies) {
    const node = nodes.get(copy.nodeId);
    if (!node) {
      failures.push(`${copy.nodeId}: not configured`);
      continue;
    }
    try {
      bytes.start();
      const through = { pool, algorithm, ...(signal ? { signal } : {}), onBytes: bytes.add };
      const written = node.copyStoredInto ? await copyOnThread(node, node.copyStoredInto, chunk, out.path, through) : await streamCopy(node, chunk, out.handle, through);
      if (written.hex === chunk.checksum && written.bytes === chunk.size) return;
      failures.push(`${copy.nodeId}: ${whyBad(written, chunk)}`);
    } catch (error) {
      if (signal?.aborted || (error instanceof FileCopyError && error.side === 'target')) throw error;
      failures.push(`${copy.nodeId}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new ReassembleError(`No good copy of ${chunk.id}: ${failures.join('; ')}. Fix: run verify to see which nodes lost data, then ingest again.`);
}

function whyBad(written: Written, chunk: PieceChunk): string {
  if (written.hex === undefined) return `holds fewer than the chunk's ${chunk.size} bytes`;
  if (written.bytes !== chunk.size) return `holds ${written.bytes} bytes, not the chunk's ${chunk.size}`;
  return `checksum ${written.hex} instead of ${chunk.checksum}`;
}

/** What a copy gave: the checksum of the bytes written (undefined: it ended short) and its size. */
interface Written {
  hex: string | undefined;
  bytes: number;
}

/** How a copy is made: hashed on `pool` in `algorithm`, `onBytes` hearing the bytes written as they go. */
interface CopyThrough {
  pool: HashPool;
  algorithm: ChecksumAlgorithm;
  signal?: AbortSignal;
  onBytes: (bytes: number) => void;
}

async function copyOnThread(node: NodeTarget, copyStoredInto: NonNullable<NodeTarget['copyStoredInto']>, chunk: PieceChunk, path: string, through: CopyThrough): Promise<Written> {
  const range = { offset: chunk.within ?? 0, length: chunk.size };
  const { pool, algorithm, ...options } = through;
  try {
    const { hex, storedBytes } = await copyStoredInto.call(node, chunk.id, range, { path, at: chunk.offset }, algorithm, pool, options);
    // A whole chunk's copy must be exactly the chunk; a packed file is a range of its shard's copy.
    return { hex, bytes: chunk.within === undefined ? storedBytes : chunk.size };
  } catch (error) {
    if (error instanceof FileCopyError && error.side === 'source' && error.code === 'CHANGED') return { hex: undefined, bytes: 0 };
    throw error;
  }
}

async function streamCopy(node: NodeTarget, chunk: PieceChunk, handle: FileHandle, { pool, algorithm, signal, onBytes }: CopyThrough): Promise<Written> {
  // Open the copy before claiming a hashing thread: a tap that never runs would keep the process alive.
  const source = await readPiece(node, chunk, signal);
  const tap = pool.tap(algorithm);
  await pipeline(source, tap, positionalWriter(handle, chunk.offset, chunk.size, onBytes), signal ? { signal } : {});
  const { hex } = await tap.digest;
  return { hex, bytes: tap.bytes };
}

/**
 * Writes a stream into an open file at `offset`, at most `length` bytes, leaving the handle open for the next chunk.
 * A bad copy longer than its chunk (it is hashed whole, and rejected) must not spill past the chunk's end: past the
 * last chunk nothing would overwrite it.
 */
function positionalWriter(handle: FileHandle, offset: number, length: number, onBytes: (bytes: number) => void): Writable {
  let position = offset;
  const end = offset + length;
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(data: Buffer, _encoding, done) {
      const bytes = data.subarray(0, Math.max(0, end - position));
      writeAll(handle, bytes, position).then(
        () => {
          position += bytes.length;
          onBytes(bytes.length);
          done();
        },
        // The output's side, as a hashing thread's copy reports it: no other copy would write it better.
        (error: NodeJS.ErrnoException) => done(new FileCopyError(error.code ?? 'EIO', error.message, 'target')),
      );
    },
  });
}

async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let written = 0; written < bytes.length; ) written += (await handle.write(bytes, written, bytes.length - written, position + written)).bytesWritten;
}
