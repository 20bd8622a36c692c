// Hostile and unlucky clients against a real agent process, over raw loopback sockets: what one request does must
// not spill into another one's answer, and every refusal says what went wrong.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { createConnection } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAgents, spawnAgent } from '../helpers/agents.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { incomingFiles } from '../helpers/agent-store.ts';
import { md5, waitFor } from './helpers.ts';

const MiB = 1024 * 1024;

afterAll(cleanupAgents);

function auth(agent: AgentProcess): Record<string, string> {
  return { authorization: `Bearer ${agent.token}` };
}

async function put(agent: AgentProcess, id: string, bytes: Buffer, sourceEtag: string): Promise<number> {
  const res = await fetch(`${agent.url}/v1/chunks/${encodeURIComponent(id)}`, {
    method: 'PUT',
    headers: { ...auth(agent), 'x-chunk-size': String(bytes.length), 'x-chunk-algorithm': 'md5', 'x-chunk-checksum': md5(bytes), 'x-chunk-source-etag': sourceEtag },
    body: bytes,
  });
  await res.arrayBuffer();
  return res.status;
}

/** One GET on a connection of its own: the status, the chunk headers and the whole body. */
function get(agent: AgentProcess, path: string): Promise<{ status: number; size: string | undefined; checksum: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${agent.url}${path}`, { headers: auth(agent), agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, size: res.headers['x-chunk-size'] as string | undefined, checksum: res.headers['x-chunk-checksum'] as string | undefined, body: Buffer.concat(parts) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Writes `head` on a raw connection, then `trickle` one byte every `everyMs` until the agent answers and closes. */
function trickle(agent: AgentProcess, head: string, everyMs: number): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve) => {
    const began = Date.now();
    let answer = '';
    const socket = createConnection({ host: '127.0.0.1', port: agent.port });
    const timer = setInterval(() => socket.writable && socket.write('x'), everyMs);
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, ms: Date.now() - began });
    });
    socket.write(head);
  });
}

function parseAnswer(answer: string): { status: number; error: { code: string; message: string } | undefined } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
  const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
  try {
    return { status, error: (JSON.parse(body) as { error?: { code: string; message: string } }).error };
  } catch {
    return { status, error: undefined };
  }
}

describe('a chunk replaced while it is being read', () => {
  it('every read gets one copy whole: its bytes with that same copy`s checksum and size, never one copy`s headers on the other`s bytes', async () => {
    const agent = await spawnAgent();
    // Copies of different sizes, so a mixed answer shows in x-chunk-size as well as in the checksum.
    const copies = Array.from({ length: 4 }, (_, i) => randomBytes(64 * 1024 + i * 1000));
    expect(await put(agent, 'replaced_chunk_0', copies[0]!, 'v0')).toBe(201);

    let writing = true;
    const reads: { size: string | undefined; checksum: string | undefined; body: Buffer }[] = [];
    const readers = Array.from({ length: 3 }, async () => {
      while (writing) {
        const res = await get(agent, '/v1/chunks/replaced_chunk_0');
        expect(res.status).toBe(200);
        reads.push(res);
      }
    });
    // Each upload names a new source version: the stored copy is replaced every time.
    for (let i = 1; i <= 150; i++) expect(await put(agent, 'replaced_chunk_0', copies[i % copies.length]!, `v${i}`)).toBe(200);
    writing = false;
    await Promise.all(readers);

    expect(reads.length).toBeGreaterThan(50);
    const mixed = reads.filter((r) => md5(r.body) !== r.checksum || String(r.body.length) !== r.size);
    expect(mixed.length, `${mixed.length} of ${reads.length} reads sent one copy's headers with another copy's bytes`).toBe(0);
    for (const r of reads) expect(copies.map(md5)).toContain(md5(r.body));
    expect(await incomingFiles(agent.dir)).toEqual([]);
    await agent.kill('SIGTERM');
  });
});

describe('a request that takes longer than --request-timeout-ms', () => {
  it('is answered 408 `timeout` (not 400 "malformed"), close to the limit, and an upload`s temp file is removed', async () => {
    const agent = await spawnAgent({ args: ['--request-timeout-ms', '1500'] });
    // An upload whose body keeps coming, a byte every 100 ms: never idle, but never done either.
    const head = `PUT /v1/chunks/slow_chunk_0 HTTP/1.1\r\nHost: agent\r\nauthorization: Bearer ${agent.token}\r\nx-chunk-size: 100000\r\nx-chunk-algorithm: md5\r\ncontent-length: 100000\r\n\r\n`;
    const upload = trickle(agent, head, 100);
    await waitFor('the slow upload to reach the agent', async () => (await incomingFiles(agent.dir)).length === 1 || undefined);
    const slow = await upload;
    const answer = parseAnswer(slow.answer);
    expect(answer.status, slow.answer).toBe(408);
    expect(answer.error).toMatchObject({ code: 'timeout', message: expect.stringMatching(/--request-timeout-ms/) });
    expect(slow.ms).toBeLessThan(10_000);
    await waitFor('the timed-out upload to be deleted', async () => (await incomingFiles(agent.dir)).length === 0 || undefined);

    // Headers that never end (one header line every 100 ms) get the same answer.
    const headers = parseAnswer((await trickle(agent, `GET /v1/health HTTP/1.1\r\nHost: agent\r\nx-a: `, 100)).answer);
    expect(headers.status).toBe(408);
    expect(headers.error?.code).toBe('timeout');

    expect((await get(agent, '/v1/chunks/slow_chunk_0')).status).toBe(404);
    expect((await get(agent, '/v1/health')).status).toBe(200);
    await agent.kill('SIGTERM');
  });
});

describe('a malformed request pipelined behind a download', () => {
  it('never writes its error into the download`s body: the bytes received are the chunk`s own, and the agent serves on', async () => {
    const agent = await spawnAgent();
    const bytes = randomBytes(16 * MiB);
    expect(await put(agent, 'big_chunk_0', bytes, 'v1')).toBe(201);

    const received = await new Promise<Buffer>((resolve) => {
      const parts: Buffer[] = [];
      const socket = createConnection({ host: '127.0.0.1', port: agent.port });
      socket.on('data', (d: Buffer) => parts.push(d));
      socket.on('error', () => {});
      socket.on('close', () => resolve(Buffer.concat(parts)));
      socket.write(`GET /v1/chunks/big_chunk_0 HTTP/1.1\r\nHost: agent\r\nauthorization: Bearer ${agent.token}\r\n\r\n`);
      // Not reading for a while keeps the download in progress, its body half sent, when the garbage arrives.
      socket.pause();
      setTimeout(() => {
        socket.write('NOT HTTP AT ALL\r\n\r\n');
        socket.resume();
      }, 300);
    });
    const headEnd = received.indexOf('\r\n\r\n');
    expect(received.subarray(0, headEnd).toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    const body = received.subarray(headEnd + 4);
    expect(body.length).toBeGreaterThan(0);
    // Cut short is acceptable (the connection was spoiled); foreign bytes inside the chunk's bytes are not.
    expect(body.length).toBeLessThanOrEqual(bytes.length);
    expect(body.equals(bytes.subarray(0, body.length)), 'the download body holds bytes that are not the chunk`s').toBe(true);

    const again = await get(agent, '/v1/chunks/big_chunk_0');
    expect(md5(again.body)).toBe(md5(bytes));
    await agent.kill('SIGTERM');
  });
});
