// A node that is a local folder. A chunk is one file, `<sub>/<name>.chunk`, written under .tmp/<sub>/ and renamed into
// place only once complete and its checksum known (on the hashing thread that wrote it, when it wrote it); its
// metadata is then appended to the node's index (folder-index.ts), and only from then on does the chunk exist.
// `<sub>` is one of 256 subfolders, two hex digits of a hash of the chunk's id, so that no folder holds more than a
// few thousand files even with a million chunks (one folder of half a million entries slowed every create, rename
// and lookup in it). The index line names the subfolder; a line without one (written before the subfolders) means
// the chunk is `<name>.chunk` in the node folder itself. Folders written before the index hold a `<name>.chunk.json`
// sidecar beside each chunk, also in the node folder itself: those chunks are still found and listed, and whatever
// the index says about an id wins over its sidecar. A chunk of either older layout that is written again moves to
// its subfolder, and its old files are removed once the index says where it now is.
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, opendir, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { Checksum, ChunkCrc } from '../../../shared/types.ts';
import { FileCopyError } from '../hash/pool.ts';
import type { FileCopied, FileCopyJob, HashPool } from '../hash/pool.ts';
import { chunkFileName, chunkSubfolder } from '../chunk-names.ts';
import { MadeFolders } from '../made-folders.ts';
import { INDEX_DIR, IndexReader, IndexWriter, chunkLine, chunkLineHead, goneLine, indexPath } from './folder-index.ts';
import type { IndexedChunk } from './folder-index.ts';
import { NodeError } from './node.ts';
import type { ChunkMeta, HashingWriteOptions, LocalRange, NodeProbe, NodeTarget, StoredChunk } from './node.ts';

const CHUNK_EXT = '.chunk';
/** The metadata file each chunk had before the index (still read, never written). */
const SIDECAR_EXT = '.chunk.json';
const ABANDONED_AFTER_MS = 10 * 60 * 1000;


export class FolderNode implements NodeTarget {
  readonly id: string;
  readonly kind = 'folder' as const;
  readonly location: string;
  private ready: Promise<void> | undefined;
  /** Whether `ready` has resolved (the folder was made and checked). */
  private dirReady = false;
  private readonly index: IndexWriter;
  private readonly indexed: IndexReader;
  /**
   * The folder's path, normalized, ending in a separator: a chunk's paths are this plus parts that are already
   * safe names (hex digits, an encoded chunk name), so path.join's normalizing is done once here, not on every chunk.
   */
  private readonly prefix: string;
  private readonly indexFile: string;
  /** Temp names are this node object's own: a random prefix (other processes, other node objects) and a counter. */
  private readonly tempPrefix = randomBytes(6).toString('hex');
  private temps = 0;
  /** The subfolders (and their .tmp/ twins) made or found by this node object, each before its first write. */
  private readonly subfolders = new MadeFolders();
  /**
   * Whether the node folder itself holds chunk files (the layouts before the subfolders): a chunk written again
   * then has its old files removed. Known once the folder is ready.
   */
  private flatChunks = false;

  constructor(id: string, dir: string) {
    this.id = id;
    this.location = dir;
    const normalized = join(dir, '.');
    this.prefix = normalized.endsWith(sep) ? normalized : normalized + sep;
    this.indexFile = indexPath(dir);
    this.index = new IndexWriter(dir);
    this.indexed = new IndexReader(dir);
  }

  async probe(): Promise<NodeProbe> {
    const started = performance.now();
    try {
      await this.ensureDir();
      await this.checkWritable();
      const fs = await statfs(this.location);
      return { ok: true, latencyMs: Math.round(performance.now() - started), freeBytes: fs.bavail * fs.bsize };
    } catch (error) {
      this.ready = undefined;
      this.dirReady = false;
      return { ok: false, latencyMs: Math.round(performance.now() - started), error: this.describe(error) };
    }
  }

  async find(chunkId: string): Promise<StoredChunk | undefined> {
    try {
      const located = await this.locate(chunkId);
      if (!located || (await stat(located.path)).size !== located.meta.size) return undefined;
      return stored(located.meta, located.path);
    } catch {
      return undefined;
    }
  }

