// The agent node: the NodeTarget conformance suite against real agent processes, plus what only a remote node has
// (a pool of connections, the 100-continue handshake, an answer that stops part way, refusals for one chunk's sake).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import type { AgentNodeOptions } from '../../electron/engine/nodes/agent-node.ts';
import { NodeError, isNodeLevelError } from '../../electron/engine/nodes/node.ts';
import { cleanupAgents, restartAgent, spawnAgent, stallProxy } from '../helpers/agents.ts';
import type { AgentProcess, SpawnAgentOptions } from '../helpers/agents.ts';
import { KiB, MiB, readAll, sourceError, streamOf, within } from './chunks.ts';
import { damageChunkFile, defineNodeSuite, metaFor, strayFiles } from './conformance.ts';
import type { NodeUnderTest } from './conformance.ts';

function nodeFor(agent: AgentProcess, extra: Partial<AgentNodeOptions> = {}): AgentNode {
  return new AgentNode({ id: 'agent-under-test', url: agent.url, tokenEnv: agent.tokenEnv, env: { [agent.tokenEnv]: agent.token }, ...extra });
}

async function agentUnderTest(options: SpawnAgentOptions = {}): Promise<NodeUnderTest> {
  let agent = await spawnAgent(options);
  const dir = agent.dir;
  const fixture: NodeUnderTest = {
    node: nodeFor(agent),
    leftovers: () => strayFiles(dir, '.incoming', ['.agent.lock']),
    damage: (chunkId) => damageChunkFile(dir, chunkId),
    async restart() {
      await fixture.node.close();
      agent = await restartAgent(agent, 'SIGKILL');
      fixture.node = nodeFor(agent);
      return fixture.node;
    },
  };
  return fixture;
}

defineNodeSuite('agent', {
  writePaths: ['write'],
  sameVersionOtherBytes: 'conflict',
  readsStoredOnThreads: false,
  open: () => agentUnderTest(),
  openWithRoomFor: (bytes) => agentUnderTest({ maxBytes: bytes }),
  cleanup: cleanupAgents,
});

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return within(
    promise.then(
      () => new Error('expected a rejection'),
      (error: unknown) => error,
    ),
    30_000,
    'the request',
  );
}

