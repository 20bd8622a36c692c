// A folder node spreads its chunks over subfolders (`<node>/<2 hex digits>/<name>.chunk`), so no folder gets huge
// with a million chunks; node folders written in the flat layout before (`<node>/<name>.chunk`, described by index
// lines without a subfolder or by `.chunk.json` sidecars) are still found, read, listed and verified, and a chunk of
// theirs written again moves to its subfolder without leaving a stale copy behind.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chunkFileName } from '../../electron/engine/chunk-names.ts';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { FolderNode } from '../../electron/engine/nodes/folder-node.ts';
import type { StoredChunk } from '../../electron/engine/nodes/node.ts';
import { repairRun } from '../../electron/engine/repair.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyCopy, verifyRun } from '../../electron/engine/verify.ts';
import type { Manifest, ManifestChunk } from '../../shared/types.ts';
import { detection, MIB, nodesYaml, tempProject, writeConfig } from '../engine/fixtures.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { bytesOfId, md5, md5Checksum, streamOf } from './chunks.ts';
import { listAll, metaFor, ODD_IDS } from './conformance.ts';
import { folderProblems, folderStrayFiles, heldChunks, INDEX_PATH } from './folder-layout.ts';

const pool = new HashPool(2);

afterAll(async () => {
  await pool.close();
  await removeTempDirs();
});

/** The subfolder the on-disk format puts a chunk in: the first two hex digits of its id's SHA-256. */
function subfolderOf(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 2);
}

/** The manifest's view of one copy, for verify. */
function manifestChunk(id: string, bytes: Buffer, location: string): ManifestChunk {
  const meta = metaFor(id, bytes.length);
  return { id, file: meta.file, index: meta.index, offset: meta.offset, size: bytes.length, checksum: md5(bytes), node: 'n', path: location, copies: [{ nodeId: 'n', location }], attempts: 1, movedFrom: [], skipped: false };
}

/** Each id found, read back byte-exact, verified against its checksum and listed once; nothing else listed. */
async function problemsWith(node: FolderNode, expected: Map<string, Buffer>): Promise<string[]> {
  return folderProblems(node, expected, async (id, bytes, found) => {
    const verified = await verifyCopy(node, manifestChunk(id, bytes, found?.location ?? '?'), 'md5', pool);
    return verified ? `verify says ${verified.reason}: ${verified.detail}` : undefined;
  });
}

/**
 * Chunks as the folder node kept them before the subfolders, all in the node folder itself: the first half
 * described by index lines without a subfolder, the rest by `.chunk.json` sidecars (the layout before the index).
 */
async function flatLayout(dir: string, ids: string[]): Promise<Map<string, Buffer>> {
  await mkdir(join(dir, '.cloud-ingest-index'), { recursive: true });
  const chunks = new Map<string, Buffer>();
  const lines: string[] = [];
  for (const id of ids) chunks.set(id, bytesOfId(id));
  for (const [i, [id, bytes]] of [...chunks].entries()) {
    const name = chunkFileName(id);
    await writeFile(join(dir, `${name}.chunk`), bytes);
    const meta = { ...metaFor(id, bytes.length), checksum: md5Checksum(bytes) };
    if (i < ids.length / 2) lines.push(JSON.stringify(meta));
    else await writeFile(join(dir, `${name}.chunk.json`), JSON.stringify({ ...meta, location: join(dir, `${name}.chunk`) }));
  }
  await writeFile(join(dir, INDEX_PATH), `${lines.join('\n')}\n`);
  return chunks;
}