  /**
   * Where chunk `chunkId` is, by what its metadata says: the index's last line about it (its subfolder, or the node
   * folder itself for a line written before the subfolders), else the sidecar of the oldest layout. Undefined when
   * neither describes it.
   */
  private async locate(chunkId: string): Promise<{ meta: IndexedChunk | StoredChunk; path: string } | undefined> {
    const indexed = await this.indexed.find(chunkId);
    if (indexed === 'gone') return undefined;
    const name = chunkFileName(chunkId);
    if (indexed) return { meta: indexed, path: this.chunkPath(name, indexed.subfolder) };
    const meta = await this.sidecar(join(this.location, name + SIDECAR_EXT));
    return meta?.id === chunkId ? { meta, path: this.chunkPath(name, undefined) } : undefined;
  }

  async write(meta: ChunkMeta, data: Readable, checksum: Promise<Checksum>, signal?: AbortSignal): Promise<StoredChunk> {
    // Awaited only once the data is written; a hasher that fails earlier must not go unhandled.
    checksum.catch(() => undefined);
    let writeError: unknown;
    let sourceError: unknown;
    // Listened to from the start (a source may fail while the temp name is set up); pipeline() destroys the file
    // stream with the source's error too: remember which side failed first.
    data.on('error', (error) => (sourceError ??= writeError === undefined ? error : undefined));
    const name = chunkFileName(meta.id);
    const subfolder = chunkSubfolder(meta.id);
    const temp = await this.tempFor(meta, name, subfolder);
    if (sourceError !== undefined) throw sourceError;
    const file = createWriteStream(temp, { highWaterMark: 256 * 1024 });
    file.on('error', (error) => (writeError ??= error));
    let digest: Checksum;
    try {
      await pipeline(data, file, signal ? { signal } : {});
      digest = await checksum;
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      if (sourceError !== undefined) throw sourceError; // the source's error, not ours
      if (writeError === undefined && !isOwnFsError(error)) throw error; // the source's error, not ours
      throw this.writeFailed(meta, writeError ?? error);
    }
    return this.commit(meta, name, subfolder, temp, digest, undefined);
  }

  async writeHashing(meta: ChunkMeta, data: Readable, options: HashingWriteOptions): Promise<StoredChunk> {
    let sourceError: unknown;
    // Listened to from the start (a source may fail while the temp name is set up); pipeline() also destroys the
    // source with the sink's error: only an error of the source's own counts.
    data.on('error', (error) => (sourceError ??= error instanceof FileCopyError ? undefined : error));
    const name = chunkFileName(meta.id);
    const subfolder = chunkSubfolder(meta.id);
    const temp = await this.tempFor(meta, name, subfolder);
    if (sourceError !== undefined) throw sourceError;
    const path = this.chunkPath(name, subfolder);
    const index = { path: this.indexFile, head: chunkLineHead({ ...described(meta), subfolder }) };
    const sink = options.pool.fileSink(options.algorithm, temp, { ...(options.crc ? { crc: options.crc } : {}), renameTo: path, index, ...(options.continueHash ? { continues: options.continueHash } : {}) });
    sink.onBytes = options.onBytes;
    if (options.keepHash) sink.keepHash();
    let digest: Checksum;
    try {
      await pipeline(data, sink, options.signal ? { signal: options.signal } : {});
      digest = await sink.digest;
    } catch (error) {
      sink.kept?.discard();
      await rm(temp, { force: true }).catch(() => undefined);
      // Renamed just before the write was cancelled: bytes no index line names are no chunk.
      if (sink.renamed) await rm(path, { force: true }).catch(() => undefined);
      if (sourceError !== undefined) throw sourceError;
      if (error instanceof FileCopyError || isOwnFsError(error)) throw this.writeFailed(meta, error);
      throw error;
    }
    let kept: StoredChunk;
    try {
      const withCrc = sink.crc ? { ...meta, crc: sink.crc } : meta;
      // The hashing thread renamed it and wrote its index line: it is stored.
      if (sink.indexed) await this.dropFlatCopy(name);
      kept = sink.indexed ? stored({ ...described(withCrc), checksum: digest }, path) : await this.commit(withCrc, name, subfolder, temp, digest, sink.renamed);
    } catch (error) {
      sink.kept?.discard();
      throw error;
    }
    if (sink.kept) options.keepHash?.(sink.kept);
    return kept;
  }