describe('an agent node', () => {
  afterAll(cleanupAgents);

  it('a source that fails while its write waits for a free connection rejects that write only', async () => {
    const agent = await spawnAgent();
    const node = nodeFor(agent, { maxSockets: 1 });
    const hold = new AbortController();
    // The only connection is held by a write whose source gives 1 MiB and then nothing.
    const holding = streamOf(randomBytes(4 * MiB), { stallAfter: MiB });
    const held = errorOf(node.write(metaFor('holding.bin_chunk_0', 4 * MiB), holding.data, holding.checksum, hold.signal));
    const failure = sourceError('the source failed while the write waited for a connection');
    const waiting = streamOf(randomBytes(MiB), { failWith: failure, failAfter: 0, delayMs: 200 });
    expect(await errorOf(node.write(metaFor('waiting.bin_chunk_0', MiB), waiting.data, waiting.checksum))).toBe(failure);
    hold.abort(new Error('done holding'));
    await held;
    const bytes = randomBytes(100 * KiB);
    const after = streamOf(bytes);
    await node.write(metaFor('after.bin_chunk_0', bytes.length), after.data, after.checksum);
    expect(await node.find('waiting.bin_chunk_0')).toBeUndefined();
    expect((await readAll(await node.read('after.bin_chunk_0'))).equals(bytes)).toBe(true);
    await node.close();
  });

  it('a source that fails while its write waits for the node to accept the upload (100-continue) rejects with the source error', async () => {
    const agent = await spawnAgent();
    const proxy = await stallProxy({ port: agent.port });
    proxy.stall(); // connections open, but neither the request nor the 100-continue gets through
    const node = new AgentNode({ id: 'stalled-1', url: proxy.url, tokenEnv: agent.tokenEnv, env: { [agent.tokenEnv]: agent.token }, timeoutMs: 20_000 });
    const failure = sourceError('the source failed before the node said continue');
    const source = streamOf(randomBytes(MiB), { failWith: failure, failAfter: 0, delayMs: 200 });
    expect(await errorOf(node.write(metaFor('no-continue.bin_chunk_0', MiB), source.data, source.checksum))).toBe(failure);
    proxy.resume();
    expect(await node.find('no-continue.bin_chunk_0')).toBeUndefined();
    await node.close();
    await proxy.close();
  });

  it('refuses one chunk for its own sake (an id it cannot keep) with `refused`, a chunk-level error; the node stays usable', async () => {
    const agent = await spawnAgent();
    const node = nodeFor(agent, { id: 'refusing-1' });
    const tooLong = `${'x'.repeat(20_000)}_chunk_0`; // past the agent's longest id
    const bytes = streamOf(randomBytes(2000));
    const error = await errorOf(node.write(metaFor(tooLong, 2000), bytes.data, bytes.checksum));
    expect(error).toBeInstanceOf(NodeError);
    expect((error as NodeError).code, (error as NodeError).message).toBe('refused');
    expect(isNodeLevelError(error)).toBe(false);
    expect((error as NodeError).message).toMatch(/refusing-1.*xxxx.*\(HTTP 4\d\d\)/s);
    // Past the agent's header limit, the same refusal comes as 431.
    const overHeaders = `${'y'.repeat(140_000)}_chunk_0`;
    const more = streamOf(randomBytes(2000));
    const error431 = await errorOf(node.write(metaFor(overHeaders, 2000), more.data, more.checksum));
    expect(error431).toBeInstanceOf(NodeError);
    expect((error431 as NodeError).code, (error431 as NodeError).message.slice(0, 300)).toBe('refused');
    for (const refused of [error, error431]) expect((refused as NodeError).message.length, 'a message shows a long id cut short').toBeLessThan(1000);
    expect((await node.probe()).ok).toBe(true);
    const small = streamOf(randomBytes(500));
    expect((await node.write(metaFor('small.bin_chunk_0', 500), small.data, small.checksum)).size).toBe(500);
    await node.close();
  });

  it('a refusal about the node itself (401, 409, 413, 507) is never `refused`', async () => {
    const agent = await spawnAgent({ maxBytes: 1000, args: ['--max-chunk-bytes', '1500'] });
    const wrongToken = new AgentNode({ id: 'wrong-1', url: agent.url, tokenEnv: 'T', env: { T: 'y'.repeat(40) } });
    const a = streamOf(randomBytes(10));
    expect(await errorOf(wrongToken.write(metaFor('a_chunk_0', 10), a.data, a.checksum))).toMatchObject({ code: 'unauthorized' });
    await wrongToken.close();
    const node = nodeFor(agent);
    const b = streamOf(randomBytes(10));
    await node.write(metaFor('b_chunk_0', 10), b.data, b.checksum);
    const other = streamOf(randomBytes(10));
    expect(await errorOf(node.write(metaFor('b_chunk_0', 10), other.data, other.checksum))).toMatchObject({ code: 'conflict' });
    const big = streamOf(randomBytes(1200));
    expect(await errorOf(node.write(metaFor('c_chunk_0', 1200), big.data, big.checksum))).toMatchObject({ code: 'full' });
    // Every chunk of a run has about the same size: one this agent's --max-chunk-bytes turns away says the node cannot take the run's chunks.
    const huge = streamOf(randomBytes(2000));
    const tooLarge = await errorOf(node.write(metaFor('d_chunk_0', 2000), huge.data, huge.checksum));
    expect(tooLarge).toBeInstanceOf(NodeError);
    expect(isNodeLevelError(tooLarge)).toBe(true);
    await node.close();
  });
});

describe('an agent node whose answers stop part way (a loopback server that sends headers, then nothing)', () => {
  let server: Server;
  let url: string;

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('find, list, probe, write and a refused read each fail with `timeout` instead of hanging', async () => {
    server = createServer((req, res) => {
      req.resume();
      const isRead = req.method === 'GET' && /^\/v1\/chunks\/[^/?]+$/.test(req.url ?? '');
      res.writeHead(isRead ? 404 : 200, { 'content-type': 'application/json', 'content-length': '4096' });
      res.write('{"id":"stalled.bin_chunk_0","fi'); // and then nothing, the connection held open
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const node = new AgentNode({ id: 'half-answer-1', url, timeoutMs: 500, probeTimeoutMs: 500 });
    const started = Date.now();
    for (const [what, request] of [
      ['find', () => node.find('stalled.bin_chunk_0')],
      ['list', async () => {
        for await (const chunk of node.list()) void chunk;
      }],
      ['read (answered 404)', () => node.read('stalled.bin_chunk_0')],
      ['write', () => {
        const source = streamOf(randomBytes(1000));
        return node.write(metaFor('stalled.bin_chunk_0', 1000), source.data, source.checksum);
      }],
    ] as const) {
      const error = await within(request().then(() => new Error(`${what} succeeded`), (e: unknown) => e), 10_000, what);
      expect(error, `${what}: ${String(error)}`).toBeInstanceOf(NodeError);
      expect((error as NodeError).code, (error as NodeError).message).toBe('timeout');
      expect((error as NodeError).message).toContain('half-answer-1');
    }
    const probe = await within(node.probe(), 10_000, 'probe');
    expect(probe.ok).toBe(false);
    expect(probe.error).toMatch(/half-answer-1/);
    expect(Date.now() - started).toBeLessThan(20_000);
    await node.close();
  });
});
