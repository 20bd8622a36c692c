// The local folder standing in for a bucket (the original's local simulation). Recursive, key order,
// and nothing reachable through a symlink that leaves the folder (symlink loops are skipped too).
import { createReadStream } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { keptCachedPerReader, ReadOnce } from '../hash/drop-cache.js';
import { forEachLimited } from '../limit.ts';
import { StorageError } from './driver.ts';
import type { ByteRange, ListPage, LocalFile, ObjectInfo, ReadResult, SourceInfo, StorageDriver, StorageErrorCode } from './driver.ts';

const READ_BUFFER_BYTES = 256 * 1024;

export function localEtag(stats: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>): string {
  return `${stats.size}-${Math.floor(stats.mtimeMs * 1000)}-${stats.ino}`;
}

/** Entries stat'ed (or symlinks resolved) at once while listing (one at a time, a million files took 40 s here). */
const STAT_AHEAD = 32;

/** Files per listing page by default, as S3 pages. */
const PAGE_SIZE = 1000;

/** Listings a driver keeps open at once: a listing abandoned midway is dropped once this many newer ones are open. */
const OPEN_LISTINGS = 16;

export interface LocalDriverOptions {
  /** Files per listing page (default 1000). */
  pageSize?: number;
  /**
   * Stats a page's files elsewhere (HashPool.statFiles): per path, a regular file's size, mtime and inode, or
   * undefined. Without it, or when it fails, each file is stat'ed here with a promise.
   */
  statFiles?: (paths: readonly string[]) => Promise<(Pick<Stats, 'size' | 'mtimeMs' | 'ino'> | undefined)[]>;
  /** Bytes read here that stay in the page cache; what is read after them is dropped once read (default: an eighth of memory). */
  keepCachedBytes?: number;
}

/** A folder entry that may be listed: a file, or a folder to walk. A symlink carries the real path it resolves to. */
interface Entry {
  name: string;
  /** What the entry sorts by among its siblings: a folder as `name/`, so that the walk gives keys in string order. */
  sortKey: string;
  kind: 'file' | 'dir';
  real?: string;
  /** A name that is not valid UTF-8 (see unreadableNames): listed as such, never read or walked. */
  unreadable?: string;
}

/** One folder of the walk: its entries, sorted, and the next one to take. */
interface Frame {
  realDir: string;
  keyPrefix: string;
  entries: Entry[];
  next: number;
}

/** An open listing: the folders being walked (root first) and the files found but not returned yet. */
interface Listing {
  prefix: string;
  rootReal: string;
  stack: Frame[];
  /** Real paths of the folders walked so far: a folder reached again (a symlink loop, a second link to it) is skipped. */
  visited: Set<string>;
  /** Kept across a call that failed, so that its retry goes on from where it stopped. */
  found: Found[];
  page: number;
}

/** A file the walk found, its stat to come; an unreadable one is listed as it is. */
interface Found {
  key: string;
  path: string;
  unreadable?: ObjectInfo;
}

/** A key whose every part is a plain name: no leading, trailing or double `/`, no `.` or `..` part. */
const PLAIN_KEY = /^(?!\.\.?(?:\/|$))(?:[^/]+\/(?!\.\.?(?:\/|$)))*[^/]+$/;

export class LocalDriver implements StorageDriver {
  readonly info: SourceInfo;
  private readonly root: string;
  private readonly pageSize: number;
  private readonly listings = new Map<number, Listing>();
  private lastListingId = 0;
  /** The folder's real path, resolved once for every file's path (sourceRoot); a listing resolves its own. */
  private realRoot: Promise<string> | undefined;
  /** realRoot once it has resolved. */
  private knownRoot: string | undefined;
  private readonly statFiles: LocalDriverOptions['statFiles'];
  /** The files this driver streams (ranges not copied on a hashing thread): read once, as the threads' are. */
  private readonly reads: ReadOnce;

  constructor(root: string, options: LocalDriverOptions = {}) {
    this.root = root;
    this.pageSize = Math.max(1, Math.floor(options.pageSize ?? PAGE_SIZE));
    this.statFiles = options.statFiles;
    this.reads = new ReadOnce(options.keepCachedBytes ?? keptCachedPerReader());
    this.info = { kind: 'local', location: root, bucket: root };
  }

