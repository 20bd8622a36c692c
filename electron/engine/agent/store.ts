// The agent's chunk store: `<dir>/<sub>/<safe name>.chunk` plus `<safe name>.chunk.json` beside it (metadata,
// written last). `<sub>` is one of 256 subfolders, the first two hex digits of the SHA-256 of the chunk's id (as a
// folder node's), so a million chunks make about 8,000 files a folder, not two million in one: one folder of
// hundreds of thousands of files slowed every create, rename and lookup in it. Incoming bodies go to
// `<dir>/.incoming/<sub>/` and are renamed into place only once their checksum is proven: on the same file system,
// so the rename is atomic, and one temp folder per subfolder, since every create and every rename out of a folder
// takes its lock (one temp folder for all made a folder node's create+rename 3-5x slower with two writers). Stores
// written before the subfolders keep each chunk's two files in `<dir>` itself: those are still found, listed, read
// and counted, and a chunk of theirs written again moves to its subfolder. An in-memory index (rebuilt from the
// sidecars of both layouts at start-up) answers lookups, lists and the quota without touching the disk.
import { randomUUID } from 'node:crypto';
import { link, lstat, mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { chunkFileName, chunkSubfolder, isSubfolderName, nameRoundTrips } from '../chunk-names.ts';
import { MadeFolders } from '../made-folders.ts';
import type { AgentLogger } from './log.ts';
import type { AgentChunkMeta } from './protocol.ts';

const INCOMING = '.incoming';
const DATA_SUFFIX = '.chunk';
const META_SUFFIX = '.chunk.json';
const LOCK = '.agent.lock';
const MAX_FILE_NAME_BYTES = 255;

export type CommitOutcome = { status: 'created' | 'exists' | 'replaced'; chunk: AgentChunkMeta } | { status: 'conflict'; existing: AgentChunkMeta };

export interface ChunkStoreOptions {
  maxBytes?: number;
  /** fsync chunk data before the rename (slower, survives power loss). */
  fsync?: boolean;
}

/** The store cannot keep this chunk for its own sake (its id), whatever the node's state: fail the chunk, not the node. */
export class ChunkRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkRefusedError';
  }
}

interface ChunkFiles {
  base: string;
  /** Two hex digits; undefined: the store folder itself (the layout before the subfolders). */
  subfolder: string | undefined;
  data: string;
  meta: string;
}

/** Where every chunk is written now. */
type SubfolderFiles = ChunkFiles & { subfolder: string };

export class ChunkStore {
  readonly dir: string;
  readonly incomingDir: string;
  readonly maxBytes: number | undefined;
  readonly fsync: boolean;
  private readonly log: AgentLogger;
  private readonly index = new Map<string, AgentChunkMeta>();
  private sortedIds: string[] | undefined;
  private held = 0;
  /** Bytes of uploads in progress counted against the quota: what has arrived so far. */
  private charged = 0;
  /** Per-file-name commit queue, so two uploads that name the same files never interleave their renames. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Size of the last upload refused for lack of space; the agent reports itself full until that much is free. */
  private refusedSize = 0;
  private locked = false;
  /** Ids whose files are in the store folder itself (written before the subfolders); every other id is in its subfolder. */
  private readonly flat = new Set<string>();
  /** The subfolders (and their .incoming/ twins) made or found by this store: each is made once, before its first use. */
  private readonly subfolders = new MadeFolders();

  constructor(dir: string, options: ChunkStoreOptions, log: AgentLogger) {
    this.dir = resolve(dir);
    this.incomingDir = join(this.dir, INCOMING);
    this.maxBytes = options.maxBytes;
    this.fsync = options.fsync ?? false;
    this.log = log;
  }

