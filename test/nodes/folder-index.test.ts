// The folder node's index (one append-only file of JSON lines instead of a sidecar per chunk): one file on disk per
// chunk, the last line about an id wins, a line torn by a writer killed mid-append is skipped and what follows it is
// read, two processes writing one node folder at once, and folders of the old layout (a `.chunk.json` per chunk).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { chunkFileName } from '../../electron/engine/chunk-names.ts';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { chunkLine, goneLine } from '../../electron/engine/nodes/folder-index.ts';
import { chunkSubfolder } from '../../electron/engine/chunk-names.ts';
import { FolderNode } from '../../electron/engine/nodes/folder-node.ts';
import type { StoredChunk } from '../../electron/engine/nodes/node.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { bytesOfId, md5, md5Checksum, streamOf } from './chunks.ts';
import { listAll, metaFor } from './conformance.ts';
import { folderProblems, folderStrayFiles, heldChunks, INDEX_PATH } from './folder-layout.ts';

const CHILD = fileURLToPath(new URL('./folder-writer-child.ts', import.meta.url));
const pool = new HashPool(2);

afterAll(async () => {
  await pool.close();
  await removeTempDirs();
});

/** Stores `bytes` as `id` through the hashing thread's local copy (the path a local source takes). */
async function storeFromFile(node: FolderNode, sourceDir: string, id: string, bytes: Buffer, extra: Parameters<typeof metaFor>[2] = {}): Promise<StoredChunk> {
  const source = join(sourceDir, `${randomBytes(6).toString('hex')}.bin`);
  await writeFile(source, bytes);
  return node.writeFromFile(metaFor(id, bytes.length, extra), { path: source, offset: 0, length: bytes.length }, { pool, algorithm: 'md5' });
}

interface Child {
  stored: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(): void;
}

function writerProcess(nodeDir: string, sourceDir: string, prefix: string, count: number, shared = 0): Child {
  const proc = spawn(process.execPath, [CHILD, nodeDir, sourceDir, prefix, String(count), String(shared)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = { stored: [], exited: undefined as never, kill: () => proc.kill('SIGKILL') };
  let out = '';
  let stderr = '';
  proc.stdout.on('data', (data: Buffer) => {
    out += data.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const line of lines) if (line.startsWith('stored ')) child.stored.push(line.slice('stored '.length));
  });
  proc.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  child.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, stderr })));
  return child;
}

