// A node that is a local folder. Chunks are written to .tmp/ and renamed into place only when complete
// and their checksum is known; the metadata sidecar is written last, so a chunk without it does not exist.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { Checksum, ChunkCrc } from '../../../shared/types.ts';
import { FileCopyError } from '../hash/pool.ts';
import { chunkFileName } from '../chunk-names.ts';
import { NodeError } from './node.ts';
import type { ChunkMeta, HashingWriteOptions, LocalRange, NodeProbe, NodeTarget, StoredChunk } from './node.ts';

const CHUNK_EXT = '.chunk';
const META_EXT = '.chunk.json';
const ABANDONED_AFTER_MS = 10 * 60 * 1000;

export class FolderNode implements NodeTarget {
  readonly id: string;
  readonly kind = 'folder' as const;
  readonly location: string;
  private ready: Promise<void> | undefined;

  constructor(id: string, dir: string) {
    this.id = id;
    this.location = dir;
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
      return { ok: false, latencyMs: Math.round(performance.now() - started), error: this.describe(error) };
    }
  }

  async find(chunkId: string): Promise<StoredChunk | undefined> {
    const name = chunkFileName(chunkId);
    try {
      const meta = JSON.parse(await readFile(join(this.location, name + META_EXT), 'utf8')) as StoredChunk;
      const size = (await stat(join(this.location, name + CHUNK_EXT))).size;
      return meta.id === chunkId && size === meta.size ? meta : undefined;
    } catch {
      return undefined;
    }
  }

  async write(meta: ChunkMeta, data: Readable, checksum: Promise<Checksum>, signal?: AbortSignal): Promise<StoredChunk> {
    // Awaited only once the data is written; a hasher that fails earlier must not go unhandled.
    checksum.catch(() => undefined);
    let writeError: unknown;
    let sourceError: unknown;
    // Listened to from the start (a source may fail while the temp name is set up); pipeline() destroys the file
    // stream with the source's error too: remember which side failed first.
    data.on('error', (error) => (sourceError ??= writeError === undefined ? error : undefined));
    const temp = await this.tempFor(meta);
    if (sourceError !== undefined) throw sourceError;
    const file = createWriteStream(temp, { highWaterMark: 256 * 1024 });
    file.on('error', (error) => (writeError ??= error));
    try {
      await pipeline(data, file, signal ? { signal } : {});
      return await this.commit(meta, temp, await checksum);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      if (sourceError !== undefined) throw sourceError; // the source's error, not ours
      if (writeError === undefined && !isOwnFsError(error)) throw error; // the source's error, not ours
      throw this.writeFailed(meta, writeError ?? error);
    }
  }

  async writeHashing(meta: ChunkMeta, data: Readable, options: HashingWriteOptions): Promise<StoredChunk> {
    let sourceError: unknown;
    // Listened to from the start (a source may fail while the temp name is set up); pipeline() also destroys the
    // source with the sink's error: only an error of the source's own counts.
    data.on('error', (error) => (sourceError ??= error instanceof FileCopyError ? undefined : error));
    const temp = await this.tempFor(meta);
    if (sourceError !== undefined) throw sourceError;
    const sink = options.pool.fileSink(options.algorithm, temp, options.crc ? { crc: options.crc } : {});
    sink.onBytes = options.onBytes;
    if (options.keepHash) sink.keepHash();
    try {
      await pipeline(data, sink, options.signal ? { signal: options.signal } : {});
      const digest = await sink.digest;
      const stored = await this.commit(sink.crc ? { ...meta, crc: sink.crc } : meta, temp, digest);
      if (sink.kept) options.keepHash?.(sink.kept);
      return stored;
    } catch (error) {
      sink.kept?.discard();
      await rm(temp, { force: true }).catch(() => undefined);
      if (sourceError !== undefined) throw sourceError;
      if (error instanceof FileCopyError || isOwnFsError(error)) throw this.writeFailed(meta, error);
      throw error;
    }
  }

  async writeFromFile(meta: ChunkMeta, file: LocalRange, options: HashingWriteOptions): Promise<StoredChunk> {
    const temp = await this.tempFor(meta);
    try {
      const job = { algorithm: options.algorithm, source: file.path, offset: file.offset, length: file.length, target: temp, ...(file.etag ? { etag: file.etag } : {}), ...(file.pack ? { pack: file.pack } : {}) };
      const digest = await options.pool.copyFile(job, { ...(options.signal ? { signal: options.signal } : {}), ...(options.onBytes ? { onBytes: options.onBytes } : {}) });
      return await this.commit(meta, temp, digest);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      if (error instanceof FileCopyError && error.side === 'source') throw error;
      throw this.writeFailed(meta, error);
    }
  }

  private async tempFor(meta: ChunkMeta): Promise<string> {
    await this.ensureDir().catch((error: unknown) => {
      throw new NodeError(this.id, 'io', `node ${this.id}: cannot use folder ${this.location}: ${this.describe(error)}`, { cause: error });
    });
    return join(this.location, '.tmp', `${chunkFileName(meta.id)}.${randomBytes(6).toString('hex')}.part`);
  }

  /** Complete bytes in `temp` become the chunk: rename into place, then the sidecar that makes it exist. */
  private async commit(meta: ChunkMeta & { crc?: ChunkCrc }, temp: string, digest: Checksum): Promise<StoredChunk> {
    const name = chunkFileName(meta.id);
    const finalPath = join(this.location, name + CHUNK_EXT);
    const metaPath = join(this.location, name + META_EXT);
    // `replace` tells this write what to do; it is no property of the stored chunk.
    const { replace: _replace, ...described } = meta;
    const stored: StoredChunk = { ...described, checksum: digest, location: finalPath };
    // The old sidecar goes first so a crash never leaves new bytes described by an old checksum.
    await rm(metaPath, { force: true });
    await rename(temp, finalPath);
    const metaTemp = `${temp}.json`;
    try {
      await writeFile(metaTemp, JSON.stringify(stored));
      await rename(metaTemp, metaPath);
    } catch (error) {
      // Bytes without their sidecar are no chunk: remove them rather than leave them taking space unseen.
      await rm(metaTemp, { force: true }).catch(() => undefined);
      await rm(finalPath, { force: true }).catch(() => undefined);
      throw error;
    }
    return stored;
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
    const path = join(this.location, chunkFileName(chunkId) + CHUNK_EXT);
    try {
      await stat(path);
    } catch (error) {
      throw new NodeError(this.id, 'not_found', `node ${this.id}: chunk ${chunkId} is not in ${this.location}`, { cause: error });
    }
    return createReadStream(path, { highWaterMark: 1024 * 1024 });
  }

  async *list(): AsyncIterable<StoredChunk> {
    let names: string[];
    try {
      names = await readdir(this.location);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      if (!name.endsWith(META_EXT)) continue;
      try {
        yield JSON.parse(await readFile(join(this.location, name), 'utf8')) as StoredChunk;
      } catch {
        // a sidecar being replaced right now; it is listed on the next call
      }
    }
  }

  async close(): Promise<void> {}

  private ensureDir(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.location, '.tmp'), { recursive: true });
      const stats = await stat(this.location);
      if (!stats.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await this.removeAbandonedTemps();
    })();
    return this.ready;
  }

  /**
   * A writer killed mid-chunk leaves its .part behind; nothing lists it, but it takes space. A live writer
   * touches its file all the time, so one untouched for a while is abandoned (another run may share the folder).
   */
  private async removeAbandonedTemps(): Promise<void> {
    const dir = join(this.location, '.tmp');
    const cutoff = Date.now() - ABANDONED_AFTER_MS;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      const stats = await stat(path).catch(() => undefined);
      if (stats && stats.mtimeMs < cutoff) await rm(path, { force: true }).catch(() => undefined);
    }
  }

  private describe(error: unknown): string {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST') return `${this.location} is not a folder`;
    if (code === 'EACCES' || code === 'EPERM') return `no permission to write to ${this.location}`;
    if (code === 'ENOSPC') return `the disk holding ${this.location} is full`;
    return error instanceof Error ? error.message : String(error);
  }
}

function isOwnFsError(error: unknown): boolean {
  return typeof (error as NodeJS.ErrnoException).syscall === 'string' && ['rename', 'open', 'write', 'unlink', 'mkdir'].includes((error as NodeJS.ErrnoException).syscall ?? '');
}