  async writeFromFile(meta: ChunkMeta, file: LocalRange, options: HashingWriteOptions): Promise<StoredChunk> {
    const name = chunkFileName(meta.id);
    const subfolder = chunkSubfolder(meta.id);
    const temp = await this.tempFor(meta, name, subfolder);
    let copied: FileCopied;
    try {
      const along = options.continueHash ? { continues: options.continueHash } : {};
      const job = { ...this.copyJob(meta, file, options.algorithm, name, temp, subfolder), ...along, ...(file.pack ? { pack: file.pack } : {}) };
      copied = await options.pool.copyFile(job, { ...(options.signal ? { signal: options.signal } : {}), ...(options.onBytes ? { onBytes: options.onBytes } : {}) });
    } catch (error) {
      throw await this.copyFailed(meta, temp, error);
    }
    return this.copied(meta, name, subfolder, temp, copied);
  }

  /**
   * Whole local files, each a chunk, copied in one job on one hashing thread (HashPool.copyFiles): each stored or
   * failed on its own, as writeFromFile would have stored or failed it.
   */
  async writeFilesFromDisk(items: readonly { meta: ChunkMeta; file: LocalRange }[], options: HashingWriteOptions): Promise<(StoredChunk | Error)[]> {
    const named = items.map(({ meta, file }) => ({ meta, file, name: chunkFileName(meta.id), subfolder: chunkSubfolder(meta.id) }));
    const temps = await this.batchTemps(named);
    const ready = named.flatMap((item, i) => (typeof temps[i] === 'string' ? [{ ...item, temp: temps[i] }] : []));
    let results: (FileCopied | Error)[];
    try {
      results = await options.pool.copyFiles(
        ready.map(({ meta, file, name, temp, subfolder }) => this.copyJob(meta, file, options.algorithm, name, temp, subfolder)),
        options.signal ? { signal: options.signal } : {},
      );
    } catch (error) {
      results = ready.map(() => error as Error); // the thread was lost: every copy of the batch with it
    }
    const pending = ready.map(({ meta, name, subfolder, temp }, k): StoredChunk | Error | Promise<StoredChunk | Error> => {
      const result = results[k]!;
      if (result instanceof Error) return this.copyFailed(meta, temp, result);
      try {
        const chunk = this.copied(meta, name, subfolder, temp, result);
        return chunk instanceof Promise ? chunk.catch((error: unknown) => error as Error) : chunk;
      } catch (error) {
        return error as Error;
      }
    });
    const outcomes = pending.some((outcome) => outcome instanceof Promise) ? await Promise.all(pending) : (pending as (StoredChunk | Error)[]);
    let next = 0;
    return temps.map((temp) => (typeof temp === 'string' ? outcomes[next++]! : temp));
  }

  /**
   * Temp names for a batch: each subfolder made (or found) once for the batch, not once per file; a file whose
   * subfolder could not be had gets tempFor's own error for it.
   */
  private async batchTemps(named: readonly { meta: ChunkMeta; name: string; subfolder: string }[]): Promise<(string | Error)[]> {
    // Past the first batches every subfolder is made: no promise per subfolder.
    if (this.dirReady && named.every(({ subfolder }) => this.subfolders.has(subfolder))) return named.map(({ name, subfolder }) => this.tempName(name, subfolder));
    const usable = new Set<string>();
    await Promise.all(
      [...new Set(named.map((n) => n.subfolder))].map((subfolder) =>
        this.ensureDir()
          .then(() => this.ensureSubfolder(subfolder))
          .then(() => usable.add(subfolder), () => undefined),
      ),
    );
    const temps: (string | Error | undefined)[] = named.map(({ name, subfolder }) => (usable.has(subfolder) ? this.tempName(name, subfolder) : undefined));
    const missing = named.flatMap((item, i) => (temps[i] === undefined ? [{ item, i }] : []));
    await Promise.all(missing.map(async ({ item, i }) => (temps[i] = await this.tempFor(item.meta, item.name, item.subfolder).catch((error: unknown) => error as Error))));
    return temps as (string | Error)[];
  }

  /** The hashing thread's job that copies `file` into `temp` and, once complete, gives it the chunk's name and index line. */
  private copyJob(meta: ChunkMeta, file: LocalRange, algorithm: ChecksumAlgorithm, name: string, temp: string, subfolder: string): FileCopyJob {
    const source = { source: file.path, ...(file.inside !== undefined ? { inside: file.inside } : {}), offset: file.offset, length: file.length, ...(file.etag ? { etag: file.etag } : {}) };
    const index = { path: this.indexFile, head: chunkLineHead({ ...described(meta), subfolder }) };
    return { algorithm, ...source, target: temp, renameTo: this.chunkPath(name, subfolder), index };
  }

