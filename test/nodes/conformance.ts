// The NodeTarget conformance suite: the same cases against every kind of node (a local folder, a node agent), through
// the NodeTarget interface the engine uses, as test/storage/conformance.ts does for stores. Each kind gets its own
// test file that calls defineNodeSuite(kind, factory). Optional fast paths (writeHashing, writeFromFile,
// writeFilesFromDisk) run the write cases too, and checksumStored and copyStoredInto their own, for the kinds that have them.
import { createHash, randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chunkFileName } from '../../electron/engine/chunk-names.ts';
import { FileCopyError, HashPool } from '../../electron/engine/hash/pool.ts';
import { chunkSubfolder } from '../../electron/engine/chunk-names.ts';
import { NodeError, isNodeLevelError } from '../../electron/engine/nodes/node.ts';
import type { ChunkMeta, NodeTarget, StoredChunk } from '../../electron/engine/nodes/node.ts';
import { tempDir } from '../helpers/temp.ts';
import { KiB, MiB, bytesFor, flipFirstByte, md5, md5Checksum, readAll, sourceError, streamOf, within } from './chunks.ts';
import { SUBFOLDER } from '../helpers/agent-store.ts';

export type WritePath = 'write' | 'writeHashing' | 'writeFromFile' | 'writeFilesFromDisk';

/** One node opened for one test. */
export interface NodeUnderTest {
  node: NodeTarget;
  /**
   * Files in the node's storage that belong to no stored chunk: temp files of uploads, a chunk's data without its
   * metadata or the reverse, anything else the node left behind.
   */
  leftovers(): Promise<string[]>;
  /** Stops the node and opens it again on the same storage (a new node object); resolves with the new one. */
  restart(): Promise<NodeTarget>;
  /** Changes one byte of a stored chunk's data behind the node's back (a disk going bad), size unchanged. */
  damage(chunkId: string): Promise<void>;
}

export interface NodeFactory {
  /** The write paths this kind implements: `write` always, and its optional fast paths. */
  writePaths: WritePath[];
  /**
   * What NodeTarget.write documents for the same id from the same source version with other bytes: a folder node
   * replaces its copy; an agent answers a conflict (it replaces only for a new source version or range).
   */
  sameVersionOtherBytes: 'replaces' | 'conflict';
  /** Whether it reads stored copies on a hashing thread (NodeTarget.checksumStored, copyStoredInto: nodes on this machine). */
  readsStoredOnThreads: boolean;
  /** A new, empty node. */
  open(): Promise<NodeUnderTest>;
  /** A new, empty node with room for `bytes` bytes of chunks and little more. */
  openWithRoomFor(bytes: number): Promise<NodeUnderTest>;
  /** Stops whatever open() started; called once after all cases. */
  cleanup(): Promise<void>;
}

/**
 * Ids an object store can hand the engine, each of which once broke a node somewhere: control characters, astral
 * letters, a cut that lands inside a surrogate pair, 1,000+ characters, names that only differ by a suffix the
 * node's own files use, path tricks, and the two Unicode normal forms of one word.
 */
export const ODD_IDS: readonly string[] = [
  'tab\there_chunk_0',
  'new\nline_chunk_0',
  'carriage\rreturn and \u007f delete_chunk_0',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢/𝔘_chunk_0',
  'a' + '𝔘'.repeat(300),
  `long-${'x'.repeat(1_000)}-1`,
  `long-${'x'.repeat(1_000)}-2`,
  'X',
  'X.chunk',
  'X.chunk.json',
  '../x',
  'a/b',
  'a%2Fb',
  '.hidden',
  ' spaced ',
  'caf\u00e9',
  'cafe\u0301',
];

export function metaFor(id: string, size: number, extra: Partial<ChunkMeta> = {}): ChunkMeta {
  return { id, file: `files/${id}`, index: 3, offset: 7 * size, size, sourceEtag: '"v1"', ...extra };
}

