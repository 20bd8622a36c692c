// Where a real agent process keeps its chunks on disk: each in `<sub>/` (two hex digits of the SHA-256 of its id, the
// folder node's chunkSubfolder) with its metadata beside it, uploads in progress in `.incoming/<sub>/`; stores
// written before the subfolders (both files in the folder itself) keep working, and a chunk of theirs written again
// moves to its subfolder.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chunkFileName, chunkSubfolder } from '../../electron/engine/chunk-names.ts';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import { NodeError } from '../../electron/engine/nodes/node.ts';
import { agentChunkFiles, agentChunkPath, incomingFiles, SUBFOLDER } from '../helpers/agent-store.ts';
import { cleanupAgents, restartAgent, runCli, spawnAgent } from '../helpers/agents.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { tempDir } from '../helpers/temp.ts';
import { bufferChunk, hashStream, md5, rawPut, waitFor } from './helpers.ts';

afterAll(cleanupAgents);

const MiB = 1024 * 1024;

function nodeFor(agent: AgentProcess): AgentNode {
  return new AgentNode({ id: 'layout-1', url: agent.url, tokenEnv: agent.tokenEnv, env: { [agent.tokenEnv]: agent.token } });
}

function metaOf(id: string, size: number, sourceEtag = 'v1') {
  return { id, file: `files/${id}`, index: 0, offset: 0, size, sourceEtag };
}

async function write(node: AgentNode, id: string, bytes: Buffer, sourceEtag = 'v1'): Promise<void> {
  const c = bufferChunk(bytes);
  await node.write(metaOf(id, bytes.length, sourceEtag), c.data, c.checksum);
}

/** Chunk `id`'s two files, relative to the agent's folder: in its subfolder, or (flat) in the folder itself. */
function filesOf(id: string, layout: 'subfolder' | 'flat' = 'subfolder'): string[] {
  const name = `${chunkFileName(id)}.chunk`;
  const data = layout === 'flat' ? name : `${chunkSubfolder(id)}/${name}`;
  return [data, `${data}.json`];
}

/** Writes chunk `id` as an agent did before the subfolders: data and metadata sidecar in the folder itself. */
async function writeFlat(dir: string, id: string, bytes: Buffer, folder = dir): Promise<void> {
  const name = chunkFileName(id);
  await writeFile(join(folder, `${name}.chunk`), bytes);
  const meta = { ...metaOf(id, bytes.length), checksum: { algorithm: 'md5', hex: md5(bytes) }, storedAt: new Date(0).toISOString() };
  await writeFile(join(folder, `${name}.chunk.json`), `${JSON.stringify(meta, null, 2)}\n`);
}

async function listIds(node: AgentNode): Promise<string[]> {
  const ids: string[] = [];
  for await (const chunk of node.list()) ids.push(chunk.id);
  return ids.sort();
}

/** Each id found with its checksum and read back byte-exact; the problems, one line each. */
async function problems(node: AgentNode, expected: Map<string, Buffer>): Promise<string[]> {
  const found: string[] = [];
  for (const [id, bytes] of expected) {
    const stored = await node.find(id);
    if (stored?.checksum.hex !== md5(bytes)) found.push(`${id}: find gives ${JSON.stringify(stored)}`);
    const read = await node.read(id).then(hashStream, (error: unknown) => String(error));
    if (typeof read === 'string' || read.hex !== md5(bytes)) found.push(`${id}: read gives ${JSON.stringify(read)}`);
  }
  return found;
}

function total(chunks: Map<string, Buffer>): number {
  return [...chunks.values()].reduce((sum, bytes) => sum + bytes.length, 0);
}

