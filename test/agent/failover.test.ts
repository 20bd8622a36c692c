// Engine-level delivery to real agent processes: a node killed mid-ingest, replicas, a full node, a stalled node,
// and a node with a wrong token. Every run ends with the manifest checked against the nodes and the files
// reassembled byte for byte.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import type { IngestResult } from '../../electron/engine/ingest.ts';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import type { NodeTarget } from '../../electron/engine/nodes/node.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import type { IngestEvent, NodeStatus } from '../../shared/types.ts';
import { agentLogs, cleanupAgents, runCli, spawnAgent, stallProxy } from '../helpers/agents.ts';
import { tempDir } from '../helpers/temp.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { LOCAL_DETECTION, makeProject, makeSource, md5File } from './project.ts';

const MiB = 1024 * 1024;

afterAll(cleanupAgents);

async function agentsWithEnv(n: number, extra: { maxBytes?: number }[] = []): Promise<AgentProcess[]> {
  const agents = await Promise.all(Array.from({ length: n }, (_, i) => spawnAgent(extra[i] ?? {})));
  agents.forEach((a, i) => (process.env[`A${i + 1}_TOKEN`] = a.token));
  return agents;
}

function agentNodes(agents: AgentProcess[]) {
  return agents.map((a, i) => ({ id: `a${i + 1}`, url: a.url, token_env: `A${i + 1}_TOKEN` }));
}

/** Every copy the manifest lists is on its node with the manifest's checksum; every file reassembles byte-exact. */
async function checkRun(loaded: LoadedConfig, result: IngestResult, sourceMd5: Map<string, string>, opts: { liveOnly?: Set<string> } = {}): Promise<void> {
  const { manifest, manifestPath } = result;
  expect(manifest.status).toBe('complete');
  const expectedChunks = manifest.files.reduce((s, f) => s + f.chunkCount, 0);
  expect(manifest.chunks).toHaveLength(expectedChunks);
  expect(manifest.totals.bytes).toBe(manifest.files.reduce((s, f) => s + f.size, 0));
  const replicas = loaded.config.ingestion.replicas;
  const ids = new Set<string>();
  for (const chunk of manifest.chunks) {
    expect(ids.has(chunk.id)).toBe(false);
    ids.add(chunk.id);
    expect(new Set(chunk.copies.map((c) => c.nodeId)).size).toBe(replicas);
  }
  for (const f of manifest.files) {
    expect(f.status).toBe('complete');
    const indexes = manifest.chunks.filter((c) => c.file === f.key).map((c) => c.index).sort((a, b) => a - b);
    expect(indexes).toEqual(Array.from({ length: f.chunkCount }, (_, i) => i));
  }
  const nodes = new Map<string, NodeTarget>();
  for (const n of loaded.config.nodes ?? []) nodes.set(n.id, new AgentNode({ id: n.id, url: n.url!, tokenEnv: n.token_env }));
  try {
    for (const chunk of manifest.chunks) {
      const live = chunk.copies.filter((c) => !opts.liveOnly || opts.liveOnly.has(c.nodeId));
      expect(live.length, `chunk ${chunk.id} has a copy on a live node`).toBeGreaterThan(0);
      for (const copy of live) {
        const stored = await nodes.get(copy.nodeId)!.find(chunk.id);
        expect(stored?.checksum.hex, `${chunk.id} on ${copy.nodeId}`).toBe(chunk.checksum);
        expect(stored?.size).toBe(chunk.size);
      }
    }
  } finally {
    for (const n of nodes.values()) await n.close();
  }
  const report = await verifyRun({ loaded, manifestPath });
  expect(report.unrecoverable).toEqual([]);
  if (!opts.liveOnly) expect(report.problems).toEqual([]);
  const out = await tempDir('ci-reassembled-');
  for (const f of manifest.files) {
    const outPath = join(out, f.key);
    const r = await reassembleFile({ loaded, manifestPath, key: f.key, outPath });
    expect(r.matched).toBe(true);
    expect(r.bytes).toBe(f.size);
    expect(await md5File(outPath)).toBe(sourceMd5.get(f.key));
  }
}