/** Polls `check` until it returns true; fails naming `what` after `ms`. */
async function eventually(check: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function listAll(node: NodeTarget): Promise<StoredChunk[]> {
  const out: StoredChunk[] = [];
  for await (const chunk of node.list()) out.push(chunk);
  return out;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

async function expectNodeError(promise: Promise<unknown>, code: NodeError['code']): Promise<NodeError> {
  const error = await rejectionOf(promise);
  expect(error, String(error)).toBeInstanceOf(NodeError);
  expect((error as NodeError).code, (error as NodeError).message).toBe(code);
  return error as NodeError;
}


/**
 * Files in a node folder laid out as `<sub>/<name>.chunk` + `<sub>/<name>.chunk.json` (`<sub>`: chunkSubfolder's two
 * hex digits; or both in the folder itself, as written before the subfolders), with its temp files under
 * `tempSubdir` and its `<sub>/` subfolders, that belong to no stored chunk. `ignore` names files the node keeps for
 * itself (a lock).
 */
export async function strayFiles(dir: string, tempSubdir: string, ignore: string[] = []): Promise<string[]> {
  const stray: string[] = [];
  for (const entry of await readdir(join(dir, tempSubdir), { withFileTypes: true }).catch(() => [])) {
    if (!isSubfolder(entry)) stray.push(`${tempSubdir}/${entry.name}`);
    else for (const name of await readdir(join(dir, tempSubdir, entry.name))) stray.push(`${tempSubdir}/${entry.name}/${name}`);
  }
  const top = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((entry) => entry.name !== tempSubdir && !ignore.includes(entry.name));
  stray.push(...unpaired(top.filter((entry) => !isSubfolder(entry)).map((entry) => entry.name), ''));
  for (const entry of top.filter(isSubfolder)) stray.push(...unpaired(await readdir(join(dir, entry.name)), `${entry.name}/`));
  return stray;
}

function isSubfolder(entry: Dirent): boolean {
  return entry.isDirectory() && SUBFOLDER.test(entry.name);
}

/** Names in one folder that are not half of a `<name>.chunk` + `<name>.chunk.json` pair, each after `prefix`. */
function unpaired(names: string[], prefix: string): string[] {
  const present = new Set(names);
  const paired = (name: string): boolean => (name.endsWith('.chunk.json') ? present.has(name.slice(0, -'.json'.length)) : name.endsWith('.chunk') && present.has(`${name}.json`));
  return names.filter((name) => !paired(name)).map((name) => `${prefix}${name}`);
}

/** Flips the first byte of chunk `chunkId`'s data in a node folder laid out as strayFiles describes (its subfolder). */
export async function damageChunkFile(dir: string, chunkId: string): Promise<void> {
  await flipFirstByte(join(dir, chunkSubfolder(chunkId), `${chunkFileName(chunkId)}.chunk`));
}

export function defineNodeSuite(kind: NodeTarget['kind'], factory: NodeFactory): void {
  describe(`${kind} node conformance`, () => {
    const pool = new HashPool(2);
    const opened: NodeTarget[] = [];
    let sourceDir: string;

    beforeAll(async () => {
      sourceDir = await tempDir(`ci-node-src-${kind}-`);
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((node) => node.close()));
    });
    afterAll(async () => {
      await pool.close();
      await factory.cleanup();
    });

    async function open(room?: number): Promise<NodeUnderTest> {
      const fixture = room === undefined ? await factory.open() : await factory.openWithRoomFor(room);
      opened.push(fixture.node);
      return fixture;
    }

    async function restart(fixture: NodeUnderTest): Promise<NodeTarget> {
      const node = await fixture.restart();
      opened.push(node);
      return node;
    }

    /** Stores `bytes` as `meta` through one write path. */
    async function store(path: WritePath, node: NodeTarget, meta: ChunkMeta, bytes: Buffer, signal?: AbortSignal): Promise<StoredChunk> {
      if (path === 'write') {
        const source = streamOf(bytes);
        return node.write(meta, source.data, source.checksum, signal);
      }
      const options = { pool, algorithm: 'md5' as const, ...(signal ? { signal } : {}) };
      if (path === 'writeHashing') return node.writeHashing!(meta, streamOf(bytes).data, options);
      const file = join(sourceDir, `${randomBytes(6).toString('hex')}.bin`);
      await writeFile(file, Buffer.concat([randomBytes(100), bytes, randomBytes(50)]));
      const range = { path: file, offset: 100, length: bytes.length };
      if (path === 'writeFilesFromDisk') return onlyResult(await node.writeFilesFromDisk!([{ meta, file: range }], options));
      return node.writeFromFile!(meta, range, options);
    }

    /** The one item of a batch write, as a single write gives it: stored, or its error thrown. */
    function onlyResult(results: (StoredChunk | Error)[]): StoredChunk {
      expect(results).toHaveLength(1);
      if (results[0] instanceof Error) throw results[0];
      return results[0]!;
    }

    /**
     * Stores through a source that fails before its first byte or part way through; resolves with the write's
     * rejection and a check that it is the source's own failure.
     */
    async function storeFailing(path: WritePath, node: NodeTarget, meta: ChunkMeta, bytes: Buffer, when: 'before' | 'during'): Promise<void> {
      const failAfter = when === 'before' ? 0 : Math.floor(bytes.length / 2);
      if (path === 'writeFromFile' || path === 'writeFilesFromDisk') {
        // A local file that is gone, or shorter than its listed range (it shrank while being read).
        const file = join(sourceDir, `${randomBytes(6).toString('hex')}.bin`);
        if (when === 'during') await writeFile(file, bytes.subarray(0, failAfter));
        const range = { path: file, offset: 0, length: bytes.length };
        const options = { pool, algorithm: 'md5' as const };
        const error = path === 'writeFromFile' ? await rejectionOf(node.writeFromFile!(meta, range, options)) : (await node.writeFilesFromDisk!([{ meta, file: range }], options))[0];
        expect(error, String(error)).toBeInstanceOf(FileCopyError);
        expect((error as FileCopyError).side).toBe('source');
        return;
      }
      const failure = sourceError(`the source failed ${when === 'before' ? 'before its first byte' : 'part way through'}`);
      const source = streamOf(bytes, { failWith: failure, failAfter, delayMs: 5 });
      const written = path === 'write' ? node.write(meta, source.data, source.checksum) : node.writeHashing!(meta, source.data, { pool, algorithm: 'md5' });
      if (path !== 'write') source.checksum.catch(() => undefined); // nobody else awaits it on this path
      expect(await within(rejectionOf(written), 30_000, `a write whose source failed ${when} its first byte`)).toBe(failure);
    }

    async function expectStored(node: NodeTarget, meta: ChunkMeta, bytes: Buffer): Promise<void> {
      const found = await node.find(meta.id);
      expect(found, `find(${JSON.stringify(meta.id)})`).toMatchObject({ ...meta, checksum: md5Checksum(bytes) });
      expect((await readAll(await node.read(meta.id))).equals(bytes), `read(${JSON.stringify(meta.id)}) gives back the bytes written`).toBe(true);
    }

    async function expectNothingKept(fixture: NodeUnderTest, node: NodeTarget, id: string): Promise<void> {
      expect(await node.find(id)).toBeUndefined();
      expect((await listAll(node)).map((c) => c.id)).not.toContain(id);
      await eventually(async () => (await fixture.leftovers()).length === 0, 'the node to remove the failed upload').catch(async (error: unknown) => {
        throw new Error(`${String(error)}; left: ${JSON.stringify(await fixture.leftovers())}`);
      });
    }

    /** Every id stored, found, read back byte-exact and listed once under its own id; the problems, one line each. */
    async function problemsWith(node: NodeTarget, chunks: Map<string, Buffer>): Promise<string[]> {
      const problems: string[] = [];
      for (const [id, bytes] of chunks) {
        const found = await node.find(id).catch((error: unknown) => String(error));
        if (typeof found === 'string' || found === undefined) problems.push(`${JSON.stringify(id)}: find gives ${found ?? 'nothing'}`);
        else if (found.id !== id || found.checksum.hex !== md5(bytes) || found.size !== bytes.length) problems.push(`${JSON.stringify(id)}: find gives ${JSON.stringify(found).slice(0, 200)}`);
        const read = await node.read(id).then(readAll, (error: unknown) => String(error));
        if (typeof read === 'string') problems.push(`${JSON.stringify(id)}: read fails: ${read}`);
        else if (!read.equals(bytes)) problems.push(`${JSON.stringify(id)}: read gives ${read.length} other bytes (${md5(read)})`);
      }
      const listed = await listAll(node);
      for (const id of chunks.keys()) {
        const entries = listed.filter((c) => c.id === id);
        if (entries.length !== 1) problems.push(`${JSON.stringify(id)}: listed ${entries.length} times`);
        else if (entries[0]!.checksum.hex !== md5(chunks.get(id)!)) problems.push(`${JSON.stringify(id)}: listed with another checksum`);
      }
      for (const c of listed) if (!chunks.has(c.id)) problems.push(`${JSON.stringify(c.id)}: listed but never written`);
      return problems;
    }

    /** Writes each id with bytes of its own; the ids the node refused, with why. */
    async function storeAll(path: WritePath, node: NodeTarget, ids: readonly string[]): Promise<{ chunks: Map<string, Buffer>; refused: string[] }> {
      const chunks = new Map<string, Buffer>();
      const refused: string[] = [];
      for (const [i, id] of ids.entries()) {
        const bytes = bytesFor(id, 1_000 + i);
        try {
          const stored = await store(path, node, metaFor(id, bytes.length), bytes);
          if (stored.id !== id) refused.push(`${JSON.stringify(id)}: stored as ${JSON.stringify(stored.id)}`);
          chunks.set(id, bytes);
        } catch (error) {
          refused.push(`${JSON.stringify(id)}: ${String(error)}`);
        }
      }
      return { chunks, refused };
    }

    it('implements exactly the write paths its factory declares', async () => {
      const { node } = await open();
      expect(node.kind).toBe(kind);
      expect(typeof node.writeHashing === 'function').toBe(factory.writePaths.includes('writeHashing'));
      expect(typeof node.writeFromFile === 'function').toBe(factory.writePaths.includes('writeFromFile'));
      expect(typeof node.writeFilesFromDisk === 'function').toBe(factory.writePaths.includes('writeFilesFromDisk'));
      expect(typeof node.checksumStored === 'function').toBe(factory.readsStoredOnThreads);
      expect(typeof node.copyStoredInto === 'function').toBe(factory.readsStoredOnThreads);
    });

    if (factory.readsStoredOnThreads) {
      it("checksums a stored copy where it lies: what read gives, a damaged copy's own bytes, not_found for a missing one", async () => {
        const fixture = await open();
        const bytes = randomBytes(2 * MiB + 7);
        const meta = metaFor('data/sum.bin_chunk_0', bytes.length);
        await store('write', fixture.node, meta, bytes);
        expect(await fixture.node.checksumStored!(meta.id, 'md5', pool)).toEqual({ hex: md5(bytes), bytes: bytes.length });
        await fixture.damage(meta.id);
        const damaged = await readAll(await fixture.node.read(meta.id));
        expect(await fixture.node.checksumStored!(meta.id, 'md5', pool)).toEqual({ hex: md5(damaged), bytes: bytes.length });
        await expectNodeError(fixture.node.checksumStored!('nothing_chunk_0', 'md5', pool), 'not_found');
      });

      it('copies a range of a stored copy into a file at an offset, keeping its other bytes; short copies and missing ones fail', async () => {
        const fixture = await open();
        const bytes = randomBytes(3 * MiB + 11);
        const meta = metaFor('data/into.bin_chunk_0', bytes.length);
        await store('write', fixture.node, meta, bytes);
        const dir = await tempDir('ci-copy-into-');
        const out = join(dir, 'out.bin');
        await writeFile(out, Buffer.alloc(5 * MiB, 0x55));
        let heard = 0;
        const whole = await fixture.node.copyStoredInto!(meta.id, { offset: 0, length: bytes.length }, { path: out, at: MiB }, 'md5', pool, { onBytes: (n) => (heard += n) });
        expect(whole).toEqual({ hex: md5(bytes), storedBytes: bytes.length });
        expect(heard).toBe(bytes.length);
        const range = await fixture.node.copyStoredInto!(meta.id, { offset: 1000, length: 5000 }, { path: out, at: 0 }, 'sha256', pool);
        expect(range).toEqual({ hex: createHash('sha256').update(bytes.subarray(1000, 6000)).digest('hex'), storedBytes: bytes.length });
        const written = await readFile(out);
        expect(written.length).toBe(5 * MiB);
        expect(written.subarray(0, 5000).equals(bytes.subarray(1000, 6000))).toBe(true);
        expect(written.subarray(5000, MiB).every((b) => b === 0x55)).toBe(true);
        expect(written.subarray(MiB, MiB + bytes.length).equals(bytes)).toBe(true);
        expect(written.subarray(MiB + bytes.length).every((b) => b === 0x55)).toBe(true);
        const past = fixture.node.copyStoredInto!(meta.id, { offset: bytes.length - 10, length: 20 }, { path: out, at: 0 }, 'md5', pool);
        await expect(past).rejects.toMatchObject({ name: 'FileCopyError', side: 'source' });
        await expectNodeError(fixture.node.copyStoredInto!('nothing_chunk_0', { offset: 0, length: 1 }, { path: out, at: 0 }, 'md5', pool), 'not_found');
        const noFolder = fixture.node.copyStoredInto!(meta.id, { offset: 0, length: 10 }, { path: join(dir, 'missing', 'out.bin'), at: 0 }, 'md5', pool);
        await expect(noFolder).rejects.toMatchObject({ name: 'FileCopyError', side: 'target' });
      });
    }

    it('an empty node probes healthy, lists nothing, finds nothing and reads nothing', async () => {
      const { node } = await open();
      const probe = await node.probe();
      expect(probe, probe.error).toMatchObject({ ok: true });
      expect(probe.freeBytes).toBeGreaterThan(0);
      expect(await listAll(node)).toEqual([]);
      expect(await node.find('nothing_chunk_0')).toBeUndefined();
      await expectNodeError(node.read('nothing_chunk_0'), 'not_found');
    });

    for (const path of factory.writePaths) {
      describe(`through ${path}`, () => {
        it('stores a chunk that find, read and list give back byte-exact', async () => {
          const fixture = await open();
          const bytes = randomBytes(3 * MiB + 12_345);
          const meta = metaFor('data/train-0001.bin_chunk_3', bytes.length);
          const stored = await store(path, fixture.node, meta, bytes);
          expect(stored).toMatchObject({ ...meta, checksum: md5Checksum(bytes) });
          await expectStored(fixture.node, meta, bytes);
          expect((await listAll(fixture.node)).map((c) => [c.id, c.checksum.hex])).toEqual([[meta.id, md5(bytes)]]);
          expect(await fixture.leftovers()).toEqual([]);
        });

        it('stores a 0-byte chunk', async () => {
          const { node } = await open();
          const meta = metaFor('empty.bin_chunk_0', 0);
          expect(await store(path, node, meta, Buffer.alloc(0))).toMatchObject({ ...meta, checksum: md5Checksum(Buffer.alloc(0)) });
          await expectStored(node, meta, Buffer.alloc(0));
        });

        it('the same id with the same bytes again succeeds and leaves one copy', async () => {
          const { node } = await open();
          const bytes = randomBytes(200 * KiB + 1);
          const meta = metaFor('again.bin_chunk_0', bytes.length);
          await store(path, node, meta, bytes);
          expect(await store(path, node, meta, bytes)).toMatchObject({ ...meta, checksum: md5Checksum(bytes) });
          await expectStored(node, meta, bytes);
          expect((await listAll(node)).filter((c) => c.id === meta.id)).toHaveLength(1);
        });

        it('the same id from a new source version replaces the stored copy', async () => {
          const { node } = await open();
          const before = randomBytes(100 * KiB);
          const after = randomBytes(100 * KiB);
          await store(path, node, metaFor('changed.bin_chunk_0', before.length, { sourceEtag: '"v1"' }), before);
          const meta = metaFor('changed.bin_chunk_0', after.length, { sourceEtag: '"v2"' });
          expect(await store(path, node, meta, after)).toMatchObject({ ...meta, checksum: md5Checksum(after) });
          await expectStored(node, meta, after);
          expect((await listAll(node)).map((c) => c.checksum.hex)).toEqual([md5(after)]);
        });

        for (const when of ['before', 'during'] as const) {
          it(`a source that fails ${when} its first byte rejects the write with its own error; nothing is kept`, async () => {
            const fixture = await open();
            const meta = metaFor(`failing-${when}.bin_chunk_0`, 2 * MiB);
            await storeFailing(path, fixture.node, meta, randomBytes(2 * MiB), when);
            await expectNothingKept(fixture, fixture.node, meta.id);
            expect((await fixture.node.probe()).ok).toBe(true);
          });
        }

        it('a source that fails while a stored id is rewritten leaves the stored copy as it was', async () => {
          const fixture = await open();
          const bytes = randomBytes(MiB);
          const meta = metaFor('kept.bin_chunk_0', bytes.length);
          await store(path, fixture.node, meta, bytes);
          await storeFailing(path, fixture.node, { ...meta, sourceEtag: '"v2"' }, randomBytes(MiB), 'during');
          await expectStored(fixture.node, meta, bytes);
          await eventually(async () => (await fixture.leftovers()).length === 0, 'the node to remove the failed upload');
        });

        it('a full node refuses with `full` (a node-level error) and keeps what it held, and no part of the refused chunk', async () => {
          const fixture = await open(MiB);
          const first = randomBytes(600 * KiB);
          const second = randomBytes(600 * KiB);
          await store(path, fixture.node, metaFor('fits.bin_chunk_0', first.length), first);
          const error = await expectNodeError(store(path, fixture.node, metaFor('too-much.bin_chunk_0', second.length), second), 'full');
          expect(isNodeLevelError(error)).toBe(true);
          expect(error.message).toContain(fixture.node.id);
          await expectStored(fixture.node, metaFor('fits.bin_chunk_0', first.length), first);
          await expectNothingKept(fixture, fixture.node, 'too-much.bin_chunk_0');
          const probe = await fixture.node.probe();
          expect(probe.freeBytes ?? Infinity).toBeLessThan(second.length);
        });

        it('a write cancelled through its signal rejects and keeps nothing', async () => {
          const fixture = await open();
          const controller = new AbortController();
          const bytes = randomBytes(4 * MiB);
          const meta = metaFor('cancelled.bin_chunk_0', bytes.length);
          let written: Promise<StoredChunk>;
          if (path === 'writeFromFile' || path === 'writeFilesFromDisk') {
            // A hashing thread's copy cannot be held part way; this one is cancelled before it starts.
            controller.abort(new Error('cancelled by the user'));
            written = store(path, fixture.node, meta, bytes, controller.signal);
          } else {
            const source = streamOf(bytes, { stallAfter: MiB, onStall: () => setTimeout(() => controller.abort(new Error('cancelled by the user')), 50) });
            const options = { pool, algorithm: 'md5' as const, signal: controller.signal };
            written = path === 'write' ? fixture.node.write(meta, source.data, source.checksum, controller.signal) : fixture.node.writeHashing!(meta, source.data, options);
          }
          await within(rejectionOf(written), 30_000, 'a cancelled write');
          await expectNothingKept(fixture, fixture.node, meta.id);
        });

        it('odd ids are each stored, found, read back and listed under their own id; none aliases another', async () => {
          const { node } = await open();
          const { chunks, refused } = await storeAll(path, node, ODD_IDS);
          expect([...refused, ...(await problemsWith(node, chunks))]).toEqual([]);
        });
      });
    }

    if (factory.writePaths.includes('writeFilesFromDisk')) {
      it('a batch of files stores each on its own: one whose source is gone or shrank fails alone, in its place', async () => {
        const fixture = await open();
        const files = await Promise.all(
          Array.from({ length: 6 }, async (_, i) => {
            const bytes = randomBytes(1000 + i * 4099);
            const path = join(sourceDir, `batch-${randomBytes(6).toString('hex')}.bin`);
            if (i !== 2) await writeFile(path, i === 4 ? bytes.subarray(0, 10) : bytes);
            return { meta: metaFor(`batch/file-${i}.bin_chunk_0`, bytes.length), file: { path, offset: 0, length: bytes.length }, bytes };
          }),
        );
        const results = await fixture.node.writeFilesFromDisk!(files, { pool, algorithm: 'md5' });
        expect(results).toHaveLength(files.length);
        for (const [i, result] of results.entries()) {
          if (i === 2 || i === 4) {
            expect(result, `item ${i}`).toBeInstanceOf(FileCopyError);
            expect((result as FileCopyError).side).toBe('source');
            expect(await fixture.node.find(files[i]!.meta.id)).toBeUndefined();
            continue;
          }
          expect(result).toMatchObject({ ...files[i]!.meta, checksum: md5Checksum(files[i]!.bytes) });
          await expectStored(fixture.node, files[i]!.meta, files[i]!.bytes);
        }
        expect((await listAll(fixture.node)).map((c) => c.id).sort()).toEqual([0, 1, 3, 5].map((i) => files[i]!.meta.id));
        expect(await fixture.leftovers()).toEqual([]);
      });
    }

    it(`the same id from the same source version with other bytes: ${factory.sameVersionOtherBytes === 'replaces' ? 'replaces the stored copy' : 'a conflict; the stored copy stays'}`, async () => {
      const { node } = await open();
      const before = randomBytes(100 * KiB);
      const after = randomBytes(100 * KiB);
      const meta = metaFor('redone.bin_chunk_0', before.length);
      await store('write', node, meta, before);
      if (factory.sameVersionOtherBytes === 'replaces') {
        expect(await store('write', node, meta, after)).toMatchObject({ checksum: md5Checksum(after) });
        await expectStored(node, meta, after);
      } else {
        const error = await expectNodeError(store('write', node, meta, after), 'conflict');
        expect(error.message).toContain(meta.id);
        await expectStored(node, meta, before);
      }
      expect((await listAll(node)).filter((c) => c.id === meta.id)).toHaveLength(1);
    });

    it('a write marked replace rewrites a damaged copy the node believes identical; the mark is not stored', async () => {
      const fixture = await open();
      const bytes = randomBytes(300 * KiB);
      const meta = metaFor('damaged.bin_chunk_0', bytes.length);
      await store('write', fixture.node, meta, bytes);
      await fixture.damage(meta.id);
      expect((await readAll(await fixture.node.read(meta.id))).equals(bytes), 'the damage shows when read').toBe(false);
      const stored = await store('write', fixture.node, { ...meta, replace: true }, bytes);
      expect(stored).toMatchObject({ ...meta, checksum: md5Checksum(bytes) });
      await expectStored(fixture.node, meta, bytes);
      const listed = await listAll(fixture.node);
      expect(listed).toHaveLength(1);
      for (const chunk of [stored, await fixture.node.find(meta.id), listed[0]]) expect(chunk).not.toHaveProperty('replace');
    });

    it('two writes of the same chunk at once leave one good copy', async () => {
      const fixture = await open();
      const bytes = randomBytes(2 * MiB + 3);
      const meta = metaFor('twice.bin_chunk_0', bytes.length);
      const results = await Promise.all([store('write', fixture.node, meta, bytes), store('write', fixture.node, meta, bytes)]);
      for (const stored of results) expect(stored.checksum).toEqual(md5Checksum(bytes));
      await expectStored(fixture.node, meta, bytes);
      expect(await listAll(fixture.node)).toHaveLength(1);
      await eventually(async () => (await fixture.leftovers()).length === 0, 'no temp files');
    });

    it('lists every chunk once when there are more than a page of them', async () => {
      const { node } = await open();
      const ids = Array.from({ length: 1_100 }, (_, i) => `many/part-${String(i).padStart(5, '0')}.bin_chunk_0`);
      for (let i = 0; i < ids.length; i += 25) {
        await Promise.all(ids.slice(i, i + 25).map((id) => store('write', node, metaFor(id, 10), Buffer.from(id.slice(-10)))));
      }
      const listed = (await listAll(node)).map((c) => c.id);
      expect(listed).toHaveLength(ids.length);
      expect(new Set(listed)).toEqual(new Set(ids));
    });

    it('after a restart, every chunk acknowledged before (odd ids too) is found, read back byte-exact and listed', async () => {
      const fixture = await open();
      const big = randomBytes(5 * MiB + 1);
      const meta = metaFor('before-restart.bin_chunk_0', big.length);
      await store('write', fixture.node, meta, big);
      const { chunks, refused } = await storeAll('write', fixture.node, ODD_IDS);
      chunks.set(meta.id, big);
      const node = await restart(fixture);
      expect([...refused, ...(await problemsWith(node, chunks))]).toEqual([]);
      expect((await node.probe()).ok).toBe(true);
      expect(await fixture.leftovers()).toEqual([]);
    });
  });
}
