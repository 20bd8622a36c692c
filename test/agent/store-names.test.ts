// Chunk ids the engine can produce, through a real agent process and its store on real files: every id is stored
// under a name of its own, acknowledged only if the name reads back as itself, and still there after a restart.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import { chunkFileName } from '../../electron/engine/chunk-names.ts';
import { cleanupAgents, spawnAgent } from '../helpers/agents.ts';
import { agentChunkFiles, agentChunkPath } from '../helpers/agent-store.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { tempDir } from '../helpers/temp.ts';
import { bufferChunk, hashStream, md5 } from './helpers.ts';

afterAll(cleanupAgents);

function nodeFor(agent: AgentProcess): AgentNode {
  return new AgentNode({ id: 'names-1', url: agent.url, tokenEnv: 'NODE_TOKEN', env: { NODE_TOKEN: agent.token } });
}

function metaOf(id: string, size: number) {
  return { id, file: id.replace(/_chunk_\d+$/, ''), index: 0, offset: 0, size };
}

/** Stops the agent (SIGKILL: no chance to tidy up) and starts a new one on the same folder and token. */
async function restart(agent: AgentProcess): Promise<AgentProcess> {
  await agent.kill('SIGKILL');
  return spawnAgent({ dir: agent.dir, token: agent.token! });
}

const ASTRAL = '\u{1D400}'; // MATHEMATICAL BOLD CAPITAL A: a letter outside the BMP, two UTF-16 code units
const LONE_SURROGATE = /\p{Surrogate}/u; // with the u flag, only a surrogate that is not half of a pair matches

describe('chunk file names', () => {
  it('are cut on code points: never half a surrogate pair, never over 200 bytes, always valid UTF-8', () => {
    const ids: string[] = [];
    for (let lead = 0; lead < 4; lead++) {
      for (const unit of [ASTRAL, '数', 'é', 'x', '/', '\t']) ids.push(`${'a'.repeat(lead)}${unit.repeat(300)}_chunk_0`);
    }
    for (let i = 0; i < 200; i++) {
      const pool = [ASTRAL, '\u{1F600}', '数', 'é', 'x', '.', '%', ' ', '\n'];
      ids.push(Array.from({ length: 50 + i * 3 }, (_, j) => pool[(i * 7 + j * j) % pool.length]).join(''));
    }
    for (const id of ids) {
      const name = chunkFileName(id);
      expect(LONE_SURROGATE.test(name), `name of ${JSON.stringify(id.slice(0, 20))}… has a lone surrogate`).toBe(false);
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(200);
      expect(Buffer.from(name, 'utf8').toString('utf8')).toBe(name);
    }
  });

  it('keep the documented format, so stores written before still load', async () => {
    const dir = await tempDir('ci-agent-old-');
    const longId = `${'x'.repeat(300)}_chunk_0`;
    const digest = createHash('sha256').update(longId).digest('hex').slice(0, 16);
    const stored = [
      { id: 'data/a.bin_chunk_0', name: 'data%2Fa.bin_chunk_0' },
      { id: longId, name: `${'x'.repeat(160)}~${digest}` },
    ];
    await mkdir(dir, { recursive: true });
    for (const { id, name } of stored) {
      const bytes = Buffer.from(`old bytes of ${id}`);
      expect(chunkFileName(id)).toBe(name);
      await writeFile(join(dir, `${name}.chunk`), bytes);
      const meta = { ...metaOf(id, bytes.length), checksum: { algorithm: 'md5', hex: md5(bytes) }, storedAt: new Date(0).toISOString() };
      await writeFile(join(dir, `${name}.chunk.json`), JSON.stringify(meta));
    }
    const agent = await spawnAgent({ dir });
    const node = nodeFor(agent);
    for (const { id } of stored) expect((await hashStream(await node.read(id))).hex).toBe(md5(Buffer.from(`old bytes of ${id}`)));
    await node.close();
    await agent.kill('SIGTERM');
  });

  it('chunks an older agent kept under broken names (a cut surrogate pair, `X.chunk` as X) are moved to their own names and served', async () => {
    const dir = await tempDir('ci-agent-old-');
    const astralId = `a${ASTRAL.repeat(120)}_chunk_0`;
    const digest = createHash('sha256').update(astralId).digest('hex').slice(0, 16);
    const legacy = [
      // The old cut left half of a pair at the end of the head; the file system stored it as U+FFFD.
      { id: astralId, oldName: `a${ASTRAL.repeat(39)}\uFFFD~${digest}`, newName: `a${ASTRAL.repeat(39)}~${digest}` },
      // The old store took `.chunk` off the end of a name: `X.chunk` was kept in the files of X.
      { id: 'data.bin_chunk_0.chunk', oldName: 'data.bin_chunk_0', newName: 'data.bin_chunk_0.chunk' },
    ];
    for (const { id, oldName } of legacy) {
      const bytes = Buffer.from(`old bytes of ${id}`);
      await writeFile(join(dir, `${oldName}.chunk`), bytes);
      const meta = { ...metaOf(id, bytes.length), checksum: { algorithm: 'md5', hex: md5(bytes) }, storedAt: new Date(0).toISOString() };
      await writeFile(join(dir, `${oldName}.chunk.json`), JSON.stringify(meta));
    }
    const agent = await spawnAgent({ dir });
    const node = nodeFor(agent);
    for (const { id } of legacy) expect((await hashStream(await node.read(id))).hex).toBe(md5(Buffer.from(`old bytes of ${id}`)));
    const names = (await readdir(dir)).filter((n) => n.endsWith('.chunk') || n.endsWith('.chunk.json')).sort();
    expect(names).toEqual(legacy.flatMap(({ newName }) => [`${newName}.chunk`, `${newName}.chunk.json`]).sort());
    await node.close();
    await agent.kill('SIGTERM');
  });
});