  /**
   * Pages of at most `pageSize` files, in the order sorting every key as a JS string would give, without holding
   * the tree: the walk is depth first with each folder's entries sorted, a folder as `name/` (`a.txt` < `a/b` <
   * `a0`, as '.' < '/' < '0'), and a listing holds only the sorted entries of the folders it is inside. The page
   * token names a listing the driver keeps open and the page it is at; no token starts a new listing.
   */
  async listPage(prefix: string, pageToken: string | undefined, signal?: AbortSignal): Promise<ListPage> {
    signal?.throwIfAborted();
    const { id, listing } = pageToken === undefined ? await this.startListing(prefix) : this.openListing(prefix, pageToken);
    try {
      const objects = await this.nextPage(listing, signal);
      if (listing.stack.length === 0) {
        this.listings.delete(id);
        return { objects };
      }
      listing.page++;
      return { objects, nextPageToken: `${id}.${listing.page}` };
    } catch (error) {
      // A transient failure is retried with the same token: the listing stays open for it.
      if (pageToken === undefined || this.errorCode(error) !== 'transient') this.listings.delete(id);
      throw error;
    }
  }

  async stat(key: string): Promise<ObjectInfo> {
    const path = await this.resolveInside(key);
    const stats = await stat(path);
    if (!stats.isFile()) throw Object.assign(new Error(`${key} is not a file`), { code: 'ENOENT' });
    return { key, size: stats.size, etag: localEtag(stats) };
  }