describe('ingest into node agents', () => {
  it('3 agents, 300 MiB in 10 MiB chunks, one SIGKILLed mid-ingest: the run completes and every chunk is intact', async () => {
    const source = await makeSource([
      { name: 'shard-a.bin', bytes: 100 * MiB },
      { name: 'shard-b.bin', bytes: 100 * MiB },
      { name: 'shard-c.bin', bytes: 100 * MiB + 12345 },
    ]);
    const agents = await agentsWithEnv(3);
    const loaded = await makeProject({ source: source.dir, nodes: agentNodes(agents), chunkMb: 10 });
    let verified = 0;
    let killed: Promise<unknown> | undefined;
    const events: IngestEvent[] = [];
    const result = await runIngest({
      loaded,
      detection: LOCAL_DETECTION,
      onEvent: (e) => {
        events.push(e);
        if (e.type !== 'chunk') return;
        if (e.state === 'verified') verified++;
        // Killed while a chunk is on its way to it, so there is always one in flight to re-place.
        if (!killed && verified >= 8 && e.state === 'sending' && e.nodeId === 'a2') killed = agents[1]!.kill('SIGKILL');
      },
    });
    expect(killed).toBeDefined();
    await killed;
    const { manifest } = result;
    // Every chunk the manifest puts on a2 was stored by a2 before it died (it logs each one before answering).
    const storedOnA2 = new Set(agentLogs(agents[1]!).filter((l) => l.msg === 'chunk stored').map((l) => String(l.id)));
    for (const chunk of manifest.chunks) if (chunk.copies.some((c) => c.nodeId === 'a2')) expect(storedOnA2.has(chunk.id)).toBe(true);
    expect(manifest.chunks.some((c) => c.movedFrom.includes('a2'))).toBe(true);
    expect(manifest.totals.replacements).toBeGreaterThan(0);
    expect(manifest.nodes.find((n) => n.id === 'a2')?.healthy).toBe(false);
    expect(events.some((e) => e.type === 'node' && e.status.id === 'a2' && e.status.state !== 'healthy')).toBe(true);

    // a2 comes back with its folder: every chunk of the manifest is on a live node, verify and reassembly are exact.
    const back = await spawnAgent({ dir: agents[1]!.dir, port: agents[1]!.port, token: agents[1]!.token! });
    expect(back.url).toBe(agents[1]!.url);
    await checkRun(loaded, result, source.md5);
  });

  it('replicas: 2 with one node killed mid-ingest: every chunk still has two copies, at least one readable', async () => {
    const source = await makeSource([
      { name: 'r-1.bin', bytes: 40 * MiB },
      { name: 'r-2.bin', bytes: 20 * MiB + 7 },
    ]);
    const agents = await agentsWithEnv(3);
    const loaded = await makeProject({ source: source.dir, nodes: agentNodes(agents), chunkMb: 4, replicas: 2, concurrency: 4 });
    let verified = 0;
    let killed: Promise<unknown> | undefined;
    const result = await runIngest({
      loaded,
      detection: LOCAL_DETECTION,
      onEvent: (e) => {
        if (e.type === 'chunk' && e.state === 'verified' && ++verified === 4) killed = agents[2]!.kill('SIGKILL');
      },
    });
    await killed;
    expect(killed).toBeDefined();
    await checkRun(loaded, result, source.md5, { liveOnly: new Set(['a1', 'a2']) });
  });

  it('a node past its --max-bytes quota is marked full and its chunks go elsewhere', async () => {
    const source = await makeSource([{ name: 'q.bin', bytes: 100 * MiB }]);
    const agents = await agentsWithEnv(3, [{}, {}, { maxBytes: 25 * MiB }]);
    // Round robin keeps sending a3 its share whatever free space it reports, so it does fill up.
    const loaded = await makeProject({ source: source.dir, nodes: agentNodes(agents), chunkMb: 10, concurrency: 3, placement: 'round_robin' });
    const states: NodeStatus[] = [];
    const result = await runIngest({ loaded, detection: LOCAL_DETECTION, onEvent: (e) => void (e.type === 'node' && states.push(e.status)) });
    const onA3 = result.manifest.chunks.filter((c) => c.copies.some((x) => x.nodeId === 'a3'));
    expect(onA3.length).toBeLessThanOrEqual(2);
    expect(result.manifest.chunks.some((c) => c.movedFrom.includes('a3'))).toBe(true);
    expect(states.some((s) => s.id === 'a3' && s.state === 'full')).toBe(true);
    await checkRun(loaded, result, source.md5);
  });

  it('a node that stalls past the timeout loses its chunks to the others and the run completes', async () => {
    const source = await makeSource([{ name: 'slow.bin', bytes: 80 * MiB }]);
    const agents = await agentsWithEnv(3);
    const proxy = await stallProxy({ port: agents[2]!.port });
    const loaded = await makeProject({ source: source.dir, nodes: agentNodes(agents), chunkMb: 8, concurrency: 3 });
    // Same nodes as the config builds, with a 2 s stall timeout instead of the default 30 s, and a3 behind the proxy.
    const nodes = agents.map((a, i) => new AgentNode({ id: `a${i + 1}`, url: i === 2 ? proxy.url : a.url, tokenEnv: `A${i + 1}_TOKEN`, timeoutMs: 2000, probeTimeoutMs: 1000 }));
    let stalled = false;
    let a3Verified = false;
    const result = await runIngest({
      loaded,
      detection: LOCAL_DETECTION,
      nodes,
      onEvent: (e) => {
        if (e.type !== 'chunk' || e.nodeId !== 'a3') return;
        if (e.state === 'verified') a3Verified = true;
        // Stalled while a chunk is on its way to a3, after one got through.
        if (!stalled && a3Verified && e.state === 'sending') {
          stalled = true;
          proxy.stall();
        }
      },
    });
    expect(stalled).toBe(true);
    expect(result.manifest.chunks.some((c) => c.movedFrom.includes('a3'))).toBe(true);
    proxy.resume();
    await checkRun(loaded, result, source.md5);
    await proxy.close();
  });

  it('a node that dies and comes back mid-run receives new work again', async () => {
    // Many small chunks keep the run going long enough for the registry's probes (2 s) and cool-down (5 s);
    // the run is cancelled as soon as the restarted node has taken a chunk.
    const source = await makeSource([{ name: 'many.bin', bytes: 200 * MiB }]);
    const agents = await agentsWithEnv(2);
    const loaded = await makeProject({ source: source.dir, nodes: agentNodes(agents), chunkMb: 1 / 64, concurrency: 2 });
    const controller = new AbortController();
    let verified = 0;
    let phase: 'before' | 'down' | 'back' = 'before';
    let restarted: AgentProcess | undefined;
    const a2States: string[] = [];
    const afterReturn: string[] = [];
    const result = await runIngest({
      loaded,
      detection: LOCAL_DETECTION,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'node' && e.status.id === 'a2' && a2States.at(-1) !== e.status.state) a2States.push(e.status.state);
        if (e.type !== 'chunk') return;
        if (e.state === 'verified' && phase === 'back' && e.nodeId === 'a2') {
          afterReturn.push(e.id);
          if (afterReturn.length >= 3) controller.abort(new Error('enough'));
        }
        if (e.state === 'verified') verified++;
        // Killed with a chunk on its way to it, so a delivery fails and the registry marks it unhealthy.
        if (phase === 'before' && verified >= 30 && e.state === 'sending' && e.nodeId === 'a2') {
          phase = 'down';
          void (async () => {
            await agents[1]!.kill('SIGKILL');
            restarted = await spawnAgent({ dir: agents[1]!.dir, port: agents[1]!.port, token: agents[1]!.token! });
            phase = 'back';
          })();
        }
      },
    });
    expect(result.manifest.status).toBe('cancelled');
    expect(afterReturn.length).toBeGreaterThanOrEqual(3);
    expect(a2States).toEqual(expect.arrayContaining(['healthy', 'unhealthy']));
    expect(a2States.at(-1)).toBe('healthy');
    expect(a2States.indexOf('unhealthy')).toBeLessThan(a2States.lastIndexOf('healthy'));
    const a2 = new AgentNode({ id: 'a2', url: restarted!.url, tokenEnv: 'A2_TOKEN' });
    for (const id of afterReturn) {
      const entry = result.manifest.chunks.find((c) => c.id === id);
      expect((await a2.find(id))?.checksum.hex).toBe(entry?.checksum);
    }
    await a2.close();
  });

  it('a node with a wrong or missing token is reported by name, and the run goes on without it', async () => {
    const source = await makeSource([{ name: 't.bin', bytes: 12 * MiB }]);
    const agents = await agentsWithEnv(3);
    process.env.A2_TOKEN = 'not-the-token-of-a2-0123456789';
    delete process.env.A3_TOKEN;
    const loaded = await makeProject({ source: source.dir, nodes: agentNodes(agents), chunkMb: 4 });
    const cli = await runCli(['nodes', '--config', loaded.path, '--json'], { A1_TOKEN: agents[0]!.token, A2_TOKEN: process.env.A2_TOKEN, A3_TOKEN: '' });
    const statuses = JSON.parse(cli.stdout) as NodeStatus[] | { nodes: NodeStatus[] };
    const list = Array.isArray(statuses) ? statuses : statuses.nodes;
    const byId = new Map(list.map((s) => [s.id, s]));
    expect(byId.get('a1')?.state).toBe('healthy');
    expect(byId.get('a2')?.state).toBe('unhealthy');
    expect(byId.get('a2')?.error).toMatch(/a2.*401.*A2_TOKEN/);
    expect(byId.get('a3')?.error).toMatch(/a3.*A3_TOKEN.*not set/);

    const result = await runIngest({ loaded, detection: LOCAL_DETECTION });
    expect(result.manifest.status).toBe('complete');
    expect(result.manifest.chunks.every((c) => c.node === 'a1')).toBe(true);
  });
});