  /** A copy that failed: its temp is removed; the source's failures stay as they are, the node's become a NodeError. */
  private async copyFailed(meta: ChunkMeta, temp: string, error: unknown): Promise<Error> {
    await rm(temp, { force: true }).catch(() => undefined);
    if (error instanceof FileCopyError && error.side === 'source') return error;
    return this.writeFailed(meta, error);
  }

  /**
   * Renamed and its index line written on the hashing thread, it is stored; else its name was taken (a replace).
   * Synchronous in the common case (no older layout's copy to drop): a batch awaits no promise per stored file.
   */
  private copied(meta: ChunkMeta, name: string, subfolder: string, temp: string, copied: FileCopied): StoredChunk | Promise<StoredChunk> {
    if (!copied.indexed) return this.commit(meta, name, subfolder, temp, copied.checksum, copied.renamed);
    const chunk = stored({ ...described(meta), checksum: copied.checksum }, this.chunkPath(name, subfolder));
    return this.flatChunks ? this.dropFlatCopy(name).then(() => chunk) : chunk;
  }

  /** A chunk's file: in its subfolder, or (undefined: an older layout) in the node folder itself. */
  private chunkPath(name: string, subfolder: string | undefined): string {
    return subfolder === undefined ? this.prefix + name + CHUNK_EXT : this.prefix + subfolder + sep + name + CHUNK_EXT;
  }

  /**
   * A temp name for chunk `name`, once the folder and the chunk's subfolder exist (the hashing thread renames the
   * temp into the subfolder and does not make folders). Temps are in .tmp/<sub>/, in the node folder: on the same file
   * system as every subfolder, so the rename is atomic. One folder per subfolder, not one for all: every create
   * and every rename out of a folder takes that folder's lock, and one .tmp/ for all made creating and renaming
   * a file 3-5x slower with two hashing threads writing (50,000 files, measured on ext4).
   */
  private async tempFor(meta: ChunkMeta, name: string, subfolder: string): Promise<string> {
    try {
      await this.ensureDir();
    } catch (error) {
      throw new NodeError(this.id, 'io', `node ${this.id}: cannot use folder ${this.location}: ${this.describe(error)}`, { cause: error });
    }
    try {
      await this.ensureSubfolder(subfolder);
    } catch (error) {
      throw this.writeFailed(meta, error);
    }
    return this.tempName(name, subfolder);
  }

  /** A new temp name for chunk `name` in .tmp/<subfolder>/ (which tempFor makes). */
  private tempName(name: string, subfolder: string): string {
    return `${this.prefix}.tmp${sep}${subfolder}${sep}${name}.${this.tempPrefix}${(this.temps++).toString(36)}.part`;
  }

  private ensureSubfolder(subfolder: string): Promise<void> {
    return this.subfolders.ensure(subfolder, () => [this.prefix + subfolder, `${this.prefix}.tmp${sep}${subfolder}`]);
  }

  /**
   * Once the index says chunk `name` is in its subfolder, the copy an older layout kept in the node folder itself
   * (and its sidecar) is stale: removed, so it is neither read nor counted. Nothing to do in a folder that never had
   * such copies.
   */
  private async dropFlatCopy(name: string): Promise<void> {
    if (!this.flatChunks) return;
    await Promise.all([rm(this.chunkPath(name, undefined), { force: true }), rm(join(this.location, name + SIDECAR_EXT), { force: true })]).catch(() => undefined);
  }

