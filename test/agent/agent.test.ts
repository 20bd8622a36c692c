// The node agent as a real process: auth, streamed uploads with trailer checksums, idempotency, limits,
// path safety, and shutdown. The client side is the engine's AgentNode.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import { NodeError } from '../../electron/engine/nodes/node.ts';
import { chunkSubfolder } from '../../electron/engine/chunk-names.ts';
import { agentLogs, cleanupAgents, runCli, spawnAgent, stallProxy } from '../helpers/agents.ts';
import { agentChunkFiles, agentChunkPath, incomingFiles } from '../helpers/agent-store.ts';
import { tempDir } from '../helpers/temp.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { bufferChunk, hashStream, md5, randomChunk, rawPut, waitFor } from './helpers.ts';

const MiB = 1024 * 1024;

function nodeFor(agent: AgentProcess, extra: Partial<ConstructorParameters<typeof AgentNode>[0]> = {}): AgentNode {
  return new AgentNode({ id: 'agent-1', url: agent.url, tokenEnv: 'NODE_TOKEN', env: { NODE_TOKEN: agent.token }, ...extra });
}

function meta(id: string, size: number, extra: { sourceEtag?: string; offset?: number } = {}) {
  return { id, file: id.replace(/_chunk_\d+$/, ''), index: 0, offset: extra.offset ?? 0, size, ...(extra.sourceEtag ? { sourceEtag: extra.sourceEtag } : {}) };
}

async function expectNodeError(promise: Promise<unknown>, code: string): Promise<NodeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NodeError);
  expect((error as NodeError).code).toBe(code);
  return error as NodeError;
}

afterAll(cleanupAgents);

