// The agent's chunk store: `<dir>/<safe name>.chunk` plus `<safe name>.chunk.json` (metadata, written last),
// the same layout as a folder node. Incoming bodies go to `<dir>/.incoming/` and are renamed into place only once
// their checksum is proven. An in-memory index (rebuilt from the sidecars at start-up) answers lookups, lists and
// the quota without touching the disk.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { chunkFileName } from '../nodes/safe-name.ts';
import type { AgentLogger } from './log.ts';
import type { AgentChunkMeta } from './protocol.ts';

const INCOMING = '.incoming';
const DATA_SUFFIX = '.chunk';
const META_SUFFIX = '.chunk.json';
const LOCK = '.agent.lock';

export type CommitOutcome = { status: 'created' | 'exists' | 'replaced'; chunk: AgentChunkMeta } | { status: 'conflict'; existing: AgentChunkMeta };

export interface ChunkStoreOptions {
  maxBytes?: number;
  /** fsync chunk data before the rename (slower, survives power loss). */
  fsync?: boolean;
}

export class ChunkStore {
  readonly dir: string;
  readonly incomingDir: string;
  readonly maxBytes: number | undefined;
  readonly fsync: boolean;
  private readonly log: AgentLogger;
  private readonly index = new Map<string, AgentChunkMeta>();
  private sortedIds: string[] | undefined;
  private held = 0;
  private reserved = 0;
  /** Per-id commit queue, so two uploads of the same id never interleave their renames. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Size of the last upload refused for lack of space; the agent reports itself full until that much is free. */
  private refusedSize = 0;
  private locked = false;

  constructor(dir: string, options: ChunkStoreOptions, log: AgentLogger) {
    this.dir = resolve(dir);
    this.incomingDir = join(this.dir, INCOMING);
    this.maxBytes = options.maxBytes;
    this.fsync = options.fsync ?? false;
    this.log = log;
  }

  /** Creates the folders, removes temp files a killed agent left behind, and indexes the stored chunks. */
  async open(): Promise<void> {
    await mkdir(this.incomingDir, { recursive: true });
    await this.lock();
    const leftovers = await readdir(this.incomingDir);
    for (const name of leftovers) await rm(join(this.incomingDir, name), { force: true, recursive: true });
    if (leftovers.length > 0) this.log.log('info', 'removed unfinished uploads', { count: leftovers.length });

    let skipped = 0;
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith(META_SUFFIX)) continue;
      try {
        const meta = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as AgentChunkMeta;
        if (typeof meta.id !== 'string' || this.baseName(meta.id) + META_SUFFIX !== name) throw new Error('id does not match file name');
        const st = await stat(this.dataPath(meta.id));
        if (st.size !== meta.size) throw new Error(`data is ${st.size} bytes, metadata says ${meta.size}`);
        this.index.set(meta.id, meta);
        this.held += meta.size;
      } catch (err) {
        skipped++;
        this.log.log('warn', 'ignoring unreadable chunk metadata', { file: name, error: (err as Error).message });
      }
    }
    this.log.log('info', 'store opened', { chunks: this.index.size, bytesHeld: this.held, skipped });
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

  /** Free space as the agent reports it: disk free space, capped by what is left of the quota. */
  async space(): Promise<{ freeBytes: number; diskFreeBytes: number; full: boolean }> {
    const fsStat = await statfs(this.dir);
    const diskFreeBytes = Number(fsStat.bavail) * Number(fsStat.bsize);
    let freeBytes = Math.max(0, diskFreeBytes - this.reserved);
    if (this.maxBytes !== undefined) freeBytes = Math.min(freeBytes, Math.max(0, this.maxBytes - this.held - this.reserved));
    const full = freeBytes === 0 || (this.refusedSize > 0 && freeBytes < this.refusedSize);
    return { freeBytes, diskFreeBytes, full };
  }

  /** Reserves room for an upload of `size` bytes; false when the quota or the disk cannot take it. */
  async reserve(size: number): Promise<boolean> {
    const { freeBytes } = await this.space();
    if (size > freeBytes) {
      this.refusedSize = Math.max(size, 1);
      return false;
    }
    this.reserved += size;
    return true;
  }

  release(size: number): void {
    this.reserved = Math.max(0, this.reserved - size);
  }

  noteRefused(size: number): void {
    this.refusedSize = Math.max(size, 1);
  }

  tempPath(id: string): string {
    return join(this.incomingDir, `${this.baseName(id).slice(0, 100)}.${randomUUID()}.part`);
  }

  dataPath(id: string): string {
    return this.contained(this.baseName(id) + DATA_SUFFIX);
  }

  private metaPath(id: string): string {
    return this.contained(this.baseName(id) + META_SUFFIX);
  }

  private baseName(id: string): string {
    const name = chunkFileName(id);
    return name.endsWith(DATA_SUFFIX) ? name.slice(0, -DATA_SUFFIX.length) : name;
  }

  /** Defence in depth behind chunkFileName: the result must be a plain file name directly inside the store folder. */
  private contained(name: string): string {
    const full = resolve(this.dir, name);
    if (basename(name) !== name || name.startsWith('.') || !full.startsWith(this.dir + sep)) {
      throw new Error(`chunk file name ${JSON.stringify(name)} would leave the store folder`);
    }
    return full;
  }

  /**
   * Moves a verified temp file into place. Same id and checksum as a stored copy: the temp file is dropped and the
   * stored copy is left untouched. Different checksum: replaced when the upload comes from another source version
   * (sourceEtag) or covers another range, otherwise a conflict unless `replace`. The metadata sidecar is removed
   * before and written after the data rename, so a crash in between leaves a chunk without metadata, which the
   * index ignores.
   */
  async commit(meta: AgentChunkMeta, tempFile: string, replace: boolean): Promise<CommitOutcome> {
    return this.withLock(meta.id, async () => {
      const existing = this.index.get(meta.id);
      if (existing && existing.checksum.algorithm === meta.checksum.algorithm && existing.checksum.hex === meta.checksum.hex && existing.size === meta.size) {
        await unlink(tempFile).catch(() => {});
        return { status: 'exists', chunk: existing };
      }
      // A different source version or range under the same id is a new chunk definition (the source changed, or the
      // chunk size did): it replaces the stored copy. Same version and range with other bytes is a real conflict.
      const redefined = existing !== undefined && (existing.sourceEtag !== meta.sourceEtag || existing.offset !== meta.offset || existing.size !== meta.size);
      if (existing && !replace && !redefined) {
        await unlink(tempFile).catch(() => {});
        return { status: 'conflict', existing };
      }
      const metaPath = this.metaPath(meta.id);
      if (existing) {
        await unlink(metaPath).catch(() => {});
        this.index.delete(meta.id);
        this.held -= existing.size;
      }
      await rename(tempFile, this.dataPath(meta.id));
      const metaTemp = join(this.incomingDir, `${randomUUID()}.json.part`);
      await writeFile(metaTemp, `${JSON.stringify(meta, null, 2)}\n`, { flush: this.fsync });
      await rename(metaTemp, metaPath);
      if (!existing) this.sortedIds = undefined;
      this.index.set(meta.id, meta);
      this.held += meta.size;
      return { status: existing ? 'replaced' : 'created', chunk: meta };
    });
  }

  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