  /**
   * Complete bytes in `temp` become the chunk, which exists once its index line is written. `renamed`: the hashing
   * thread has already given them the chunk's name (true), found the name taken (false), or was not asked to
   * (undefined). A name that is taken holds a copy being replaced: the index forgets it before its bytes are, so a
   * crash between the rename and the new line never leaves new bytes described by the old line.
   */
  private async commit(meta: ChunkMeta & { crc?: ChunkCrc }, name: string, subfolder: string, temp: string, digest: Checksum, renamed: boolean | undefined): Promise<StoredChunk> {
    const path = this.chunkPath(name, subfolder);
    const chunk: IndexedChunk = { ...described(meta), subfolder, checksum: digest };
    let placed = renamed === true;
    try {
      if (!placed) {
        const replaced = renamed === false || (await isTaken(path));
        if (replaced) await this.index.append(goneLine(meta.id));
        await rename(temp, path);
        placed = true;
      }
      await this.index.append(chunkLine(chunk));
    } catch (error) {
      // Bytes without their index line are no chunk: remove them rather than leave them taking space unseen.
      await rm(temp, { force: true }).catch(() => undefined);
      if (placed) await rm(path, { force: true }).catch(() => undefined);
      throw this.writeFailed(meta, error);
    }
    await this.dropFlatCopy(name);
    return stored(chunk, path);
  }

  /**
   * A chunk is written in .tmp/ and renamed into the folder: the probe does the same with an empty file and removes
   * it, so a folder that refuses new files (read-only, immutable) is unhealthy even though .tmp/ still takes them.
   */
  private async checkWritable(): Promise<void> {
    const name = `.probe-${randomBytes(6).toString('hex')}`;
    const temp = join(this.location, '.tmp', name);
    await writeFile(temp, '', { flag: 'wx' });
    try {
      await rename(temp, join(this.location, name));
      await rm(join(this.location, name));
    } finally {
      await rm(temp, { force: true }).catch(() => undefined);
    }
  }

  private writeFailed(meta: ChunkMeta, cause: unknown): NodeError {
    const code = (cause as NodeJS.ErrnoException).code === 'ENOSPC' ? 'full' : 'io';
    return new NodeError(this.id, code, `node ${this.id}: writing ${meta.id} failed: ${this.describe(cause)}`, { cause });
  }

  async read(chunkId: string): Promise<Readable> {
    return createReadStream(await this.storedPath(chunkId), { highWaterMark: 1024 * 1024 });
  }

  /**
   * The stored copy's checksum and size, read and hashed on a hashing thread. Through read(), every MiB crossed
   * to the engine thread as a new buffer, and garbage buffers piled up to ~100 MB before a collection (verify of
   * a 1 GiB run: 207 MB).
   */
  async checksumStored(chunkId: string, algorithm: ChecksumAlgorithm, pool: HashPool, signal?: AbortSignal): Promise<{ hex: string; bytes: number }> {
    return pool.checksumOfFile(await this.storedPath(chunkId), algorithm, signal);
  }

  /** `range` of the stored copy into `into.path` at `into.at`, copied and hashed on a hashing thread (see NodeTarget). */
  async copyStoredInto(chunkId: string, range: { offset: number; length: number }, into: { path: string; at: number }, algorithm: ChecksumAlgorithm, pool: HashPool, options: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {}): Promise<{ hex: string; storedBytes: number }> {
    const { path, size } = await this.storedFile(chunkId);
    const job = { algorithm, source: path, offset: range.offset, length: range.length, target: into.path, into: into.at };
    const copied = await pool.copyFile(job, options);
    return { hex: copied.checksum.hex, storedBytes: size };
  }

  private async storedPath(chunkId: string): Promise<string> {
    return (await this.storedFile(chunkId)).path;
  }

  private async storedFile(chunkId: string): Promise<{ path: string; size: number }> {
    let path: string | undefined;
    let size = 0;
    try {
      path = (await this.locate(chunkId))?.path;
      if (path) size = (await stat(path)).size;
    } catch (error) {
      throw new NodeError(this.id, 'not_found', `node ${this.id}: chunk ${chunkId} is not in ${this.location}`, { cause: error });
    }
    if (!path) throw new NodeError(this.id, 'not_found', `node ${this.id}: chunk ${chunkId} is not in ${this.location}`);
    return { path, size };
  }