/** Every file under the node folder, relative to it, but for the index. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((path) => path !== INDEX_PATH)
    .sort();
}

describe('a folder node fans its chunks out over subfolders', () => {
  it('after 1,500 chunks the node folder itself holds at most 256 subfolders and its own few entries', async () => {
    const dir = join(await tempDir('ci-folder-fanout-'), 'node');
    const node = new FolderNode('fanout', dir);
    const chunks = new Map<string, Buffer>();
    const ids = Array.from({ length: 1500 }, (_, i) => `train/${String(i >> 2).padStart(5, '0')}/${String(i).padStart(7, '0')}.jpg_chunk_0`);
    for (let start = 0; start < ids.length; start += 50) {
      await Promise.all(
        ids.slice(start, start + 50).map(async (id, i) => {
          const bytes = randomBytes(64 + ((start + i) % 200));
          chunks.set(id, bytes);
          const meta = metaFor(id, bytes.length);
          // Both paths that commit on the hashing thread, and the one that commits here.
          const source = streamOf(bytes);
          if (i % 3 === 0) await node.write(meta, source.data, source.checksum);
          else await node.writeHashing(meta, streamOf(bytes).data, { pool, algorithm: 'md5' });
        }),
      );
    }
    const top = await readdir(dir);
    expect(top.length).toBeLessThanOrEqual(260);
    const subfolders = top.filter((name) => !name.startsWith('.'));
    for (const name of subfolders) expect(name).toMatch(/^[0-9a-f]{2}$/);
    // 1,500 chunks over 256 subfolders: all of them in use, none with more than a few dozen.
    expect(subfolders.length).toBeGreaterThan(240);
    for (const name of subfolders) expect((await readdir(join(dir, name))).length).toBeLessThan(40);
    for (const id of ids) {
      const found = await node.find(id);
      expect(found?.location).toBe(join(dir, subfolderOf(id), `${chunkFileName(id)}.chunk`));
    }
    await node.close();
    const reopened = new FolderNode('fanout', dir);
    expect(await problemsWith(reopened, chunks)).toEqual([]);
    expect(await folderStrayFiles(dir)).toEqual([]);
    await reopened.close();
  });

  it('odd ids (dot-dot, separators, absolute paths, hex-looking names) each get their own file inside their own subfolder', async () => {
    const dir = join(await tempDir('ci-folder-fanout-odd-'), 'node');
    const node = new FolderNode('odd', dir);
    const ids = [...ODD_IDS, '00', 'ff', '../ff/x', '/00/../../x', '.tmp', '.cloud-ingest-index/chunks.jsonl', 'ab/../../../etc/passwd'];
    const chunks = new Map(ids.map((id) => [id, bytesOfId(id)]));
    for (const [id, bytes] of chunks) await node.writeHashing(metaFor(id, bytes.length), streamOf(bytes).data, { pool, algorithm: 'md5' });
    const files = await filesUnder(dir);
    expect(files).toHaveLength(ids.length);
    for (const file of files) {
      const parts = file.split(sep);
      expect(parts, file).toHaveLength(2);
      expect(parts[0]).toMatch(/^[0-9a-f]{2}$/);
      expect(parts[1]!.endsWith('.chunk')).toBe(true);
    }
    expect(await problemsWith(node, chunks)).toEqual([]);
    await node.close();
  });

  it('an index line naming a subfolder that is not two hex digits is not followed', async () => {
    const dir = join(await tempDir('ci-folder-fanout-tampered-'), 'node');
    const outside = join(dir, '..', 'outside');
    await mkdir(outside, { recursive: true });
    const bytes = bytesOfId('escape_chunk_0');
    await writeFile(join(outside, `${chunkFileName('escape_chunk_0')}.chunk`), bytes);
    await mkdir(join(dir, '.cloud-ingest-index'), { recursive: true });
    const line = { ...metaFor('escape_chunk_0', bytes.length), subfolder: '../outside', checksum: md5Checksum(bytes) };
    await writeFile(join(dir, INDEX_PATH), `${JSON.stringify(line)}\n`);
    const node = new FolderNode('tampered', dir);
    expect(await node.find('escape_chunk_0')).toBeUndefined();
    await expect(node.read('escape_chunk_0')).rejects.toMatchObject({ code: 'not_found' });
    expect(await listAll(node)).toEqual([]);
    await node.close();
  });
});

describe('a node folder written in the flat layout, after the upgrade', () => {
  const ids = ['old-1_chunk_0', 'old/2_chunk_0', 'X.chunk', 'X.chunk.json', 'side-1_chunk_0', 'side/2_chunk_0', 'side.chunk_chunk_0', 'rewrite-me_chunk_0'];

  it('its chunks are found, read, verified and listed where they are', async () => {
    const dir = join(await tempDir('ci-folder-flat-'), 'node');
    const chunks = await flatLayout(dir, ids);
    const node = new FolderNode('flat', dir);
    expect(await problemsWith(node, chunks)).toEqual([]);
    for (const chunk of await listAll(node)) expect(chunk.location).toBe(join(dir, `${chunkFileName(chunk.id)}.chunk`));
    expect(await folderStrayFiles(dir)).toEqual([]);
    expect((await heldChunks(dir)).map((c) => c.via).sort()).toEqual([...Array<string>(4).fill('index'), ...Array<string>(4).fill('sidecar')]);
    await node.close();
  });

  it('a chunk of either kind written again moves to its subfolder; its flat file and sidecar are gone, never read or listed', async () => {
    const dir = join(await tempDir('ci-folder-flat-'), 'node');
    const sourceDir = await tempDir('ci-folder-flat-src-');
    const chunks = await flatLayout(dir, ids);
    const node = new FolderNode('flat', dir);
    // One of each kind down each write path: an indexed one and a sidecar one.
    const rewrites: [string, 'write' | 'writeHashing' | 'writeFromFile'][] = [
      ['old-1_chunk_0', 'writeHashing'],
      ['old/2_chunk_0', 'writeFromFile'],
      ['X.chunk', 'write'],
      ['side-1_chunk_0', 'writeHashing'],
      ['side/2_chunk_0', 'writeFromFile'],
      ['side.chunk_chunk_0', 'write'],
    ];
    for (const [id, path] of rewrites) {
      const bytes = randomBytes(700);
      chunks.set(id, bytes);
      const meta = metaFor(id, bytes.length, { replace: true, sourceEtag: '"v2"' });
      let kept: StoredChunk;
      const source = streamOf(bytes);
      if (path === 'write') kept = await node.write(meta, source.data, source.checksum);
      else if (path === 'writeHashing') kept = await node.writeHashing(meta, source.data, { pool, algorithm: 'md5' });
      else {
        const file = join(sourceDir, `${randomBytes(6).toString('hex')}.bin`);
        await writeFile(file, bytes);
        kept = await node.writeFromFile(meta, { path: file, offset: 0, length: bytes.length }, { pool, algorithm: 'md5' });
      }
      const name = chunkFileName(id);
      expect(kept.location, `${id} by ${path}`).toBe(join(dir, subfolderOf(id), `${name}.chunk`));
      await expect(stat(join(dir, `${name}.chunk`)), `${id}: flat copy left`).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(stat(join(dir, `${name}.chunk.json`)), `${id}: sidecar left`).rejects.toMatchObject({ code: 'ENOENT' });
    }
    // A chunk new to the node goes to its subfolder too.
    const fresh = randomBytes(900);
    chunks.set('new_chunk_0', fresh);
    await node.writeHashing(metaFor('new_chunk_0', fresh.length), streamOf(fresh).data, { pool, algorithm: 'md5' });
    for (const looking of [node, new FolderNode('flat', dir)]) {
      expect(await problemsWith(looking, chunks)).toEqual([]);
      await looking.close();
    }
    expect(await folderStrayFiles(dir)).toEqual([]);
    const flatLeft = (await readdir(dir)).filter((name) => name.endsWith('.chunk') || name.endsWith('.chunk.json')).sort();
    const untouched = [`${chunkFileName('X.chunk.json')}.chunk`, `${chunkFileName('rewrite-me_chunk_0')}.chunk`, `${chunkFileName('rewrite-me_chunk_0')}.chunk.json`];
    expect(flatLeft).toEqual(untouched.sort());
  });

  it('a flat copy left beside a chunk that moved (a crash before its removal) is neither read nor counted', async () => {
    const dir = join(await tempDir('ci-folder-flat-'), 'node');
    const chunks = await flatLayout(dir, ['moved_chunk_0', 'stays_chunk_0']);
    const node = new FolderNode('flat', dir);
    const moved = randomBytes(1200);
    await node.writeHashing(metaFor('moved_chunk_0', moved.length, { replace: true }), streamOf(moved).data, { pool, algorithm: 'md5' });
    await node.close();
    // What a crash between the index line and the removal leaves: the old bytes back at the flat name.
    const oldBytes = chunks.get('moved_chunk_0')!;
    await writeFile(join(dir, `${chunkFileName('moved_chunk_0')}.chunk`), oldBytes);
    chunks.set('moved_chunk_0', moved);
    const reopened = new FolderNode('flat', dir);
    expect(await problemsWith(reopened, chunks)).toEqual([]);
    expect((await heldChunks(dir)).map((c) => c.id).sort()).toEqual(['moved_chunk_0', 'stays_chunk_0']);
    expect(await folderStrayFiles(dir)).toEqual([`${chunkFileName('moved_chunk_0')}.chunk`]);
    // Written again, the stale copy goes.
    await reopened.writeHashing(metaFor('moved_chunk_0', moved.length, { replace: true }), streamOf(moved).data, { pool, algorithm: 'md5' });
    expect(await folderStrayFiles(dir)).toEqual([]);
    await reopened.close();
    expect(JSON.parse((await readFile(join(dir, INDEX_PATH), 'utf8')).trim().split('\n').at(-1)!)).toMatchObject({ id: 'moved_chunk_0', subfolder: subfolderOf('moved_chunk_0') });
  });
});

/**
 * Turns a node folder written now into what the version before the subfolders wrote: every chunk file back in the
 * node folder itself, index lines without a subfolder. Returns each chunk file's move, old path to new.
 */