describe('the folder node index', () => {
  it('a chunk is one file on disk, on every write path; the index is one file for the node', async () => {
    const dir = join(await tempDir('ci-folder-index-'), 'node');
    const sourceDir = await tempDir('ci-folder-index-src-');
    const node = new FolderNode('one-file', dir);
    const expected = new Map<string, Buffer>();
    for (let i = 0; i < 30; i++) {
      const id = `files/f-${i}.bin_chunk_0`;
      const bytes = bytesOfId(id);
      expected.set(id, bytes);
      if (i % 3 === 0) await storeFromFile(node, sourceDir, id, bytes);
      else if (i % 3 === 1) await node.writeHashing(metaFor(id, bytes.length), streamOf(bytes).data, { pool, algorithm: 'md5' });
      else {
        const source = streamOf(bytes);
        await node.write(metaFor(id, bytes.length), source.data, source.checksum);
      }
    }
    expect(await folderProblems(node, expected)).toEqual([]);
    const files = await readdir(dir, { recursive: true, withFileTypes: true });
    const names = files.filter((f) => f.isFile()).map((f) => join(f.parentPath, f.name).slice(dir.length + 1));
    expect(names.sort()).toEqual([...[...expected.keys()].map((id) => join(chunkSubfolder(id), `${chunkFileName(id)}.chunk`)), INDEX_PATH].sort());
    await node.close();
  });

  it('a node that is never closed holds no descriptor on its index once idle', async () => {
    const dir = join(await tempDir('ci-folder-index-'), 'node');
    const sourceDir = await tempDir('ci-folder-index-src-');
    const node = new FolderNode('unclosed', dir);
    await storeFromFile(node, sourceDir, 'held_chunk_0', bytesOfId('held_chunk_0'));
    expect(await node.find('held_chunk_0')).toBeDefined();
    const open = async (): Promise<string[]> => (await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')))).filter((target) => target.startsWith(dir));
    // In use a moment ago (one to append, one to read): kept for the next line or lookup.
    expect(await open()).toEqual([join(dir, INDEX_PATH), join(dir, INDEX_PATH)]);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await open()).toEqual([]);
    expect(await node.find('held_chunk_0')).toBeDefined(); // and opened again when needed
  });

  it('the last line about an id wins: a replaced chunk is found, read and listed as its new bytes only', async () => {
    const dir = join(await tempDir('ci-folder-index-'), 'node');
    const sourceDir = await tempDir('ci-folder-index-src-');
    const node = new FolderNode('replaced', dir);
    const before = randomBytes(5000);
    const after = randomBytes(5000);
    await storeFromFile(node, sourceDir, 'x_chunk_0', before);
    expect(await node.find('x_chunk_0')).toMatchObject({ checksum: md5Checksum(before) }); // the node has read its index
    await storeFromFile(node, sourceDir, 'x_chunk_0', after, { sourceEtag: '"v2"' });
    for (const looking of [node, new FolderNode('replaced', dir)]) {
      expect(await looking.find('x_chunk_0')).toMatchObject({ checksum: md5Checksum(after), sourceEtag: '"v2"' });
      expect(await folderProblems(looking, new Map([['x_chunk_0', after]]))).toEqual([]);
      await looking.close();
    }
    // The old line, the removal written before the rename, and the new line.
    const lines = (await readFile(join(dir, INDEX_PATH), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { gone?: boolean; checksum?: { hex: string } });
    expect(lines.map((l) => (l.gone ? 'gone' : l.checksum?.hex))).toEqual([md5(before), 'gone', md5(after)]);
  });

  it('bytes renamed into place whose line never came (a crash after the removal) are no chunk', async () => {
    const dir = join(await tempDir('ci-folder-index-'), 'node');
    const sourceDir = await tempDir('ci-folder-index-src-');
    const node = new FolderNode('crashed', dir);
    const before = randomBytes(3000);
    const stored = await storeFromFile(node, sourceDir, 'y_chunk_0', before);
    await node.close();
    // What a writer killed between its rename and its line leaves: the removal, and other bytes of the same size.
    await appendFile(join(dir, INDEX_PATH), `\n${goneLine('y_chunk_0')}\n`);
    await writeFile(stored.location, randomBytes(3000));
    const fresh = new FolderNode('crashed', dir);
    expect(await fresh.find('y_chunk_0')).toBeUndefined();
    expect(await listAll(fresh)).toEqual([]);
    await fresh.close();
  });

  it('a line torn by a writer killed mid-append is skipped; lines written after it are read', async () => {
    const dir = join(await tempDir('ci-folder-index-'), 'node');
    const sourceDir = await tempDir('ci-folder-index-src-');
    const first = new FolderNode('torn', dir);
    const expected = new Map<string, Buffer>();
    for (const id of ['a_chunk_0', 'b_chunk_0']) {
      expected.set(id, bytesOfId(id));
      await storeFromFile(first, sourceDir, id, expected.get(id)!);
    }
    await first.close();
    // A writer killed part way through its write: half of a line, no newline. Its chunk's bytes are in place.
    const tornId = 'torn_chunk_0';
    const tornBytes = bytesOfId(tornId);
    const tornFile = join(chunkSubfolder(tornId), `${chunkFileName(tornId)}.chunk`);
    await mkdir(join(dir, chunkSubfolder(tornId)), { recursive: true });
    await writeFile(join(dir, tornFile), tornBytes);
    const line = chunkLine({ ...metaFor(tornId, tornBytes.length), subfolder: chunkSubfolder(tornId), checksum: md5Checksum(tornBytes) });
    await appendFile(join(dir, INDEX_PATH), `\n${line.slice(0, Math.floor(line.length / 2))}`);

    const second = new FolderNode('torn', dir);
    expect(await second.find(tornId)).toBeUndefined();
    expect(await folderProblems(second, expected)).toEqual([]);
    // The next writer appends after the torn half: its line stands on a line of its own.
    expected.set('c_chunk_0', bytesOfId('c_chunk_0'));
    await storeFromFile(second, sourceDir, 'c_chunk_0', expected.get('c_chunk_0')!);
    expect(await folderProblems(second, expected)).toEqual([]);
    await second.close();
    const third = new FolderNode('torn', dir);
    expect(await folderProblems(third, expected)).toEqual([]);
    await third.close();
    expect(await folderStrayFiles(dir)).toEqual([tornFile]); // bytes no line describes
  });

  it('a writer process SIGKILLed mid-run: every chunk it acknowledged is held, and everything held reads back', async () => {
    const dir = join(await tempDir('ci-folder-index-'), 'node');
    const sourceDir = await tempDir('ci-folder-index-src-');
    const child = writerProcess(dir, sourceDir, 'killed', 5000);
    while (child.stored.length < 300) {
      const exit = await Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, 5))]);
      if (exit) throw new Error(`the writer exited before it was killed: ${JSON.stringify(exit)}`);
    }
    child.kill();
    const exit = await child.exited;
    expect(exit.signal).toBe('SIGKILL');
    const acknowledged = [...child.stored];
    const node = new FolderNode('after-kill', dir);
    const listed = await listAll(node);
    const listedIds = new Set(listed.map((c) => c.id));
    expect(acknowledged.filter((id) => !listedIds.has(id))).toEqual([]);
    expect(listed.length).toBeLessThan(5000);
    const expected = new Map(listed.map((c) => [c.id, bytesOfId(c.id)]));
    expect(await folderProblems(node, expected)).toEqual([]);
    await node.close();
  });

  it('two processes writing one node folder at once: every chunk of both is held once and reads back', async () => {
    const dir = join(await tempDir('ci-folder-index-'), 'node');
    const sourceDir = await tempDir('ci-folder-index-src-');
    await mkdir(dir, { recursive: true });
    const children = [writerProcess(dir, sourceDir, 'one', 600, 100), writerProcess(dir, sourceDir, 'two', 600, 100)];
    for (const child of children) {
      const exit = await child.exited;
      expect(exit, exit.stderr).toMatchObject({ code: 0 });
    }
    const ids = [...children.flatMap((c) => c.stored)];
    expect(ids).toHaveLength(1400);
    const expected = new Map(ids.map((id) => [id, bytesOfId(id)]));
    expect(expected.size).toBe(1300);
    const node = new FolderNode('two-writers', dir);
    expect(await folderProblems(node, expected)).toEqual([]);
    await node.close();
    // No two batches ran into each other: every line of the index parses.
    const lines = (await readFile(join(dir, INDEX_PATH), 'utf8')).split('\n').filter(Boolean);
    expect(lines.filter((l) => !isJson(l))).toEqual([]);
    expect(await folderStrayFiles(dir)).toEqual([]);
  });
});