describe('the agent keeps each chunk in a two-hex-digit subfolder', () => {
  it('data and metadata in the subfolder of its id, and nothing else in the subfolders or the folder itself; kept across a restart', async () => {
    let agent = await spawnAgent();
    let node = nodeFor(agent);
    const ids = ['plain_chunk_0', 'data/train/x.bin_chunk_7', '../../escape_chunk_0', '.hidden', 'X.chunk', 'X.chunk.json', `${'数'.repeat(200)}_chunk_0`, 'caf\u00e9_chunk_0', 'cafe\u0301_chunk_0'];
    const chunks = new Map(ids.map((id, i) => [id, randomBytes(1000 + i)]));
    for (const [id, bytes] of chunks) await write(node, id, bytes);

    expect(await agentChunkFiles(agent.dir)).toEqual(ids.flatMap((id) => filesOf(id)).sort());
    for (const [id, bytes] of chunks) {
      expect((await stat(agentChunkPath(agent.dir, id))).size).toBe(bytes.length);
      const sidecar = JSON.parse(await readFile(`${agentChunkPath(agent.dir, id)}.json`, 'utf8')) as { id: string; checksum: { hex: string } };
      expect(sidecar).toMatchObject({ id, checksum: { hex: md5(bytes) } });
    }
    // Each subfolder is made when its first chunk comes, with its twin in .incoming/, and holds only chunk files.
    const subfolders = [...new Set(ids.map(chunkSubfolder))].sort();
    const top = await readdir(agent.dir, { withFileTypes: true });
    expect(top.map((entry) => entry.name).sort()).toEqual(['.agent.lock', '.incoming', ...subfolders].sort());
    for (const entry of top) if (SUBFOLDER.test(entry.name)) expect(entry.isDirectory()).toBe(true);
    const inSubfolders = (await Promise.all(subfolders.map(async (sub) => (await readdir(join(agent.dir, sub))).map((name) => `${sub}/${name}`)))).flat();
    expect(inSubfolders.sort()).toEqual(ids.flatMap((id) => filesOf(id)).sort());
    expect((await readdir(join(agent.dir, '.incoming'))).sort()).toEqual(subfolders);
    expect(await incomingFiles(agent.dir)).toEqual([]);

    await node.close();
    agent = await restartAgent(agent, 'SIGKILL');
    node = nodeFor(agent);
    expect(await problems(node, chunks)).toEqual([]);
    expect(await listIds(node)).toEqual([...ids].sort());
    expect(await node.probe()).toMatchObject({ ok: true, chunkCount: ids.length, bytesHeld: total(chunks) });
    await node.close();
    await agent.kill('SIGTERM');
  });
});