  async read(key: string, range: ByteRange, options: { ifMatch?: string; signal?: AbortSignal }): Promise<ReadResult> {
    const path = await this.resolveInside(key);
    const handle = await open(path, 'r');
    try {
      const etag = localEtag(await handle.stat());
      if (options.ifMatch && options.ifMatch !== etag) {
        throw new StorageError({ code: 'precondition_failed', store: 'local', bucket: this.root, key, message: `${key} changed since it was listed`, hint: 'the file was modified during the ingest; run again once it is stable.' });
      }
      if (range.length === 0) {
        await handle.close();
        return { stream: emptyStream(), etag };
      }
      const stream = createReadStream('', { fd: handle, start: range.offset, end: range.offset + range.length - 1, highWaterMark: READ_BUFFER_BYTES, signal: options.signal });
      stream.once('end', () => this.reads.done(handle.fd, range.offset, range.length)); // before autoClose closes it
      return { stream, etag };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * The key's path under the folder's real path, neither resolved nor checked here: the hashing thread that opens it
   * checks that the file it opened lies inside the folder (FileCopyJob.inside), so a symlink or `..` leading out
   * fails there, as does a file that vanished. That check is one readlink per file on Linux, where resolving the
   * path here took one per path component, on every chunk.
   */
  async localPath(key: string): Promise<LocalFile> {
    const inside = this.knownRoot ?? (await this.sourceRoot());
    // A key of plain names (no empty, `.` or `..` part) is the path as it is; path.join normalizes only the rest.
    const path = PLAIN_KEY.test(key) ? (inside.endsWith(sep) ? inside : inside + sep) + key : join(inside, ...key.split('/'));
    return { path, inside };
  }

  errorCode(error: unknown): StorageErrorCode {
    if (error instanceof StorageError) return error.code;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'not_found';
    if (code === 'EACCES' || code === 'EPERM') return 'permission_denied';
    if (code === 'EMFILE' || code === 'ENFILE' || code === 'EAGAIN' || code === 'EBUSY') return 'transient';
    return 'unknown';
  }

  async close(): Promise<void> {
    this.listings.clear();
  }

  /** Resolves a key to a path and refuses anything (.., absolute, symlink) that lands outside the root. */
  private async resolveInside(key: string): Promise<string> {
    const rootReal = await this.sourceRoot();
    const candidate = join(rootReal, ...key.split('/'));
    const real = await realpath(candidate);
    if (real !== rootReal && !real.startsWith(rootReal + sep)) {
      throw new StorageError({ code: 'permission_denied', store: 'local', bucket: this.root, key, message: `${key} resolves outside the source folder`, hint: 'symlinks and .. may not leave the data folder.' });
    }
    return real;
  }

  /** rootReal() once for the driver's files (a failure is not kept: the next call tries again). */
  private sourceRoot(): Promise<string> {
    if (this.realRoot) return this.realRoot;
    const resolving = this.rootReal();
    this.realRoot = resolving;
    resolving.then(
      (real) => (this.knownRoot = real),
      () => {
        if (this.realRoot === resolving) this.realRoot = undefined;
      },
    );
    return resolving;
  }

  private async rootReal(): Promise<string> {
    try {
      const real = await realpath(this.root);
      if (!(await stat(real)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      return real;
    } catch (error) {
      throw new StorageError({
        code: 'bucket_not_found',
        store: 'local',
        bucket: this.root,
        message: `the data folder ${this.root} does not exist or is not a folder`,
        hint: 'create it, point local_simulation/path at the right folder, or run `npm run make-test-data`.',
        cause: error,
      });
    }
  }

  private async startListing(prefix: string): Promise<{ id: number; listing: Listing }> {
    const rootReal = await this.rootReal();
    const root = await this.readFolder(rootReal, '', prefix, rootReal);
    const listing: Listing = { prefix, rootReal, stack: root ? [root] : [], visited: new Set([rootReal]), found: [], page: 0 };
    const id = ++this.lastListingId;
    this.listings.set(id, listing);
    for (const oldest of this.listings.keys()) {
      if (this.listings.size <= OPEN_LISTINGS) break;
      this.listings.delete(oldest);
    }
    return { id, listing };
  }

  private openListing(prefix: string, pageToken: string): { id: number; listing: Listing } {
    const [id, page] = pageToken.split('.').map(Number);
    const listing = id === undefined ? undefined : this.listings.get(id);
    if (id === undefined || !listing || listing.page !== page || listing.prefix !== prefix) {
      throw new StorageError({
        code: 'invalid_argument',
        store: 'local',
        bucket: this.root,
        message: `the listing page ${pageToken} is not open (under prefix "${prefix}")`,
        hint: `a local listing is continued only from the page it is at, and at most ${OPEN_LISTINGS} stay open at once; list again from the start.`,
      });
    }
    return { id, listing };
  }

  /** Walks on until `pageSize` files are found or the walk ends, then stats them. */
  private async nextPage(listing: Listing, signal: AbortSignal | undefined): Promise<ObjectInfo[]> {
    while (listing.found.length < this.pageSize) {
      const frame = listing.stack.at(-1);
      if (!frame) break;
      const entry = frame.entries[frame.next];
      if (!entry) {
        listing.stack.pop();
        continue;
      }
      const key = frame.keyPrefix + entry.name;
      const real = entry.real ?? join(frame.realDir, entry.name);
      if (entry.unreadable !== undefined) {
        listing.found.push({ key, path: real, unreadable: { key, size: 0, unreadable: entry.unreadable } });
        frame.next++;
        continue;
      }
      if (entry.kind === 'file') {
        listing.found.push({ key, path: real });
        frame.next++;
        continue;
      }
      if (!listing.visited.has(real)) {
        signal?.throwIfAborted();
        // A failure here leaves the entry next in line, for a retry.
        const folder = await this.readFolder(real, `${key}/`, listing.prefix, listing.rootReal);
        listing.visited.add(real);
        if (folder) listing.stack.push(folder);
      }
      frame.next++;
    }
    // Folders already done are left now, so that a walk ending on a full page says so instead of giving an empty one.
    for (let top = listing.stack.at(-1); top && top.next >= top.entries.length; top = listing.stack.at(-1)) listing.stack.pop();
    const found = listing.found;
    const objects = (await this.statElsewhere(found)) ?? (await this.statHere(found));
    listing.found = [];
    return objects.map((o, i) => found[i]!.unreadable ?? o).filter((o) => o !== undefined);
  }

  /** The files' objects from options.statFiles; undefined if there is none or it failed. */
  private async statElsewhere(found: readonly Found[]): Promise<(ObjectInfo | undefined)[] | undefined> {
    if (!this.statFiles) return undefined;
    try {
      const stats = await this.statFiles(found.map((f) => f.path));
      return found.map(({ key }, i) => {
        const file = stats[i];
        return file ? { key, size: file.size, etag: localEtag(file) } : undefined;
      });
    } catch {
      return undefined;
    }
  }

  private async statHere(found: readonly Found[]): Promise<(ObjectInfo | undefined)[]> {
    const objects = new Array<ObjectInfo | undefined>(found.length);
    await forEachLimited(found, STAT_AHEAD, async ({ key, path }, i) => {
      try {
        const stats = await stat(path);
        if (stats.isFile()) objects[i] = { key, size: stats.size, etag: localEtag(stats) };
      } catch {
        // a file that vanished since its folder was read
      }
    });
    return objects;
  }

  /**
   * The entries of a folder that may hold keys under `prefix`, sorted, symlinks resolved (a dangling one, or one
   * leading out of the root, is left out). A folder other than the root that vanished since its parent was read
   * gives undefined, as a vanished file is left out.
   */
  private async readFolder(realDir: string, keyPrefix: string, prefix: string, rootReal: string): Promise<Frame | undefined> {
    let dirents;
    try {
      dirents = await readdir(realDir, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (realDir !== rootReal && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined;
      throw error;
    }
    const mayHold = (key: string): boolean => key.startsWith(prefix) || prefix.startsWith(key);
    const entries: Entry[] = [];
    const links: string[] = [];
    const unreadable = dirents.some((d) => d.name.includes('\uFFFD')) ? await unreadableNames(realDir, rootReal) : undefined;
    for (const dirent of dirents) {
      const key = keyPrefix + dirent.name;
      const why = unreadable?.get(dirent.name);
      if (why !== undefined) {
        // Listed as one object, a folder too (nothing under it can be named): once, however many names read the same.
        const listed = (dirent.isDirectory() ? `${key}/` : key).startsWith(prefix);
        if (listed && !entries.some((e) => e.name === dirent.name)) entries.push({ name: dirent.name, sortKey: dirent.name, kind: 'file', unreadable: why });
      } else if (dirent.isSymbolicLink()) {
        if (mayHold(key) || mayHold(`${key}/`)) links.push(dirent.name);
      } else if (dirent.isFile()) {
        if (key.startsWith(prefix)) entries.push({ name: dirent.name, sortKey: dirent.name, kind: 'file' });
      } else if (dirent.isDirectory()) {
        if (mayHold(`${key}/`)) entries.push({ name: dirent.name, sortKey: `${dirent.name}/`, kind: 'dir' });
      }
    }
    const resolved = new Array<Entry | undefined>(links.length);
    await forEachLimited(links, STAT_AHEAD, async (name, i) => {
      try {
        const real = await realpath(join(realDir, name));
        if (real !== rootReal && !real.startsWith(rootReal + sep)) return;
        const stats = await stat(real);
        const key = keyPrefix + name;
        if (stats.isFile() && key.startsWith(prefix)) resolved[i] = { name, sortKey: name, kind: 'file', real };
        else if (stats.isDirectory() && mayHold(`${key}/`)) resolved[i] = { name, sortKey: `${name}/`, kind: 'dir', real };
      } catch {
        // a dangling link, a link loop, or a link that vanished while listing
      }
    });
    for (const entry of resolved) if (entry) entries.push(entry);
    entries.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    return { realDir, keyPrefix, entries, next: 0 };
  }
}

/**
 * The names in a folder that are not valid UTF-8, by the text readdir gives for them (each such byte read as U+FFFD),
 * with why no key can name them. A valid name that reads the same (one holding U+FFFD itself) is among them: its key
 * would be shared. Found only when a name holds U+FFFD (rare), by reading the folder's names again as bytes.
 */
async function unreadableNames(realDir: string, rootReal: string): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (const raw of await readdir(realDir, { encoding: 'buffer' })) {
    const text = raw.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(raw) || names.has(text)) continue;
    const shown = [...raw].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    const where = join(relative(rootReal, realDir), shown);
    names.set(
      text,
      `${where} in the source folder ${rootReal}: its name is not valid UTF-8 (bytes shown as \\xNN), so no key can name it exactly (as text it reads ${JSON.stringify(text)}); it was not ingested. Fix: rename it to valid UTF-8 (e.g. with convmv).`,
    );
  }
  return names;
}

function emptyStream(): Readable {
  return Readable.from([]);
}