describe('a node folder of the old layout (a `.chunk.json` sidecar beside each chunk)', () => {
  /** Writes chunks as the folder node did before the index: `<name>.chunk`, then `<name>.chunk.json`. */
  async function oldLayout(dir: string, ids: string[]): Promise<Map<string, Buffer>> {
    await mkdir(dir, { recursive: true });
    const chunks = new Map<string, Buffer>();
    for (const id of ids) {
      const bytes = bytesOfId(id);
      const name = chunkFileName(id);
      await writeFile(join(dir, `${name}.chunk`), bytes);
      const sidecar: StoredChunk = { ...metaFor(id, bytes.length), checksum: md5Checksum(bytes), location: join('/somewhere/else', `${name}.chunk`) };
      await writeFile(join(dir, `${name}.chunk.json`), JSON.stringify(sidecar));
      chunks.set(id, bytes);
    }
    return chunks;
  }

  it('its chunks are found, read and listed, where the folder is now', async () => {
    const dir = join(await tempDir('ci-folder-old-'), 'node');
    const chunks = await oldLayout(dir, ['old-1_chunk_0', 'old/2_chunk_0', 'X.chunk', 'X.chunk.json']);
    const node = new FolderNode('old', dir);
    expect(await folderProblems(node, chunks)).toEqual([]);
    for (const chunk of await listAll(node)) expect(chunk.location).toBe(join(dir, `${chunkFileName(chunk.id)}.chunk`));
    expect((await node.find('old-1_chunk_0'))?.location).toBe(join(dir, `${chunkFileName('old-1_chunk_0')}.chunk`));
    await node.close();
  });

  it('new chunks go to the index beside them; rewriting an old chunk replaces its sidecar by an index line', async () => {
    const dir = join(await tempDir('ci-folder-old-'), 'node');
    const sourceDir = await tempDir('ci-folder-index-src-');
    const chunks = await oldLayout(dir, ['kept_chunk_0', 'rewritten_chunk_0']);
    const node = new FolderNode('mixed', dir);
    const fresh = randomBytes(2000);
    await storeFromFile(node, sourceDir, 'new_chunk_0', fresh);
    chunks.set('new_chunk_0', fresh);
    const rewritten = randomBytes(1500);
    await storeFromFile(node, sourceDir, 'rewritten_chunk_0', rewritten, { sourceEtag: '"v2"' });
    chunks.set('rewritten_chunk_0', rewritten);
    for (const looking of [node, new FolderNode('mixed', dir)]) {
      expect(await folderProblems(looking, chunks)).toEqual([]);
      await looking.close();
    }
    expect((await readdir(dir)).filter((n) => n.endsWith('.chunk.json'))).toEqual(['kept_chunk_0.chunk.json']);
    expect((await heldChunks(dir)).map((c) => [c.id, c.via]).sort()).toEqual([
      ['kept_chunk_0', 'sidecar'],
      ['new_chunk_0', 'index'],
      ['rewritten_chunk_0', 'index'],
    ]);
  });

  it('an index line about an id wins over its sidecar, even one the rewrite did not get to remove', async () => {
    const dir = join(await tempDir('ci-folder-old-'), 'node');
    await oldLayout(dir, ['stale_chunk_0']);
    await mkdir(join(dir, '.cloud-ingest-index'));
    await writeFile(join(dir, INDEX_PATH), `${goneLine('stale_chunk_0')}\n`);
    const node = new FolderNode('stale', dir);
    expect(await node.find('stale_chunk_0')).toBeUndefined();
    expect(await listAll(node)).toEqual([]);
    await node.close();
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