  /**
   * Creates the folders, removes temp files a killed agent left behind, and indexes the stored chunks: those in the
   * subfolders first, then those of the older layout in the store folder itself (a chunk in both was being moved
   * to its subfolder: that copy is the newer one, the other goes).
   */
  async open(): Promise<void> {
    await mkdir(this.incomingDir, { recursive: true });
    await this.lock();
    const leftovers = await this.removeUnfinishedUploads();
    if (leftovers > 0) this.log.log('info', 'removed unfinished uploads', { count: leftovers });

    const top = await readdir(this.dir, { withFileTypes: true });
    const counts = { skipped: 0, orphans: 0 };
    for (const entry of top) {
      if (entry.isDirectory() && isSubfolderName(entry.name)) await this.loadFolder(entry.name, counts);
    }
    await this.loadFolder(undefined, counts);
    this.log.log('info', 'store opened', { chunks: this.index.size, flatLayout: this.flat.size, bytesHeld: this.held, ...counts });
  }

  /**
   * Uploads in progress when the agent stopped, in .incoming/<sub>/ (and .incoming/ itself, where older versions
   * kept them): no other agent uses this folder (the lock), so they are all abandoned. The subfolders stay.
   */
  private async removeUnfinishedUploads(): Promise<number> {
    let removed = 0;
    for (const entry of await readdir(this.incomingDir, { withFileTypes: true })) {
      const path = join(this.incomingDir, entry.name);
      if (entry.isDirectory() && isSubfolderName(entry.name)) {
        for (const name of await readdir(path)) {
          await rm(join(path, name), { force: true, recursive: true });
          removed++;
        }
        continue;
      }
      await rm(path, { force: true, recursive: true });
      removed++;
    }
    return removed;
  }

  /** Indexes the chunks of one folder (`subfolder`, or the store folder itself), then removes its orphan data. */
  private async loadFolder(subfolder: string | undefined, counts: { skipped: number; orphans: number }): Promise<void> {
    const folder = this.folder(subfolder);
    for (const name of await readdir(folder)) {
      if (!name.endsWith(META_SUFFIX)) continue;
      try {
        await this.load(subfolder, name);
      } catch (err) {
        counts.skipped++;
        this.log.log('warn', 'ignoring unreadable chunk metadata', { file: this.shown(subfolder, name), error: (err as Error).message });
      }
    }
    counts.orphans += await this.removeOrphans(subfolder, new Set(await readdir(folder)));
  }

  /**
   * Indexes the chunk described by the sidecar `name` in `subfolder` (undefined: the store folder itself), moving a
   * chunk stored under an older name (or in another subfolder than its id's) to its own.
   */
  private async load(subfolder: string | undefined, name: string): Promise<void> {
    const meta = JSON.parse(await readFile(join(this.folder(subfolder), name), 'utf8')) as AgentChunkMeta;
    if (typeof meta.id !== 'string' || typeof meta.size !== 'number') throw new Error('no id or size');
    const oldBase = name.slice(0, -META_SUFFIX.length);
    if (subfolder === undefined && this.index.has(meta.id) && !this.flat.has(meta.id)) {
      await this.removeStaleFlatCopy(meta.id, oldBase);
      return;
    }
    const files = subfolder === undefined ? this.flatFilesFor(meta.id) : this.filesFor(meta.id);
    if (files.base !== oldBase || files.subfolder !== subfolder) await this.moveToOwnName(subfolder, oldBase, files);
    if (this.index.has(meta.id)) return; // moved to its own name before its own name came up in the listing
    const st = await stat(files.data);
    if (st.size !== meta.size) throw new Error(`data is ${st.size} bytes, metadata says ${meta.size}`);
    this.index.set(meta.id, meta);
    if (subfolder === undefined) this.flat.add(meta.id);
    this.held += meta.size;
  }

  /**
   * The files `base` in the store folder itself hold chunk `id`, which its subfolder holds too: the agent stopped
   * while moving it there, after the new copy was complete. Sidecar first, so a crash between leaves only orphan
   * data (removed at the next start).
   */
  private async removeStaleFlatCopy(id: string, base: string): Promise<void> {
    await unlink(this.contained(undefined, base + META_SUFFIX));
    await unlink(this.contained(undefined, base + DATA_SUFFIX)).catch(() => {});
    this.log.log('info', 'removed an older copy in the store folder itself; its subfolder holds the chunk', { id, file: base });
  }

