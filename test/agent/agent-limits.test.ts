// What slow or many clients can hold on a real agent process: the quota is charged as bytes arrive (a declared
// size reserves nothing), an upload that stops sending is ended, and connections past the cap get 503.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import { agentLogs, cleanupAgents, spawnAgent } from '../helpers/agents.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { incomingFiles } from '../helpers/agent-store.ts';
import { bufferChunk, md5, rawPut, waitFor } from './helpers.ts';

const MiB = 1024 * 1024;

afterAll(cleanupAgents);

function nodeFor(agent: AgentProcess): AgentNode {
  return new AgentNode({ id: 'limits-1', url: agent.url, tokenEnv: 'NODE_TOKEN', env: { NODE_TOKEN: agent.token } });
}

function uploadHeaders(agent: AgentProcess, size: number): Record<string, string> {
  return { authorization: `Bearer ${agent.token}`, 'x-chunk-size': String(size), 'x-chunk-algorithm': 'md5' };
}

async function health(agent: AgentProcess): Promise<{ freeBytes: number; bytesHeld: number; inFlight: number }> {
  const res = await fetch(`${agent.url}/v1/health`, { headers: { authorization: `Bearer ${agent.token}` } });
  return (await res.json()) as { freeBytes: number; bytesHeld: number; inFlight: number };
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('the quota', () => {
  it('is charged as bytes arrive: two slow uploads do not hold it, and the one that runs over gets 507 mid-body', async () => {
    const agent = await spawnAgent({ maxBytes: 4 * MiB });
    const slow = [randomBytes(2 * MiB), randomBytes(2 * MiB)];
    const gates = [gate(), gate()];
    const uploads = slow.map((bytes, i) =>
      rawPut(agent.url, `/v1/chunks/slow_chunk_${i}`, uploadHeaders(agent, bytes.length), [bytes.subarray(0, 64 * 1024), bytes.subarray(64 * 1024)], {
        trailerChecksum: md5(bytes),
        between: (part) => (part === 0 ? gates[i]!.wait : Promise.resolve()),
      }),
    );
    for (const u of uploads) u.response.catch(() => undefined); // awaited below; a failed assertion must not leave them unhandled
    // 128 KiB have arrived of the 4 MiB the two declared: the rest of the quota is free for others.
    await waitFor('the slow uploads` first bytes to be charged', async () => (await health(agent)).freeBytes === 4 * MiB - 128 * 1024 || undefined, 5000);
    expect((await health(agent)).inFlight).toBe(2);

    const node = nodeFor(agent);
    const quick = bufferChunk(randomBytes(MiB));
    const stored = await node.write({ id: 'quick_chunk_0', file: 'quick', index: 0, offset: 0, size: MiB }, quick.data, quick.checksum);
    expect(stored.size).toBe(MiB);

    gates[0]!.open();
    expect((await uploads[0]!.response).status).toBe(201);
    // 3 MiB held: the second slow upload cannot finish. It is refused once its bytes pass the quota.
    gates[1]!.open();
    const over = await uploads[1]!.response.then(
      (r) => r,
      (e: Error) => e,
    );
    if (over instanceof Error) expect(over.message).toMatch(/ECONNRESET|EPIPE|socket hang up/);
    else {
      expect(over.status).toBe(507);
      expect(over.json?.error?.code).toBe('insufficient_storage');
    }
    expect(agentLogs(agent).some((l) => l.msg === 'upload refused' && l.id === 'slow_chunk_1' && l.code === 'insufficient_storage')).toBe(true);
    await waitFor('the refused upload to be deleted', async () => (await incomingFiles(agent.dir)).length === 0 || undefined);
    expect(await health(agent)).toMatchObject({ bytesHeld: 3 * MiB, freeBytes: MiB, inFlight: 0 });
    expect(await node.find('slow_chunk_1')).toBeUndefined();
    await node.close();
    await agent.kill('SIGTERM');
  });
});

describe('an upload that stops sending', () => {
  it('is ended after --upload-idle-timeout-ms with 408, and its bytes and quota are freed', async () => {
    const agent = await spawnAgent({ maxBytes: 4 * MiB, args: ['--upload-idle-timeout-ms', '1000'] });
    const bytes = randomBytes(2 * MiB);
    const stalled = rawPut(agent.url, '/v1/chunks/stalled_chunk_0', uploadHeaders(agent, bytes.length), [bytes.subarray(0, 256 * 1024)], { holdOpen: true });
    stalled.response.catch(() => undefined);
    const began = Date.now();
    const res = await stalled.response;
    const took = Date.now() - began;
    expect(res.status).toBe(408);
    expect(res.json?.error).toMatchObject({ code: 'timeout', message: expect.stringMatching(/no bytes for 1000 ms/) });
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(10_000);
    stalled.request.destroy();
    await waitFor('the stalled upload to be deleted', async () => (await incomingFiles(agent.dir)).length === 0 || undefined);
    expect(await health(agent)).toMatchObject({ freeBytes: 4 * MiB, inFlight: 0 });
    await agent.kill('SIGTERM');
  });
});

/** A keep-alive connection of its own that has made one request and stays open. */
async function openConnection(agent: AgentProcess): Promise<{ status: number; body: string; close: () => void }> {
  const pool = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return new Promise((resolve, reject) => {
    const req = http.get(`${agent.url}/v1/health`, { agent: pool, headers: { authorization: `Bearer ${agent.token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, close: () => pool.destroy() }));
    });
    req.on('error', reject);
  });
}

describe('the connection cap', () => {
  it('answers 503 `busy` on connections past --max-connections, and serves again once one closes', async () => {
    const agent = await spawnAgent({ args: ['--max-connections', '4'] });
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await openConnection(agent));
    expect(held.map((c) => c.status)).toEqual([200, 200, 200, 200]);

    const extra = await Promise.all(Array.from({ length: 6 }, () => openConnection(agent)));
    expect(extra.map((c) => c.status)).toEqual([503, 503, 503, 503, 503, 503]);
    const body = JSON.parse(extra[0]!.body) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: 'busy', message: expect.stringMatching(/4 connections.*--max-connections/) });
    for (const c of extra) c.close();

    held[0]!.close();
    await waitFor('a free connection slot', async () => (await openConnection(agent).then((c) => (c.close(), c.status))) === 200 || undefined);
    for (const c of held) c.close();
    await agent.kill('SIGTERM');
  });
});