async function flatten(dir: string): Promise<Map<string, string>> {
  const moved = new Map<string, string>();
  const lines = (await readFile(join(dir, INDEX_PATH), 'utf8')).split('\n');
  const flat = lines.map((text) => {
    if (!text.trim()) return text;
    const { subfolder, ...line } = JSON.parse(text) as { id: string; subfolder?: string };
    if (subfolder === undefined) return text;
    moved.set(join(dir, subfolder, `${chunkFileName(line.id)}.chunk`), join(dir, `${chunkFileName(line.id)}.chunk`));
    return JSON.stringify(line);
  });
  for (const [from, to] of moved) await rename(from, to);
  for (const name of await readdir(dir)) if (/^[0-9a-f]{2}$/.test(name)) await rmdir(join(dir, name));
  await writeFile(join(dir, INDEX_PATH), flat.join('\n'));
  return moved;
}

describe('a run written in the flat layout, after the upgrade', () => {
  it('verify passes; a damaged flat copy is reported and repaired into its subfolder from the good copy, found where its node says it is (moved since, so the path in the manifest is stale), and verify passes again', async () => {
    const root = await tempProject();
    await ensureDataFile(join(root, 'data', 'a.bin'), 3 * MIB + 17, 'a.bin');
    const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 2, retry_attempts: 1, retry_delay_seconds: 0.05, replicas: 2 }\n${nodesYaml([1, 2].map((i) => ({ id: `n${i}`, path: `./nodes/n${i}` })))}`;
    const loaded = await writeConfig(root, yaml);
    const run = await runIngest({ loaded, detection: detection('local') });
    expect(run.manifest.status).toBe('complete');
    // The run as the flat layout left it: its files, its index lines and the manifest's paths.
    const moved = new Map([...(await flatten(join(root, 'nodes', 'n1'))), ...(await flatten(join(root, 'nodes', 'n2')))]);
    const manifest = JSON.parse(await readFile(run.manifestPath, 'utf8')) as Manifest;
    for (const chunk of manifest.chunks) {
      chunk.copies = chunk.copies.map((c) => ({ ...c, location: moved.get(c.location) ?? c.location }));
      chunk.path = chunk.copies[0]!.location;
    }
    await writeFile(run.manifestPath, JSON.stringify(manifest));
    for (const chunk of manifest.chunks) for (const copy of chunk.copies) expect(copy.location.startsWith(join(root, 'nodes', copy.nodeId, chunkFileName(chunk.id)))).toBe(true);
    expect((await verifyRun({ loaded, manifestPath: run.manifestPath })).problems).toEqual([]);

    const damaged = manifest.chunks[1]!;
    // Its good copy written again since (the same bytes): moved to its subfolder, the manifest's flat path is stale.
    const good = damaged.copies[1]!;
    const goodNode = new FolderNode(good.nodeId, join(root, 'nodes', good.nodeId));
    const goodBytes = await readFile(good.location);
    const meta = { id: damaged.id, file: damaged.file, index: damaged.index, offset: damaged.offset, size: damaged.size, replace: true };
    expect((await goodNode.writeHashing(meta, streamOf(goodBytes).data, { pool, algorithm: 'md5' })).location).toBe(join(root, 'nodes', good.nodeId, subfolderOf(damaged.id), `${chunkFileName(damaged.id)}.chunk`));
    await goodNode.close();
    await expect(stat(good.location)).rejects.toMatchObject({ code: 'ENOENT' });
    const handle = await open(damaged.copies[0]!.location, 'r+');
    await handle.write(Buffer.from('damage'), 0, 6, 100);
    await handle.close();
    expect((await verifyRun({ loaded, manifestPath: run.manifestPath })).problems.map((p) => [p.chunkId, p.nodeId])).toEqual([[damaged.id, damaged.copies[0]!.nodeId]]);
    const report = await repairRun({ loaded, manifestPath: run.manifestPath });
    expect(report.actions.map((a) => [a.chunkId, a.outcome, a.from])).toEqual([[damaged.id, 'restored', 'copy']]);
    const after = await verifyRun({ loaded, manifestPath: report.manifestPath });
    expect(after.problems).toEqual([]);
    expect(after.checked).toBe(manifest.chunks.length * 2);
    const repaired = (JSON.parse(await readFile(report.manifestPath, 'utf8')) as Manifest).chunks.find((c) => c.id === damaged.id)!;
    const nodeDir = join(root, 'nodes', damaged.copies[0]!.nodeId);
    expect(repaired.copies.find((c) => c.nodeId === damaged.copies[0]!.nodeId)?.location).toBe(join(nodeDir, subfolderOf(damaged.id), `${chunkFileName(damaged.id)}.chunk`));
    await expect(stat(damaged.copies[0]!.location), 'the damaged flat copy is gone').rejects.toMatchObject({ code: 'ENOENT' });
    expect(await folderStrayFiles(nodeDir)).toEqual([]);
  });
});