describe('a store written before the subfolders (both files in the folder itself)', () => {
  it('is found, listed, read, counted, replaced into the subfolders and deleted as before', async () => {
    const dir = await tempDir('ci-agent-flat-');
    const ids = ['flat/a.bin_chunk_0', 'flat/b.bin_chunk_1', 'kept_chunk_0', 'replaced_chunk_0', 'deleted_chunk_0', `${'L'.repeat(300)}_chunk_0`, '../up_chunk_0'];
    const chunks = new Map(ids.map((id, i) => [id, randomBytes(2000 + i)]));
    for (const [id, bytes] of chunks) await writeFlat(dir, id, bytes);
    // An agent stopped while moving a chunk to its subfolder: the new copy there is complete, the old one not yet gone.
    const halfMoved = 'half-moved_chunk_0';
    await writeFlat(dir, halfMoved, randomBytes(3000));
    chunks.set(halfMoved, randomBytes(3100));
    await mkdir(join(dir, chunkSubfolder(halfMoved)));
    await writeFlat(dir, halfMoved, chunks.get(halfMoved)!, join(dir, chunkSubfolder(halfMoved)));
    const quota = total(chunks) + MiB;

    let agent = await spawnAgent({ dir, maxBytes: quota });
    let node = nodeFor(agent);
    expect(await problems(node, chunks)).toEqual([]);
    expect(await listIds(node)).toEqual([...chunks.keys()].sort());
    expect(await node.probe()).toMatchObject({ ok: true, chunkCount: chunks.size, bytesHeld: total(chunks), freeBytes: quota - total(chunks) });
    expect(await agentChunkFiles(dir)).toEqual([...ids.flatMap((id) => filesOf(id, 'flat')), ...filesOf(halfMoved)].sort());

    // The same bytes again: nothing is rewritten, the chunk stays where it is.
    const before = await stat(join(dir, filesOf('kept_chunk_0', 'flat')[0]!));
    await write(node, 'kept_chunk_0', chunks.get('kept_chunk_0')!);
    expect((await stat(join(dir, filesOf('kept_chunk_0', 'flat')[0]!))).ino).toBe(before.ino);
    // Other bytes for the same source version: a conflict, the stored copy untouched.
    const conflict = await write(node, 'kept_chunk_0', randomBytes(2002)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(conflict).toBeInstanceOf(NodeError);
    expect((conflict as NodeError).code).toBe('conflict');

    // A new source version replaces it: written to its subfolder, its flat files gone, counted once.
    const newer = randomBytes(5000);
    await write(node, 'replaced_chunk_0', newer, 'v2');
    chunks.set('replaced_chunk_0', newer);
    expect(await agentChunkFiles(dir)).toEqual([...ids.filter((id) => id !== 'replaced_chunk_0').flatMap((id) => filesOf(id, 'flat')), ...filesOf(halfMoved), ...filesOf('replaced_chunk_0')].sort());
    expect((await node.find('replaced_chunk_0'))?.sourceEtag).toBe('v2');
    expect(await problems(node, chunks)).toEqual([]);
    expect(await listIds(node)).toEqual([...chunks.keys()].sort());
    expect(await node.probe()).toMatchObject({ chunkCount: chunks.size, bytesHeld: total(chunks), freeBytes: quota - total(chunks) });

    // Deleted behind the agent's back: missing at once, gone after a restart.
    for (const file of filesOf('deleted_chunk_0', 'flat')) await rm(join(dir, file));
    const missing = await node.read('deleted_chunk_0').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((missing as NodeError).code).toBe('not_found');
    chunks.delete('deleted_chunk_0');
    await node.close();
    agent = await restartAgent(agent, 'SIGKILL');
    node = nodeFor(agent);
    expect(await problems(node, chunks)).toEqual([]);
    expect(await listIds(node)).toEqual([...chunks.keys()].sort());
    expect(await node.probe()).toMatchObject({ chunkCount: chunks.size, bytesHeld: total(chunks), freeBytes: quota - total(chunks) });
    const flatLeft = ids.filter((id) => id !== 'replaced_chunk_0' && id !== 'deleted_chunk_0');
    expect(await agentChunkFiles(dir)).toEqual([...flatLeft.flatMap((id) => filesOf(id, 'flat')), ...filesOf(halfMoved), ...filesOf('replaced_chunk_0')].sort());
    await node.close();
    await agent.kill('SIGTERM');
  });
});

describe('uploads in progress, in .incoming/<sub>/', () => {
  it('those an agent left behind are removed at the next start, from .incoming/ and its subfolders; one in progress is kept', async () => {
    const dir = await tempDir('ci-agent-incoming-');
    await mkdir(join(dir, '.incoming', '3f'), { recursive: true });
    await mkdir(join(dir, '.incoming', 'not-a-subfolder'), { recursive: true });
    await writeFile(join(dir, '.incoming', 'older-agent.part'), 'an upload of an agent before the subfolders');
    await writeFile(join(dir, '.incoming', '3f', 'killed.part'), 'an upload a killed agent left');
    await writeFile(join(dir, '.incoming', '3f', 'staged.json.part'), '{}');
    await writeFile(join(dir, '.incoming', 'not-a-subfolder', 'x.part'), 'x');
    const first = await spawnAgent({ dir });
    expect(await incomingFiles(dir)).toEqual([]);

    // An upload held open mid-body: its file is in the subfolder of its id, and stays while a second agent,
    // refused the folder, starts and stops.
    const id = 'fresh_chunk_0';
    const body = randomBytes(2 * MiB);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const headers = { authorization: `Bearer ${first.token}`, 'x-chunk-size': String(body.length), 'x-chunk-algorithm': 'md5' };
    const fresh = rawPut(first.url, `/v1/chunks/${id}`, headers, [body.subarray(0, MiB), body.subarray(MiB)], { trailerChecksum: md5(body), between: (i) => (i === 0 ? gate : Promise.resolve()) });
    const inProgress = await waitFor('the upload to reach .incoming/', async () => {
      const files = await incomingFiles(dir);
      return files.length === 1 ? files[0] : undefined;
    });
    expect(inProgress).toMatch(new RegExp(`^${chunkSubfolder(id)}/fresh_chunk_0\\.[0-9a-f-]{36}\\.part$`));
    const second = await runCli(['agent', '--port', '0', '--dir', dir, '--token-env', 'SECOND_TOKEN'], { SECOND_TOKEN: 'z'.repeat(32) });
    expect(second.code).toBe(2);
    expect(await incomingFiles(dir)).toEqual([inProgress]);
    release();
    expect((await fresh.response).status).toBe(201);
    expect(await incomingFiles(dir)).toEqual([]);
    expect(await agentChunkFiles(dir)).toEqual(filesOf(id));

    // One the agent was receiving when it was SIGKILLed is gone at the next start; the stored chunk stays.
    const partial = rawPut(first.url, '/v1/chunks/partial_chunk_0', { ...headers, 'x-chunk-size': String(4 * MiB) }, [randomBytes(MiB)], { holdOpen: true });
    partial.response.catch(() => undefined);
    await waitFor('the partial upload to reach .incoming/', async () => (await incomingFiles(dir)).length === 1 || undefined);
    expect((await incomingFiles(dir))[0]).toMatch(new RegExp(`^${chunkSubfolder('partial_chunk_0')}/partial_chunk_0\\.`));
    const restarted = await restartAgent(first, 'SIGKILL');
    expect(await incomingFiles(dir)).toEqual([]);
    const node = nodeFor(restarted);
    expect(await problems(node, new Map([[id, body]]))).toEqual([]);
    expect(await node.find('partial_chunk_0')).toBeUndefined();
    await node.close();
    await restarted.kill('SIGTERM');
  });
});