describe('ids the engine can produce', () => {
  // Keys are object names: any Unicode, control characters included, up to 1,024 bytes in the clouds and 4,096 on
  // local disks; the engine's id is the key plus `_chunk_N`. Each id gets bytes of its own, in the order given, so
  // an id stored over another's files shows as the other's bytes changing.
  async function storeThenRestart(ids: string[]): Promise<void> {
    let agent = await spawnAgent();
    let node = nodeFor(agent);
    const payload = new Map<string, Buffer>();
    for (const id of ids) {
      const bytes = randomBytes(1000 + payload.size);
      payload.set(id, bytes);
      const c = bufferChunk(bytes);
      const stored = await node.write(metaOf(id, bytes.length), c.data, c.checksum);
      expect(stored.id).toBe(id);
      expect(stored.checksum.hex).toBe(md5(bytes));
    }
    const check = async (when: string): Promise<void> => {
      for (const [id, bytes] of payload) {
        const label = `${when}: ${JSON.stringify([...id].slice(0, 30).join(''))}`;
        expect((await node.find(id))?.checksum.hex, label).toBe(md5(bytes));
        expect((await hashStream(await node.read(id))).hex, `bytes ${label}`).toBe(md5(bytes));
      }
      const listed: string[] = [];
      for await (const s of node.list()) listed.push(s.id);
      expect(listed.sort()).toEqual([...payload.keys()].sort());
      const probe = await node.probe();
      expect(probe).toMatchObject({ chunkCount: payload.size, bytesHeld: [...payload.values()].reduce((n, b) => n + b.length, 0) });
    };
    await check('before the restart');
    await node.close();
    agent = await restart(agent);
    node = nodeFor(agent);
    await check('after the restart');

    const names = await agentChunkFiles(agent.dir);
    expect(names.filter((n) => n.endsWith('.chunk.json'))).toHaveLength(payload.size);
    expect(names.filter((n) => n.endsWith('.chunk'))).toHaveLength(payload.size);
    for (const id of payload.keys()) expect(names).toContain(relative(agent.dir, agentChunkPath(agent.dir, id)));
    for (const name of names) {
      expect(LONE_SURROGATE.test(name) || name.includes('\uFFFD'), name).toBe(false);
      expect(Buffer.byteLength(basename(name))).toBeLessThanOrEqual(255);
    }
    await node.close();
    await agent.kill('SIGTERM');
  }

  it('ids of astral letters long enough to be cut (at an odd and at an even code unit) are kept across a restart', async () => {
    await storeThenRestart([`a${ASTRAL.repeat(120)}_chunk_0`, `${ASTRAL.repeat(120)}_chunk_1`, `ab${'\u{1F600}'.repeat(90)}_chunk_2`]);
  });

  it('ids of 1,000+ characters (1,500 ASCII, 1,000 CJK letters, a 4,000-byte local path) are kept across a restart', async () => {
    await storeThenRestart([
      `${'k/'.repeat(750)}_chunk_0`,
      `${'数据'.repeat(500)}_chunk_0`,
      `${`${'d'.repeat(250)}/`.repeat(16)}f_chunk_0`,
    ]);
  });

  it('`X.chunk` and `X.chunk.json` are ids of their own: they never land on the files of X', async () => {
    await storeThenRestart(['data.bin_chunk_0', 'data.bin_chunk_0.chunk', 'data.bin_chunk_0.chunk.json', 'data.bin_chunk_0.chunk.chunk']);
  });

  it('ids with control characters (tab, newline, NUL, DEL) are accepted like any other', async () => {
    await storeThenRestart(['reports/q1\tfinal.csv_chunk_0', 'logs/line\nbreak.txt_chunk_0', 'x\u0001\u001f\u007f\u0000y_chunk_0', '\r\n_chunk_0']);
  });

  it('an id the agent cannot keep is refused as this chunk`s problem (422 invalid_chunk), never as the node`s', async () => {
    const agent = await spawnAgent();
    const headers = { authorization: `Bearer ${agent.token}`, 'x-chunk-size': '3', 'x-chunk-algorithm': 'md5', 'x-chunk-checksum': md5(Buffer.from('abc')) };
    const tooLong = await fetch(`${agent.url}/v1/chunks/${'z'.repeat(20_000)}`, { method: 'PUT', headers, body: 'abc' });
    expect(tooLong.status).toBe(422);
    expect(((await tooLong.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'invalid_chunk', message: expect.stringMatching(/16384 bytes/) });
    const badFile = await fetch(`${agent.url}/v1/chunks/ok_chunk_0`, { method: 'PUT', headers: { ...headers, 'x-chunk-file': '%E0%A4%A' }, body: 'abc' });
    expect(badFile.status).toBe(422);
    expect(((await badFile.json()) as { error: { code: string } }).error.code).toBe('invalid_chunk');
    // Past even the header limit: the answer is still JSON naming the chunk as the problem.
    const huge = await fetch(`${agent.url}/v1/chunks/${'h'.repeat(200_000)}`, { method: 'PUT', headers, body: 'abc' });
    expect(huge.status).toBe(431);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('invalid_chunk');
    const health = await fetch(`${agent.url}/v1/health`, { headers: { authorization: `Bearer ${agent.token}` } });
    expect(((await health.json()) as { chunkCount: number }).chunkCount).toBe(0);
    await agent.kill('SIGTERM');
  });
});