describe('starting the agent', () => {
  it('refuses to start without a token and names the variable to set', async () => {
    const dir = await tempDir();
    const env = { NOPE_TOKEN: '' };
    const result = await runCli(['agent', '--port', '0', '--dir', dir, '--token-env', 'NOPE_TOKEN'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('NOPE_TOKEN');
    expect(result.stderr).toContain('--insecure-no-auth');
  });

  it('refuses a token too short to be a secret', async () => {
    const dir = await tempDir();
    const result = await runCli(['agent', '--port', '0', '--dir', dir, '--token-env', 'SHORT_TOKEN'], { SHORT_TOKEN: 'abc' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/at least 16/);
  });

  it('runs without auth only when told to, and says so loudly', async () => {
    const agent = await spawnAgent({ token: null });
    expect(agent.stderr()).toMatch(/WARNING.*WITHOUT A TOKEN/);
    expect(agentLogs(agent).some((l) => l.level === 'warn' && String(l.msg).includes('AUTHENTICATION DISABLED'))).toBe(true);
    const probe = await new AgentNode({ id: 'open', url: agent.url }).probe();
    expect(probe.ok).toBe(true);
    await agent.kill('SIGTERM');
  });

  it('refuses a folder another agent is using, and frees it on exit', async () => {
    const first = await spawnAgent();
    const second = await runCli(['agent', '--port', '0', '--dir', first.dir, '--token-env', 'X_TOKEN'], { X_TOKEN: 'y'.repeat(32) });
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`another agent (pid ${first.proc.pid}) is using`);
    expect((await first.kill('SIGTERM')).code).toBe(0);
    expect(await readdir(first.dir)).not.toContain('.agent.lock');
    const third = await spawnAgent({ dir: first.dir });
    await third.kill('SIGTERM');
  });

  it('binds to loopback by default', async () => {
    const agent = await spawnAgent();
    expect(new URL(agent.url).hostname).toBe('127.0.0.1');
    await agent.kill('SIGTERM');
  });
});

describe('a running agent', () => {
  let agent: AgentProcess;
  let node: AgentNode;

  beforeAll(async () => {
    agent = await spawnAgent();
    node = nodeFor(agent, { maxSockets: 2 });
  });
  afterAll(async () => {
    await node.close();
  });

  it('reports health with free space, counts, version and uptime', async () => {
    const res = await fetch(`${agent.url}/v1/health`, { headers: { authorization: `Bearer ${agent.token}` } });
    expect(res.status).toBe(200);
    const health = (await res.json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', version: expect.any(String), chunkCount: expect.any(Number), bytesHeld: expect.any(Number) });
    expect(health.freeBytes).toBeGreaterThan(0);
    expect(health.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(health)).not.toContain(agent.dir);
    const probe = await node.probe();
    expect(probe).toMatchObject({ ok: true, full: false });
    expect(probe.freeBytes).toBeGreaterThan(0);
  });

  it('answers 401 without the token, and AgentNode names the node and the variable to fix', async () => {
    const res = await fetch(`${agent.url}/v1/health`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/Bearer/);

    const wrong = new AgentNode({ id: 'gpu-box-7', url: agent.url, tokenEnv: 'GPU7_TOKEN', env: { GPU7_TOKEN: 'x'.repeat(40) } });
    const probe = await wrong.probe();
    expect(probe.ok).toBe(false);
    expect(probe.error).toContain('gpu-box-7');
    expect(probe.error).toContain('GPU7_TOKEN');
    expect(probe.error).toContain('401');
    const c = bufferChunk(randomBytes(1000));
    const error = await expectNodeError(wrong.write(meta('wrong-token_chunk_0', 1000), c.data, c.checksum), 'unauthorized');
    expect(error.message).toContain('gpu-box-7');
    expect(error.nodeId).toBe('gpu-box-7');
    await wrong.close();

    const unset = new AgentNode({ id: 'gpu-box-8', url: agent.url, tokenEnv: 'GPU8_TOKEN', env: {} });
    const c2 = bufferChunk(randomBytes(1000));
    const missing = await expectNodeError(unset.write(meta('missing-token_chunk_0', 1000), c2.data, c2.checksum), 'unauthorized');
    expect(missing.message).toMatch(/gpu-box-8.*GPU8_TOKEN.*not set/);
    await unset.close();

    const none = new AgentNode({ id: 'gpu-box-9', url: agent.url });
    const c3 = bufferChunk(randomBytes(1000));
    const noConfig = await expectNodeError(none.write(meta('no-token_chunk_0', 1000), c3.data, c3.checksum), 'unauthorized');
    expect(noConfig.message).toMatch(/gpu-box-9.*token_env/);
    await none.close();

    for (const id of ['wrong-token_chunk_0', 'missing-token_chunk_0', 'no-token_chunk_0']) expect(await node.find(id)).toBeUndefined();
    expect(agent.stderr()).not.toContain('x'.repeat(40));
  });

  it('streams a 25 MiB chunk with its checksum in the trailer; find, list and read give it back byte-exact', async () => {
    const size = 25 * MiB + 123;
    const c = randomChunk(size);
    const stored = await node.write(meta('data/train/shard-000.bin_chunk_3', size, { sourceEtag: '"etag-1"', offset: 3 * 25 * MiB }), c.data, c.checksum);
    const digest = await c.checksum;
    expect(stored).toMatchObject({ id: 'data/train/shard-000.bin_chunk_3', size, checksum: digest, sourceEtag: '"etag-1"', file: 'data/train/shard-000.bin' });

    const found = await node.find('data/train/shard-000.bin_chunk_3');
    expect(found).toMatchObject({ size, checksum: digest, offset: 3 * 25 * MiB });
    const listed = [];
    for await (const s of node.list()) listed.push(s.id);
    expect(listed).toContain('data/train/shard-000.bin_chunk_3');
    const back = await hashStream(await node.read('data/train/shard-000.bin_chunk_3'));
    expect(back).toEqual({ hex: digest.hex, bytes: size });

    const path = agentChunkPath(agent.dir, 'data/train/shard-000.bin_chunk_3');
    expect(path.endsWith('/data%2Ftrain%2Fshard-000.bin_chunk_3.chunk')).toBe(true);
    expect((await stat(path)).size).toBe(size);
    expect(await incomingFiles(agent.dir)).toEqual([]);
    await expectNodeError(node.read('never-stored_chunk_0'), 'not_found');
  });

  it('sha256 works the same way', async () => {
    const shaNode = nodeFor(agent, { checksumAlgorithm: 'sha256' });
    const c = randomChunk(3 * MiB, 'sha256');
    const stored = await shaNode.write(meta('sha_chunk_0', 3 * MiB), c.data, c.checksum);
    expect(stored.checksum).toEqual(await c.checksum);
    expect((await hashStream(await shaNode.read('sha_chunk_0'), 'sha256')).hex).toBe((await c.checksum).hex);
    await shaNode.close();
  });

  it('is idempotent: the same chunk again succeeds without rewriting; other bytes conflict; a new source version replaces', async () => {
    const bytes = randomBytes(2 * MiB);
    const first = bufferChunk(bytes);
    await node.write(meta('idem_chunk_0', bytes.length, { sourceEtag: 'v1' }), first.data, first.checksum);
    const path = agentChunkPath(agent.dir, 'idem_chunk_0');
    const before = await stat(path);

    const again = bufferChunk(bytes);
    const stored = await node.write(meta('idem_chunk_0', bytes.length, { sourceEtag: 'v1' }), again.data, again.checksum);
    expect(stored.checksum.hex).toBe(md5(bytes));
    const after = await stat(path);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);

    const other = randomBytes(2 * MiB);
    const conflicting = bufferChunk(other);
    const error = await expectNodeError(node.write(meta('idem_chunk_0', other.length, { sourceEtag: 'v1' }), conflicting.data, conflicting.checksum), 'conflict');
    expect(error.message).toContain('idem_chunk_0');
    expect((await node.find('idem_chunk_0'))?.checksum.hex).toBe(md5(bytes));
    expect(await incomingFiles(agent.dir)).toEqual([]);

    // x-chunk-replace overrides a conflict explicitly.
    const forced = rawPut(agent.url, '/v1/chunks/idem_chunk_0', { authorization: `Bearer ${agent.token}`, 'x-chunk-size': String(other.length), 'x-chunk-algorithm': 'md5', 'x-chunk-source-etag': 'v1', 'x-chunk-replace': 'true' }, [other], { trailerChecksum: md5(other) });
    expect((await forced.response).json?.status).toBe('replaced');
    expect((await node.find('idem_chunk_0'))?.checksum.hex).toBe(md5(other));

    // A different source version under the same id is the changed source: it replaces the stored copy.
    const newer = randomBytes(MiB);
    const v2 = bufferChunk(newer);
    const replaced = await node.write(meta('idem_chunk_0', newer.length, { sourceEtag: 'v2' }), v2.data, v2.checksum);
    expect(replaced).toMatchObject({ sourceEtag: 'v2', size: MiB });
    expect((await hashStream(await node.read('idem_chunk_0'))).hex).toBe(md5(newer));
  });

  it('rejects a wrong declared checksum and keeps nothing', async () => {
    const c = randomChunk(4 * MiB);
    const lie = c.checksum.then((d) => ({ ...d, hex: d.hex.replace(/^./, (ch) => (ch === '0' ? '1' : '0')) }));
    const error = await expectNodeError(node.write(meta('liar_chunk_0', 4 * MiB), c.data, lie), 'checksum_mismatch');
    expect(error.message).toMatch(/declared/);
    expect(await node.find('liar_chunk_0')).toBeUndefined();
    expect((await agentChunkFiles(agent.dir)).some((f) => f.includes('liar'))).toBe(false);
    expect(await incomingFiles(agent.dir)).toEqual([]);

    // Raw: no checksum at all is refused too.
    const body = randomBytes(1000);
    const none = rawPut(agent.url, '/v1/chunks/nochecksum', { authorization: `Bearer ${agent.token}`, 'x-chunk-size': '1000', 'x-chunk-algorithm': 'md5' }, [body]);
    const res = await none.response;
    expect(res.status).toBe(400);
    expect(res.json?.error?.message).toMatch(/no checksum declared/);
    expect(await node.find('nochecksum')).toBeUndefined();
  });

  it('rejects bodies longer or shorter than the declared size, and sizes over the limit', async () => {
    const auth = { authorization: `Bearer ${agent.token}`, 'x-chunk-algorithm': 'md5' };
    const body = randomBytes(3000);
    const long = rawPut(agent.url, '/v1/chunks/long', { ...auth, 'x-chunk-size': '2000' }, [body.subarray(0, 1500), body.subarray(1500)], { trailerChecksum: md5(body) });
    const longRes = await long.response;
    expect(longRes.status).toBe(413);
    expect(longRes.json?.error?.code).toBe('too_large');
    const short = rawPut(agent.url, '/v1/chunks/short', { ...auth, 'x-chunk-size': '4000' }, [body], { trailerChecksum: md5(body) });
    const shortRes = await short.response;
    expect(shortRes.status).toBe(400);
    expect(shortRes.json?.error?.code).toBe('size_mismatch');
    const huge = rawPut(agent.url, '/v1/chunks/huge', { ...auth, 'x-chunk-size': String(2 * 1024 * MiB), expect: '100-continue' }, []);
    huge.request.on('continue', () => huge.request.end());
    expect((await huge.response).status).toBe(413);
    for (const id of ['long', 'short', 'huge']) expect(await node.find(id)).toBeUndefined();
    await waitFor('temp files to be removed', async () => (await incomingFiles(agent.dir)).length === 0 || undefined);
  });

  it('keeps every chunk inside its folder whatever the id', async () => {
    const ids = ['../../escape_chunk_0', '/etc/passwd_chunk_0', '..', '.', 'a\\..\\..\\b_chunk_0', '%2e%2e%2fx_chunk_0', 'ünï/cødé ☃_chunk_0', 'x'.repeat(600), '../new\nline/\u0000_chunk_0'];
    for (const id of ids) {
      const c = bufferChunk(Buffer.from(`payload of ${id}`));
      const stored = await node.write(meta(id, Buffer.byteLength(`payload of ${id}`)), c.data, c.checksum);
      expect(stored.id).toBe(id);
      expect((await hashStream(await node.read(id))).hex).toBe((await c.checksum).hex);
    }
    const parent = join(agent.dir, '..');
    expect((await readdir(parent)).filter((n) => /escape|passwd|^b_chunk/.test(n))).toEqual([]);
    // The agent's own entries and its two-hex-digit subfolders, holding chunk files only.
    for (const entry of await readdir(agent.dir, { withFileTypes: true })) {
      if (entry.name === '.incoming' || entry.name === '.agent.lock') continue;
      expect(entry.isDirectory() && /^[0-9a-f]{2}$/.test(entry.name), entry.name).toBe(true);
      for (const name of await readdir(join(agent.dir, entry.name))) expect(name).toMatch(/\.chunk(\.json)?$/);
    }
    for (const id of ids) expect((await stat(agentChunkPath(agent.dir, id))).isFile()).toBe(true);
  });

  it('lists in pages', async () => {
    for (let i = 0; i < 5; i++) {
      const c = bufferChunk(Buffer.from(`page ${i}`));
      await node.write(meta(`page_chunk_${i}`, 6), c.data, c.checksum);
    }
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const q = new URLSearchParams({ limit: '2', ...(after !== null ? { after } : {}) });
      const res = await fetch(`${agent.url}/v1/chunks?${q}`, { headers: { authorization: `Bearer ${agent.token}` } });
      const page = (await res.json()) as { chunks: { id: string }[]; next: string | null };
      expect(page.chunks.length).toBeLessThanOrEqual(2);
      seen.push(...page.chunks.map((c) => c.id));
      after = page.next;
      pages++;
    } while (after !== null);
    const all: string[] = [];
    for await (const s of node.list()) all.push(s.id);
    expect(seen).toEqual(all);
    expect(pages).toBeGreaterThan(3);
    expect(all.filter((id) => id.startsWith('page_'))).toEqual(['page_chunk_0', 'page_chunk_1', 'page_chunk_2', 'page_chunk_3', 'page_chunk_4']);
  });

  it('keeps at most maxSockets uploads open to one node, and serializes uploads of one id', async () => {
    const slow = (size: number, block: number, delayMs: number) => {
      const bytes = randomBytes(size);
      let offset = 0;
      const data = new Readable({
        read() {
          setTimeout(() => {
            if (offset >= size) return void this.push(null);
            this.push(bytes.subarray(offset, offset + block));
            offset += block;
          }, delayMs);
        },
      });
      return { data, checksum: Promise.resolve({ algorithm: 'md5' as const, hex: md5(bytes) }), bytes };
    };
    let maxInFlight = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const res = await fetch(`${agent.url}/v1/health`, { headers: { authorization: `Bearer ${agent.token}` } });
        maxInFlight = Math.max(maxInFlight, ((await res.json()) as { inFlight: number }).inFlight);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const writes = Array.from({ length: 6 }, (_, i) => {
      const c = slow(2 * MiB, 128 * 1024, 10);
      return node.write(meta(`bounded_chunk_${i}`, 2 * MiB), c.data, c.checksum);
    });
    await Promise.all(writes);
    polling = false;
    await poll;
    expect(maxInFlight).toBe(2); // node was built with maxSockets: 2

    const same = randomBytes(3 * MiB);
    const [x, y] = [bufferChunk(same), bufferChunk(same)];
    const wide = nodeFor(agent);
    const both = await Promise.all([wide.write(meta('twice_chunk_0', same.length), x.data, x.checksum), wide.write(meta('twice_chunk_0', same.length), y.data, y.checksum)]);
    expect(both.map((b) => b.checksum.hex)).toEqual([md5(same), md5(same)]);
    const stored = agentLogs(agent).filter((l) => l.msg === 'chunk stored' && l.id === 'twice_chunk_0').map((l) => l.status);
    expect(stored.sort()).toEqual(['created', 'exists']);
    await wide.close();
  });

  it('reports chunks damaged behind its back instead of sending half of them', async () => {
    for (const id of ['deleted_chunk_0', 'truncated_chunk_0']) {
      const c = randomChunk(MiB);
      await node.write(meta(id, MiB), c.data, c.checksum);
    }
    await rm(agentChunkPath(agent.dir, 'deleted_chunk_0'));
    await expectNodeError(node.read('deleted_chunk_0'), 'not_found');
    await truncate(agentChunkPath(agent.dir, 'truncated_chunk_0'), 1000);
    const back = await hashStream(await node.read('truncated_chunk_0'));
    expect(back.bytes).toBe(1000);
    expect(back.hex).not.toBe((await node.find('truncated_chunk_0'))?.checksum.hex);
    const head = await fetch(`${agent.url}/v1/chunks/truncated_chunk_0`, { method: 'HEAD', headers: { authorization: `Bearer ${agent.token}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-chunk-checksum')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('logs structured JSON lines', () => {
    const logs = agentLogs(agent);
    expect(logs.some((l) => l.msg === 'agent listening' && l.url === agent.url)).toBe(true);
    expect(logs.some((l) => l.msg === 'chunk stored' && typeof l.bytes === 'number')).toBe(true);
    expect(logs.some((l) => l.msg === 'upload refused' && l.code === 'checksum_mismatch')).toBe(true);
    expect(agent.stderr()).not.toContain(agent.token!);
  });
});

describe('limits and failures', () => {
  it('answers 507 past --max-bytes and reports itself full', async () => {
    const agent = await spawnAgent({ maxBytes: 3 * MiB });
    const node = nodeFor(agent);
    for (let i = 0; i < 3; i++) {
      const c = randomChunk(MiB);
      await node.write(meta(`q_chunk_${i}`, MiB), c.data, c.checksum);
    }
    const c = randomChunk(MiB);
    const error = await expectNodeError(node.write(meta('q_chunk_3', MiB), c.data, c.checksum), 'full');
    expect(error.message).toMatch(/agent-1.*507.*quota/);
    const probe = await node.probe();
    expect(probe).toMatchObject({ ok: true, full: true, freeBytes: 0, chunkCount: 3, bytesHeld: 3 * MiB });
    expect(await node.find('q_chunk_3')).toBeUndefined();
    await node.close();
    await agent.kill('SIGTERM');
  });

  it('a node that stalls past the timeout fails with `timeout`, and its temp file is removed', async () => {
    const agent = await spawnAgent();
    const proxy = await stallProxy({ port: agent.port });
    const node = new AgentNode({ id: 'slow-1', url: proxy.url, tokenEnv: 'T', env: { T: agent.token }, timeoutMs: 1500, probeTimeoutMs: 1000 });
    const ok = randomChunk(MiB);
    await node.write(meta('before-stall_chunk_0', MiB), ok.data, ok.checksum);
    proxy.stall();
    const c = randomChunk(24 * MiB);
    const error = await expectNodeError(node.write(meta('stalled_chunk_0', 24 * MiB), c.data, c.checksum), 'timeout');
    expect(error.message).toMatch(/slow-1.*no progress for 1500 ms/);
    const probe = await node.probe();
    expect(probe.ok).toBe(false);
    expect(probe.error).toMatch(/slow-1/);
    proxy.resume();
    await waitFor('the agent to drop the aborted upload', async () => (await incomingFiles(agent.dir)).length === 0 || undefined);
    expect(await node.find('stalled_chunk_0')).toBeUndefined();
    expect((await node.probe()).ok).toBe(true);
    await node.close();
    await proxy.close();
    await agent.kill('SIGTERM');
  });

  it('an unreachable node fails with `unreachable` naming it', async () => {
    const agent = await spawnAgent();
    await agent.kill('SIGKILL');
    const node = nodeFor(agent, { id: 'gone-1' });
    const c = randomChunk(MiB);
    const error = await expectNodeError(node.write(meta('x_chunk_0', MiB), c.data, c.checksum), 'unreachable');
    expect(error.message).toMatch(/gone-1.*refused the connection/);
    expect((await node.probe()).ok).toBe(false);
    await node.close();
  });

  it('SIGTERM lets an upload in progress finish, aborts one past the grace period and deletes its temp file', async () => {
    const agent = await spawnAgent({ args: ['--grace-ms', '1500'] });
    const headers = (size: number) => ({ authorization: `Bearer ${agent.token}`, 'x-chunk-size': String(size), 'x-chunk-algorithm': 'md5' });
    const a = randomBytes(2 * MiB);
    const b = randomBytes(2 * MiB);
    let releaseA!: () => void;
    const aGate = new Promise<void>((r) => (releaseA = r));
    const finishing = rawPut(agent.url, '/v1/chunks/finishes_chunk_0', headers(a.length), [a.subarray(0, MiB), a.subarray(MiB)], { trailerChecksum: md5(a), between: (i) => (i === 0 ? aGate : Promise.resolve()) });
    const abandoned = rawPut(agent.url, '/v1/chunks/abandoned_chunk_0', headers(b.length), [b.subarray(0, MiB)], { holdOpen: true });
    await waitFor('both uploads to reach the agent', async () => (await incomingFiles(agent.dir)).length === 2 || undefined);

    agent.proc.kill('SIGTERM');
    await waitFor('the agent to start draining', () => agentLogs(agent).some((l) => l.msg === 'agent stopping') || undefined);
    await expect(fetch(`${agent.url}/v1/health`, { headers: { authorization: `Bearer ${agent.token}` } })).rejects.toThrow();
    releaseA();
    const resA = await finishing.response;
    expect(resA.status).toBe(201);
    await abandoned.response.then(
      (r) => expect(r.status).toBeGreaterThanOrEqual(500),
      (e: Error) => expect(e.message).toMatch(/socket hang up|ECONNRESET/),
    );
    const exit = await agent.exited;
    expect(exit.code).toBe(0);
    expect(agentLogs(agent).some((l) => String(l.msg).startsWith('aborting uploads'))).toBe(true);
    expect(await incomingFiles(agent.dir)).toEqual([]);
    const sub = chunkSubfolder('finishes_chunk_0');
    expect(await agentChunkFiles(agent.dir)).toEqual([`${sub}/finishes_chunk_0.chunk`, `${sub}/finishes_chunk_0.chunk.json`]);
  });

  it('after SIGKILL mid-upload, a restart removes the partial upload and still serves the stored chunks', async () => {
    const dir = await tempDir();
    await mkdir(dir, { recursive: true });
    const first = await spawnAgent({ dir });
    const node = nodeFor(first);
    const kept = randomChunk(3 * MiB);
    await node.write(meta('kept_chunk_0', 3 * MiB), kept.data, kept.checksum);
    const partial = rawPut(first.url, '/v1/chunks/partial_chunk_0', { authorization: `Bearer ${first.token}`, 'x-chunk-size': String(4 * MiB), 'x-chunk-algorithm': 'md5' }, [randomBytes(MiB)], { holdOpen: true });
    partial.response.catch(() => undefined);
    await waitFor('the partial upload to land in .incoming', async () => (await incomingFiles(dir)).length === 1 || undefined);
    await first.kill('SIGKILL');
    expect((await incomingFiles(dir)).length).toBe(1);

    const second = await spawnAgent({ dir, port: first.port, token: first.token! });
    expect(await incomingFiles(dir)).toEqual([]);
    const probe = await node.probe();
    expect(probe).toMatchObject({ ok: true, chunkCount: 1, bytesHeld: 3 * MiB });
    expect(await node.find('partial_chunk_0')).toBeUndefined();
    expect((await hashStream(await node.read('kept_chunk_0'))).hex).toBe((await kept.checksum).hex);
    await node.close();
    await second.kill('SIGTERM');
  });
});