  /**
   * Every chunk the index holds, then every chunk of the old layout (a sidecar) the index says nothing about. A chunk
   * replaced while this runs may be left out; it is listed on the next call.
   */
  async *list(): AsyncIterable<StoredChunk> {
    for await (const chunk of this.indexed.chunks()) yield stored(chunk, this.chunkPath(chunkFileName(chunk.id), chunk.subfolder));
    let dir;
    try {
      dir = await opendir(this.location, { bufferSize: 256 });
    } catch {
      return;
    }
    for await (const entry of dir) {
      if (!entry.name.endsWith(SIDECAR_EXT)) continue;
      const meta = await this.sidecar(join(this.location, entry.name));
      // The index's word on an id wins; a sidecar being replaced right now is listed on the next call.
      if (meta && !this.indexed.names(meta.id)) yield stored(meta, join(this.location, entry.name.slice(0, -'.json'.length)));
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.index.close(), this.indexed.close()]);
  }

  /** A chunk's metadata in the old layout's sidecar; undefined when there is none or it does not parse. */
  private async sidecar(path: string): Promise<StoredChunk | undefined> {
    try {
      const meta = JSON.parse(await readFile(path, 'utf8')) as StoredChunk;
      return typeof meta.id === 'string' && typeof meta.size === 'number' ? meta : undefined;
    } catch {
      return undefined;
    }
  }

  private ensureDir(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.location, '.tmp'), { recursive: true });
      await mkdir(join(this.location, INDEX_DIR), { recursive: true });
      const stats = await stat(this.location);
      if (!stats.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      this.flatChunks = await this.holdsFlatChunks();
      await this.removeAbandonedTemps();
      this.dirReady = true;
    })();
    return this.ready;
  }

  /**
   * Whether any chunk file lies in the node folder itself. Cheap either way: a folder of the subfolder layout has a
   * few hundred entries at its top, and one of an older layout shows a chunk file among its first.
   */
  private async holdsFlatChunks(): Promise<boolean> {
    const dir = await opendir(this.location, { bufferSize: 256 });
    for await (const entry of dir) {
      if (entry.name.endsWith(CHUNK_EXT) || entry.name.endsWith(SIDECAR_EXT)) return true;
    }
    return false;
  }

  /**
   * A writer killed mid-chunk leaves its .part behind; nothing lists it, but it takes space. A live writer
   * touches its file all the time, so one untouched for a while is abandoned (another run may share the folder).
   */
  private async removeAbandonedTemps(): Promise<void> {
    const cutoff = Date.now() - ABANDONED_AFTER_MS;
    const tmp = join(this.location, '.tmp');
    // Temps are in .tmp/<sub>/; older versions wrote them in .tmp/ itself.
    for (const entry of await readdir(tmp, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) {
        for (const name of await readdir(join(tmp, entry.name)).catch(() => [] as string[])) await removeIfOlder(join(tmp, entry.name, name), cutoff);
      } else await removeIfOlder(join(tmp, entry.name), cutoff);
    }
  }

  private describe(error: unknown): string {
    const code = (error as NodeJS.ErrnoException).code;
    const path = (error as NodeJS.ErrnoException).path;
    if ((code === 'ENOTDIR' || code === 'EEXIST') && path !== undefined && path !== this.location) return `cannot make folder ${path}: something in its way is not a folder`;
    if (code === 'ENOTDIR' || code === 'EEXIST') return `${this.location} is not a folder`;
    if (code === 'EACCES' || code === 'EPERM') return `no permission to write to ${this.location}`;
    if (code === 'ENOSPC') return `the disk holding ${this.location} is full`;
    return error instanceof Error ? error.message : String(error);
  }
}

/** What the node keeps of a write's metadata: `replace` tells one write what to do; it is no property of the chunk. */
function described<T extends ChunkMeta>(meta: T): Omit<T, 'replace'> {
  const { replace: _replace, ...rest } = meta;
  return rest;
}

/** A chunk as the node answers for it: its metadata, and where it is now (the folder may have moved since). */
function stored(meta: IndexedChunk | StoredChunk, path: string): StoredChunk {
  const { location: _location, replace: _replace, subfolder: _subfolder, ...chunk } = meta as StoredChunk & { subfolder?: string };
  return { ...chunk, location: path };
}

/** Removes the file at `path` if it was last written before `cutoff` (ms since the epoch). */
async function removeIfOlder(path: string, cutoff: number): Promise<void> {
  const stats = await stat(path).catch(() => undefined);
  if (stats?.isFile() && stats.mtimeMs < cutoff) await rm(path, { force: true }).catch(() => undefined);
}

/** Whether something already has this name. */
async function isTaken(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function isOwnFsError(error: unknown): boolean {
  return typeof (error as NodeJS.ErrnoException).syscall === 'string' && ['rename', 'open', 'write', 'unlink', 'mkdir'].includes((error as NodeJS.ErrnoException).syscall ?? '');
}