  /**
   * Moves a chunk kept under an older name (cut through a surrogate pair, or `X.chunk` stored as `X`), or in a
   * subfolder not its id's, to the files its id has now. Hard links first, then the old names go: a crash at any
   * point leaves a pair that loads.
   */
  private async moveToOwnName(oldSubfolder: string | undefined, oldBase: string, files: ChunkFiles): Promise<void> {
    const oldData = join(this.folder(oldSubfolder), oldBase + DATA_SUFFIX);
    const oldMeta = join(this.folder(oldSubfolder), oldBase + META_SUFFIX);
    if (files.subfolder !== undefined) await this.ensureSubfolder(files.subfolder);
    for (const [from, to] of [[oldData, files.data], [oldMeta, files.meta]] as const) {
      try {
        await link(from, to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await sameFile(from, to))) throw new Error(`kept under an older name and ${basename(to)} is taken`, { cause: err });
      }
    }
    await unlink(oldMeta);
    await unlink(oldData);
    this.log.log('info', 'moved a chunk to its own file name', { from: this.shown(oldSubfolder, oldBase), to: this.shown(files.subfolder, files.base) });
  }

  /** Data files without a sidecar of the same name were never acknowledged (a crash mid-commit): they go. */
  private async removeOrphans(subfolder: string | undefined, names: Set<string>): Promise<number> {
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith(DATA_SUFFIX) || names.has(name + '.json')) continue;
      const path = join(this.folder(subfolder), name);
      try {
        if (!(await lstat(path)).isFile()) continue;
        await unlink(path);
        removed++;
        this.log.log('info', 'removed chunk data without metadata', { file: this.shown(subfolder, name) });
      } catch (err) {
        this.log.log('warn', 'could not remove chunk data without metadata', { file: this.shown(subfolder, name), error: (err as Error).message });
      }
    }
    return removed;
  }

  /** A folder chunks are kept in: a subfolder, or (undefined) the store folder itself. */
  private folder(subfolder: string | undefined): string {
    return subfolder === undefined ? this.dir : join(this.dir, subfolder);
  }

  /** A chunk file's name for the log, relative to the store folder. */
  private shown(subfolder: string | undefined, name: string): string {
    return subfolder === undefined ? name : `${subfolder}/${name}`;
  }

  /** Makes `<sub>/` and `.incoming/<sub>/` once (a failure is not remembered: the next upload tries again). */
  private ensureSubfolder(subfolder: string): Promise<void> {
    return this.subfolders.ensure(subfolder, () => [this.folder(subfolder), join(this.incomingDir, subfolder)]);
  }

  /** Releases the folder for another agent. */
  async close(): Promise<void> {
    if (this.locked) await unlink(join(this.dir, LOCK)).catch(() => {});
    this.locked = false;
  }

  /**
   * One agent per folder: a second one would delete the first one's uploads in progress at start-up and keep its
   * own counts. The lock holds the owner's pid; a lock whose process is gone (SIGKILL, crash) is taken over.
   */
  private async lock(): Promise<void> {
    const path = join(this.dir, LOCK);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
        this.locked = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(`another agent (pid ${pid}) is using ${this.dir}; give each agent its own --dir (if no agent is running, delete ${path})`);
      }
      this.log.log('warn', 'taking over a stale lock', { previousPid: pid || null });
      await unlink(path).catch(() => {});
    }
    throw new Error(`cannot lock ${this.dir}: ${path} keeps reappearing`);
  }

  get chunkCount(): number {
    return this.index.size;
  }

  get bytesHeld(): number {
    return this.held;
  }

  get(id: string): AgentChunkMeta | undefined {
    return this.index.get(id);
  }

  /** Up to `limit` chunks with ids after `after`, in id order. */
  page(after: string | undefined, limit: number): { chunks: AgentChunkMeta[]; next: string | null } {
    this.sortedIds ??= [...this.index.keys()].sort(compareIds);
    const ids = this.sortedIds;
    let start = 0;
    if (after !== undefined) {
      let lo = 0;
      let hi = ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareIds(ids[mid] as string, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
      start = lo;
    }
    const slice = ids.slice(start, start + limit);
    const chunks = slice.map((id) => this.index.get(id)).filter((m): m is AgentChunkMeta => m !== undefined);
    const next = start + limit < ids.length ? (slice[slice.length - 1] ?? null) : null;
    return { chunks, next };
  }

  /**
   * Free space as the agent reports it: disk free space (which already counts the bytes of uploads in progress,
   * being on disk), capped by what is left of the quota after stored chunks and the bytes charged to uploads.
   */
  async space(): Promise<{ freeBytes: number; diskFreeBytes: number; full: boolean }> {
    const fsStat = await statfs(this.dir);
    const diskFreeBytes = Number(fsStat.bavail) * Number(fsStat.bsize);
    let freeBytes = diskFreeBytes;
    if (this.maxBytes !== undefined) freeBytes = Math.min(freeBytes, Math.max(0, this.maxBytes - this.held - this.charged));
    const full = freeBytes === 0 || (this.refusedSize > 0 && freeBytes < this.refusedSize);
    return { freeBytes, diskFreeBytes, full };
  }

  /** Whether an upload of `size` bytes fits now; nothing is set aside for it (see charge). */
  async admits(size: number): Promise<boolean> {
    const { freeBytes } = await this.space();
    if (size > freeBytes) this.noteRefused(size);
    return size <= freeBytes;
  }

  /** Counts `bytes` that just arrived against the quota; false (nothing counted) when they would pass it. */
  charge(bytes: number): boolean {
    if (this.maxBytes !== undefined && this.held + this.charged + bytes > this.maxBytes) return false;
    this.charged += bytes;
    return true;
  }

  uncharge(bytes: number): void {
    this.charged = Math.max(0, this.charged - bytes);
  }

  noteRefused(size: number): void {
    this.refusedSize = Math.max(size, 1);
  }

  /**
   * Where an upload of `id` is received: in .incoming/<sub>/, made if need be. Rejects with ChunkRefusedError when
   * the id cannot be kept here.
   */
  async tempPath(id: string): Promise<string> {
    const files = this.filesFor(id);
    await this.ensureSubfolder(files.subfolder);
    return join(this.incomingDir, files.subfolder, `${files.base}.${randomUUID()}.part`);
  }

  /** Throws ChunkRefusedError when `id` cannot be kept under a file name that reads back as itself. */
  checkId(id: string): void {
    this.filesFor(id);
  }

  /** Where chunk `id`'s data is: in the store folder itself for a chunk stored there before the subfolders. */
  dataPath(id: string): string {
    return this.storedFiles(id).data;
  }

  /**
   * Chunk `id`'s metadata and its data file opened for reading, taken together between commits of its files, so a
   * copy being replaced meanwhile never pairs one copy's metadata with the other's bytes (the handle keeps the
   * bytes it opened). Undefined when the chunk is not stored; rejects when its data file cannot be opened.
   */
  async openChunk(id: string): Promise<{ meta: AgentChunkMeta; handle: FileHandle } | undefined> {
    if (!this.index.has(id)) return undefined;
    return this.withLock(commitKey(this.filesFor(id)), async () => {
      const meta = this.index.get(id);
      return meta && { meta, handle: await open(this.dataPath(id), 'r') };
    });
  }

  /** The files of a stored chunk, in whichever layout it was stored. */
  private storedFiles(id: string): ChunkFiles {
    return this.flat.has(id) ? this.flatFilesFor(id) : this.filesFor(id);
  }

  /**
   * The files chunk `id` is written to, in its subfolder. Every id has names of its own: the encoding is one-to-one,
   * `.chunk` and `.chunk.json` end differently, and only long names (over 200 bytes, ending in `~` and a hash)
   * contain `~`. A name must read back from the file system as itself, or the chunk would be acknowledged and then
   * lost at the next start.
   */
  private filesFor(id: string): SubfolderFiles {
    const base = this.baseFor(id);
    const subfolder = chunkSubfolder(id);
    return { base, subfolder, data: this.contained(subfolder, base + DATA_SUFFIX), meta: this.contained(subfolder, base + META_SUFFIX) };
  }

  /** The files chunk `id` has in the layout before the subfolders: in the store folder itself. */
  private flatFilesFor(id: string): ChunkFiles {
    const base = this.baseFor(id);
    return { base, subfolder: undefined, data: this.contained(undefined, base + DATA_SUFFIX), meta: this.contained(undefined, base + META_SUFFIX) };
  }

  private baseFor(id: string): string {
    const base = chunkFileName(id);
    if (!nameRoundTrips(base) || Buffer.byteLength(base + META_SUFFIX) > MAX_FILE_NAME_BYTES) {
      throw new ChunkRefusedError(`chunk id ${JSON.stringify(id.slice(0, 200))} has no file name that reads back as itself`);
    }
    return base;
  }

  /**
   * Defence in depth behind chunkFileName and chunkSubfolder: the result must be a plain file name directly inside
   * the store folder or one of its two-hex-digit subfolders.
   */
  private contained(subfolder: string | undefined, name: string): string {
    const folder = this.folder(subfolder);
    const full = resolve(folder, name);
    if ((subfolder !== undefined && !isSubfolderName(subfolder)) || basename(name) !== name || name.startsWith('.') || !full.startsWith(this.dir + sep)) {
      throw new Error(`chunk file name ${JSON.stringify(this.shown(subfolder, name))} would leave the store folder`);
    }
    return full;
  }

  /**
   * Moves a verified temp file into place. Same id and checksum as a stored copy: the temp file is dropped and the
   * stored copy is left untouched. Different checksum: replaced when the upload comes from another source version
   * (sourceEtag) or covers another range, otherwise a conflict unless `replace`. Whatever happens, the temp file is
   * gone when this returns. On failure (disk full: ENOSPC) nothing of the new copy stays and a stored copy is kept.
   * A chunk stored in the store folder itself (before the subfolders) is written to its subfolder and its old files
   * then go.
   */
  async commit(meta: AgentChunkMeta, tempFile: string, replace: boolean): Promise<CommitOutcome> {
    try {
      const files = this.filesFor(meta.id);
      await this.ensureSubfolder(files.subfolder);
      return await this.withLock(commitKey(files), async () => {
        const existing = this.index.get(meta.id);
        // `replace` rewrites even an identical-looking copy: repair sends it when the bytes on disk were damaged.
        if (existing && !replace && existing.checksum.algorithm === meta.checksum.algorithm && existing.checksum.hex === meta.checksum.hex && existing.size === meta.size) {
          return { status: 'exists', chunk: existing };
        }
        // A different source version or range under the same id is a new chunk definition (the source changed, or the
        // chunk size did): it replaces the stored copy. Same version and range with other bytes is a real conflict.
        const redefined = existing !== undefined && (existing.sourceEtag !== meta.sourceEtag || existing.offset !== meta.offset || existing.size !== meta.size);
        if (existing && !replace && !redefined) return { status: 'conflict', existing };
        const movesOut = existing !== undefined && this.flat.has(meta.id);
        if (!existing || movesOut) await this.refuseAlias(meta.id, files);
        try {
          await this.install(meta, tempFile, files, existing !== undefined && !movesOut);
        } catch (err) {
          if (existing && !(await this.intact(existing, this.storedFiles(existing.id)))) this.forget(existing, 'its files were lost in a failed replace');
          throw err;
        }
        if (movesOut) await this.dropFlatCopy(meta.id);
        if (existing) this.held -= existing.size;
        else this.sortedIds = undefined;
        this.index.set(meta.id, meta);
        this.held += meta.size;
        return { status: existing ? 'replaced' : 'created', chunk: meta };
      });
    } finally {
      await unlink(tempFile).catch(() => {});
    }
  }

  /**
   * Once its copy in its subfolder is complete, a chunk's files in the store folder itself are stale: sidecar
   * first, so a crash between leaves only orphan data (and a crash before, a copy in both places: the subfolder's
   * wins at the next start).
   */
  private async dropFlatCopy(id: string): Promise<void> {
    const old = this.flatFilesFor(id);
    this.flat.delete(id);
    try {
      await unlink(old.meta);
      await unlink(old.data);
    } catch (err) {
      this.log.log('warn', 'could not remove the older copy of a chunk moved to its subfolder', { id, error: (err as Error).message });
    }
  }

  /**
   * Sidecar first, into .incoming/<sub>/: the one step that needs free space, taken before anything stored is
   * touched. Then the renames, each undone if a later one fails.
   */
  private async install(meta: AgentChunkMeta, tempFile: string, files: SubfolderFiles, replacing: boolean): Promise<void> {
    const staged = join(this.incomingDir, files.subfolder, randomUUID());
    const metaTemp = `${staged}.json.part`;
    try {
      await writeFile(metaTemp, `${JSON.stringify(meta, null, 2)}\n`, { flag: 'wx', flush: this.fsync });
      if (replacing) await this.swapIn(tempFile, metaTemp, files, staged);
      else {
        await rename(tempFile, files.data);
        await rename(metaTemp, files.meta).catch(async (err: unknown) => {
          await unlink(files.data).catch(() => {});
          throw err;
        });
      }
    } finally {
      await unlink(metaTemp).catch(() => {});
    }
  }

  /**
   * Replaces a stored chunk's files. The old sidecar steps aside first, so a crash never pairs old metadata with
   * new bytes (the chunk is then absent and its data goes at the next start). The old bytes keep a second name (a
   * hard link) until the new sidecar is in place, so a failure at any step puts the stored copy back.
   */
  private async swapIn(tempFile: string, metaTemp: string, files: ChunkFiles, staged: string): Promise<void> {
    const asideData = `${staged}.old${DATA_SUFFIX}`;
    const asideMeta = `${staged}.old${META_SUFFIX}`;
    // No hard links on this file system: the old bytes cannot be kept aside, and a failure past the data rename loses them.
    const linked = await link(files.data, asideData).then(
      () => true,
      () => false,
    );
    try {
      await rename(files.meta, asideMeta);
      try {
        await rename(tempFile, files.data);
      } catch (err) {
        await rename(asideMeta, files.meta);
        throw err;
      }
      try {
        await rename(metaTemp, files.meta);
      } catch (err) {
        if (linked) {
          await rename(asideData, files.data);
          await rename(asideMeta, files.meta);
        } else await unlink(files.data).catch(() => {});
        throw err;
      }
    } finally {
      await Promise.all([unlink(asideMeta).catch(() => {}), linked ? unlink(asideData).catch(() => {}) : undefined]);
    }
  }

  /**
   * An id whose names the file system treats as another stored id's (a case-insensitive or normalizing file
   * system, or two long ids whose 64-bit name hashes meet) must not land on that id's files.
   */
  private async refuseAlias(id: string, files: ChunkFiles): Promise<void> {
    const text = await readFile(files.meta, 'utf8').catch(() => undefined);
    if (text === undefined) return;
    let other: unknown;
    try {
      other = (JSON.parse(text) as { id?: unknown }).id;
    } catch {
      return;
    }
    if (typeof other === 'string' && other !== id && this.index.has(other)) {
      throw new ChunkRefusedError(`chunk id ${JSON.stringify(id.slice(0, 200))} would be stored in the files of chunk ${JSON.stringify(other.slice(0, 200))} on this file system`);
    }
  }

  /** Whether a stored chunk's files are still in place after a failed replace. */
  private async intact(chunk: AgentChunkMeta, files: ChunkFiles): Promise<boolean> {
    try {
      const [data] = await Promise.all([stat(files.data), stat(files.meta)]);
      return data.size === chunk.size;
    } catch {
      return false;
    }
  }

  private forget(chunk: AgentChunkMeta, why: string): void {
    this.log.log('error', 'chunk dropped from the index', { id: chunk.id, why });
    this.index.delete(chunk.id);
    this.held -= chunk.size;
    this.sortedIds = undefined;
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

/** Commits of names a case-insensitive or normalizing file system could treat as one are queued together. */
function commitKey(files: ChunkFiles): string {
  return files.base.normalize('NFC').toLowerCase();
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([stat(a), stat(b)]);
  return x.ino === y.ino && x.dev === y.dev;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
