// The agent's store when writing fails: a real agent process on a real, deliberately small tmpfs (mounted for the
// test; needs root or CAP_SYS_ADMIN), and a real directory where a chunk's file should go. Whatever fails, the store
// keeps every chunk it acknowledged, leaves no file behind for the upload that failed, and says why.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import { NodeError } from '../../electron/engine/nodes/node.ts';
import { cleanupAgents, spawnAgent } from '../helpers/agents.ts';
import { agentChunkFiles, agentChunkPath, incomingFiles } from '../helpers/agent-store.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { tempDir } from '../helpers/temp.ts';
import { bufferChunk, hashStream, md5, rawPut } from './helpers.ts';

const MiB = 1024 * 1024;
const mounts: string[] = [];
const started: AgentProcess[] = [];

afterAll(async () => {
  for (const agent of started) await agent.kill('SIGKILL');
  for (const dir of mounts) execFileSync('umount', [dir]);
  await cleanupAgents();
});

function canMountTmpfs(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A fresh tmpfs of `bytes` bytes: a disk that really fills up. */
async function smallDisk(bytes: number): Promise<string> {
  const dir = await tempDir('ci-agent-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

async function agentOn(dir: string, token?: string): Promise<AgentProcess> {
  const agent = await spawnAgent({ dir, ...(token ? { token } : {}) });
  started.push(agent);
  return agent;
}

function nodeFor(agent: AgentProcess): AgentNode {
  return new AgentNode({ id: 'disk-1', url: agent.url, tokenEnv: 'NODE_TOKEN', env: { NODE_TOKEN: agent.token } });
}

async function health(agent: AgentProcess): Promise<{ diskFreeBytes: number; freeBytes: number; chunkCount: number; bytesHeld: number }> {
  const res = await fetch(`${agent.url}/v1/health`, { headers: { authorization: `Bearer ${agent.token}` } });
  return (await res.json()) as { diskFreeBytes: number; freeBytes: number; chunkCount: number; bytesHeld: number };
}

/** Chunk `id`'s data and sidecar, relative to the agent's folder. */
function filesOf(id: string): string[] {
  const data = agentChunkPath('', id);
  return [data, `${data}.json`];
}

describe.runIf(canMountTmpfs())('a disk that fills up while a chunk is committed', () => {
  it('metadata that does not fit: 507, no orphan data file, nothing left after a restart', async () => {
    const store = join(await smallDisk(MiB), 'store');
    let agent = await agentOn(store);
    const node = nodeFor(agent);
    // Exactly the free space: the data fits, then its metadata sidecar does not.
    const free = (await health(agent)).diskFreeBytes;
    const bytes = randomBytes(free);
    const c = bufferChunk(bytes);
    const error = await node.write({ id: 'fills_chunk_0', file: 'fills', index: 0, offset: 0, size: free }, c.data, c.checksum).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NodeError);
    expect((error as NodeError).code).toBe('full');
    expect((error as NodeError).message).toMatch(/507.*disk is full/);
    expect(await agentChunkFiles(store)).toEqual([]);
    expect(await incomingFiles(store)).toEqual([]);
    expect((await health(agent)).diskFreeBytes).toBe(free);

    await node.close();
    await agent.kill('SIGKILL');
    agent = await agentOn(store, agent.token);
    expect(await agentChunkFiles(store)).toEqual([]);
    expect(await health(agent)).toMatchObject({ chunkCount: 0, bytesHeld: 0 });
    // The node works again for a chunk that fits.
    const small = bufferChunk(randomBytes(8192));
    const again = nodeFor(agent);
    await again.write({ id: 'fits_chunk_0', file: 'fits', index: 0, offset: 0, size: 8192 }, small.data, small.checksum);
    await again.close();
  });

  it('a replace that cannot be written keeps the stored chunk, in the index and on disk, across a restart', async () => {
    const store = join(await smallDisk(MiB), 'store');
    let agent = await agentOn(store);
    const put = (bytes: Buffer, etag: string, file: string) =>
      rawPut(
        agent.url,
        '/v1/chunks/kept_chunk_0',
        { authorization: `Bearer ${agent.token}`, 'x-chunk-size': String(bytes.length), 'x-chunk-algorithm': 'md5', 'x-chunk-source-etag': etag, 'x-chunk-file': file },
        [bytes],
        { trailerChecksum: md5(bytes) },
      ).response;
    const v1 = randomBytes(1000);
    expect((await put(v1, 'v1', 'kept')).status).toBe(201);
    // The new version takes all the free space and its metadata (a long file name) needs three pages: more than
    // the old copy's files give back.
    const free = (await health(agent)).diskFreeBytes;
    const v2 = randomBytes(free);
    const refused = await put(v2, 'v2', 'f'.repeat(10_000));
    expect(refused.status).toBe(507);
    expect(refused.json?.error?.code).toBe('insufficient_storage');

    const node = nodeFor(agent);
    expect((await node.find('kept_chunk_0'))?.checksum.hex).toBe(md5(v1));
    expect((await hashStream(await node.read('kept_chunk_0'))).hex).toBe(md5(v1));
    expect(await incomingFiles(store)).toEqual([]);
    await node.close();

    await agent.kill('SIGKILL');
    agent = await agentOn(store, agent.token);
    const after = nodeFor(agent);
    expect((await after.find('kept_chunk_0'))?.sourceEtag).toBe('v1');
    expect((await hashStream(await after.read('kept_chunk_0'))).hex).toBe(md5(v1));
    expect(await agentChunkFiles(store)).toEqual(filesOf('kept_chunk_0'));
    await after.close();
  });
});

describe('a commit that fails for another reason', () => {
  it('removes its upload temp file and its metadata, answers 500, and the agent goes on serving', async () => {
    const dir = await tempDir('ci-agent-');
    const blocked = agentChunkPath(dir, 'blocked_chunk_0');
    await mkdir(join(blocked, 'inside'), { recursive: true });
    await writeFile(join(blocked, 'inside', 'x'), 'not a chunk');
    const agent = await agentOn(dir);
    const node = nodeFor(agent);
    const bytes = randomBytes(MiB);
    const c = bufferChunk(bytes);
    const error = await node.write({ id: 'blocked_chunk_0', file: 'blocked', index: 0, offset: 0, size: MiB }, c.data, c.checksum).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NodeError);
    expect((error as NodeError).message).toMatch(/HTTP 500/);
    expect(await incomingFiles(dir)).toEqual([]);
    expect(await readdir(dirname(blocked))).not.toContain('blocked_chunk_0.chunk.json');
    expect(await node.find('blocked_chunk_0')).toBeUndefined();

    const ok = bufferChunk(bytes);
    await node.write({ id: 'fine_chunk_0', file: 'fine', index: 0, offset: 0, size: MiB }, ok.data, ok.checksum);
    expect((await hashStream(await node.read('fine_chunk_0'))).hex).toBe(md5(bytes));
    await node.close();
  });

  it('data a crash left without metadata (never acknowledged) is removed at the next start; stored chunks and folders stay', async () => {
    const dir = await tempDir('ci-agent-');
    const first = await agentOn(dir);
    const node = nodeFor(first);
    const kept = randomBytes(64 * 1024);
    const c = bufferChunk(kept);
    await node.write({ id: 'kept_chunk_0', file: 'kept', index: 0, offset: 0, size: kept.length }, c.data, c.checksum);
    await node.close();
    await first.kill('SIGKILL');
    // In its subfolder, and in the folder itself (a crash of an agent that kept chunks there).
    await mkdir(dirname(agentChunkPath(dir, 'crashed_chunk_0')), { recursive: true });
    await writeFile(agentChunkPath(dir, 'crashed_chunk_0'), randomBytes(MiB));
    await writeFile(join(dir, 'crashed-flat_chunk_0.chunk'), randomBytes(MiB));
    await mkdir(join(dir, 'a-folder_chunk_0.chunk'));

    const second = await agentOn(dir, first.token);
    expect(await agentChunkFiles(dir)).toEqual(['a-folder_chunk_0.chunk', ...filesOf('kept_chunk_0')].sort());
    expect(await health(second)).toMatchObject({ chunkCount: 1, bytesHeld: kept.length });
    const after = nodeFor(second);
    expect((await hashStream(await after.read('kept_chunk_0'))).hex).toBe(md5(kept));
    await after.close();
  });
});
