// Issue 12, findings 1, 2 and 5, against real node agent processes and real files: a run may call itself
// complete only when every chunk has `replicas` good copies on nodes that are alive when it ends, whatever nodes
// died or filled up during it; otherwise it ends degraded and names the chunks. One odd source key never stops
// the run nor marks a node failed. Every copy is judged by reading it back from the live agents over HTTP and
// hashing it against the source's own bytes, never by the manifest's word.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoHealthyNodeError, runIngest } from '../../electron/engine/ingest.ts';
import type { IngestResult } from '../../electron/engine/ingest.ts';
import { readManifest } from '../../electron/engine/manifest.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { IngestEvent, Manifest, NodeHealthState } from '../../shared/types.ts';
import { cleanupAgents, runCli, spawnAgent } from '../helpers/agents.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { agentSidecars } from '../helpers/agent-store.ts';
import { killAgentForReal } from '../faults/harness.ts';
import { tempDir } from '../helpers/temp.ts';
import { until } from '../helpers/until.ts';
import { detection, md5OfRange, MIB, tempProject, writeConfig } from './fixtures.ts';

afterAll(cleanupAgents);

interface SourceFile {
  key: string;
  size: number;
  path: string;
}

/** ~120 MiB in three files (one with an odd tail), shared read-only by the runs below. */
const BIG_SOURCE = [
  { key: 'big-a.bin', size: 64 * MIB },
  { key: 'mid-b.bin', size: 40 * MIB },
  { key: 'tail-c.bin', size: 16 * MIB + 12_345 },
];
let bigDir: string;
let bigFiles: SourceFile[];

async function makeSource(dir: string, files: { key: string; size: number }[], seed: string): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  for (const f of files) {
    const path = join(dir, ...f.key.split('/'));
    await mkdir(join(path, '..'), { recursive: true });
    await ensureDataFile(path, f.size, `${seed}/${f.key}`);
    out.push({ ...f, path });
  }
  return out;
}

beforeAll(async () => {
  bigDir = await tempDir('ci-replication-src-');
  bigFiles = await makeSource(bigDir, BIG_SOURCE, 'replication');
});

// ---- a cluster of real agents and a project that uses them ----------------------------------------------------

interface Cluster {
  agents: AgentProcess[];
  ids: string[];
  tokenEnvs: string[];
}

let clusters = 0;

async function startCluster(quotas: (number | undefined)[]): Promise<Cluster> {
  const tag = ++clusters;
  const agents = await Promise.all(quotas.map((maxBytes) => spawnAgent(maxBytes !== undefined ? { maxBytes } : {})));
  const tokenEnvs = agents.map((agent, i) => {
    const name = `REPLICATION_C${tag}_A${i + 1}_TOKEN`;
    process.env[name] = agent.token;
    return name;
  });
  return { agents, ids: agents.map((_, i) => `a${i + 1}`), tokenEnvs };
}

async function projectFor(cluster: Cluster, sourceDir: string, o: { replicas: number; chunkMb: number; concurrency?: number; placement?: 'balanced' | 'round_robin' }): Promise<{ configPath: string; loaded: Awaited<ReturnType<typeof writeConfig>> }> {
  const root = await tempProject();
  const nodes = cluster.agents.map((a, i) => `  - { id: ${cluster.ids[i]}, url: "${a.url}", token_env: ${cluster.tokenEnvs[i]} }`);
  const yaml = [
    'data_sources:',
    `  local: { type: local, path: ${JSON.stringify(sourceDir)} }`,
    'ingestion:',
    `  chunk_size_mb: ${o.chunkMb}`,
    `  max_concurrent_chunks: ${o.concurrency ?? 4}`,
    '  retry_attempts: 2',
    '  retry_delay_seconds: 0.05',
    `  placement: ${o.placement ?? 'balanced'}`,
    `  replicas: ${o.replicas}`,
    '  manifest_dir: ./manifests',
    'use_local_simulation: false',
    'nodes:',
    ...nodes,
    '',
  ].join('\n');
  const loaded = await writeConfig(root, yaml);
  return { configPath: loaded.path, loaded };
}

async function sidecars(dir: string): Promise<number> {
  return (await agentSidecars(dir)).length;
}

// ---- judging a finished run -------------------------------------------------------------------------------------

/** Chunk id → the MD5 of its byte range in the source. */
async function expectedChunks(files: SourceFile[], chunkSize: number): Promise<Map<string, { file: string; md5: string; size: number }>> {
  const out = new Map<string, { file: string; md5: string; size: number }>();
  for (const f of files) {
    for (let i = 0; i * chunkSize < f.size; i++) {
      const size = Math.min(chunkSize, f.size - i * chunkSize);
      out.set(`${f.key}_chunk_${i}`, { file: f.key, size, md5: await md5OfRange(f.path, i * chunkSize, size) });
    }
  }
  return out;
}

/** MD5 of a chunk as a live agent serves it, or undefined when it does not. */
async function servedMd5(agent: AgentProcess, chunkId: string): Promise<string | undefined> {
  let res: Response;
  try {
    res = await fetch(`${agent.url}/v1/chunks/${encodeURIComponent(chunkId)}`, { headers: { authorization: `Bearer ${agent.token}` } });
  } catch {
    return undefined;
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    return undefined;
  }
  const hash = createHash('md5');
  for await (const part of res.body) hash.update(part);
  return hash.digest('hex');
}

interface CopyAudit {
  /** Chunk id → distinct live nodes whose served bytes hash to the source's. */
  good: Map<string, string[]>;
  /** Chunks of complete files with fewer good live copies than `replicas`, each with where the manifest put it. */
  short: string[];
  /** Chunks the source calls for that the manifest leaves out, for files the manifest calls complete. */
  missing: string[];
}

async function auditCopies(manifest: Manifest, cluster: Cluster, live: Set<string>, expected: Map<string, { file: string; md5: string; size: number }>, replicas: number): Promise<CopyAudit> {
  const good = new Map<string, string[]>();
  const short: string[] = [];
  const missing: string[] = [];
  const completeFiles = new Set(manifest.files.filter((f) => f.status === 'complete').map((f) => f.key));
  const listed = new Map(manifest.chunks.map((c) => [c.id, c]));
  for (const [id, want] of expected) {
    if (!completeFiles.has(want.file)) continue;
    const chunk = listed.get(id);
    if (!chunk) {
      missing.push(id);
      continue;
    }
    const nodes = new Set<string>();
    for (const copy of chunk.copies) {
      if (!live.has(copy.nodeId) || nodes.has(copy.nodeId)) continue;
      const agent = cluster.agents[cluster.ids.indexOf(copy.nodeId)];
      if (agent && (await servedMd5(agent, id)) === want.md5) nodes.add(copy.nodeId);
    }
    good.set(id, [...nodes]);
    if (nodes.size < replicas) short.push(`${id} (manifest: ${chunk.copies.map((c) => c.nodeId).join('+') || 'no copy'}; good on live nodes: ${[...nodes].join('+') || 'none'})`);
  }
  return { good, short, missing };
}

/**
 * What every run must satisfy: `complete` only with every chunk at `replicas` good copies on live nodes (and the
 * engine's verify clean right after); `degraded` only naming every chunk short of that in `shortfall`.
 */
async function expectHonestStatus(o: { manifest: Manifest; manifestPath: string; loaded: Awaited<ReturnType<typeof writeConfig>>; cluster: Cluster; live: Set<string>; files: SourceFile[]; replicas: number }): Promise<CopyAudit> {
  const expected = await expectedChunks(o.files, o.manifest.chunkSize);
  const audit = await auditCopies(o.manifest, o.cluster, o.live, expected, o.replicas);
  if (o.manifest.status === 'complete') {
    expect(audit.short, `the run says complete, but these chunks have fewer than ${o.replicas} good copies on live nodes`).toEqual([]);
    expect(audit.missing, 'the run says complete, but the manifest leaves these chunks out').toEqual([]);
    const report = await verifyRun({ loaded: o.loaded, manifestPath: o.manifestPath });
    expect(report.problems.map((p) => `${p.reason}: ${p.chunkId} on ${p.nodeId}: ${p.detail}`), 'verify right after a complete run').toEqual([]);
    expect(report.unrecoverable).toEqual([]);
  } else if (o.manifest.status === 'degraded') {
    const named = new Set((o.manifest.shortfall ?? []).map((s) => s.chunkId));
    const unnamed = audit.short.filter((line) => !named.has(line.slice(0, line.indexOf(' ('))));
    expect(unnamed, 'the run ended degraded without naming these under-replicated chunks in its shortfall').toEqual([]);
    expect(named.size).toBeGreaterThan(0);
    for (const s of o.manifest.shortfall ?? []) {
      expect(s.wanted).toBe(o.replicas);
      expect(s.copies).toBeLessThan(o.replicas);
      expect(s.reason.length).toBeGreaterThan(0);
    }
  }
  return audit;
}

// ---- finding 1: a node dies mid-run -----------------------------------------------------------------------------

describe('an agent SIGKILLed mid-run (issue 12, finding 1)', () => {
  it.each([1, 2])(
    'replicas %i: 120 MiB in 4 MiB chunks over three agents, one killed once it holds chunks: complete with every chunk on live nodes and verify clean, or degraded naming the chunks; never complete with a chunk only on the dead node',
    async (replicas) => {
      const cluster = await startCluster([undefined, undefined, undefined]);
      const victim = 1; // a2
      const { configPath, loaded } = await projectFor(cluster, bigDir, { replicas, chunkMb: 4 });
      const started = performance.now();
      const run = runCli(['run', '--config', configPath, '--cloud', 'local', '--json'], {}, 240_000);
      let finished = false;
      void run.then(() => (finished = true));
      // A second or so in: once the victim has acknowledged two chunks, so some chunks' copies are only there.
      let victimHolds = 0;
      const poll = setInterval(() => void sidecars(cluster.agents[victim]!.dir).then((n) => (victimHolds = n)), 5);
      try {
        await until(() => finished || victimHolds >= 2, 'the victim to hold two chunks', 120_000, 5);
      } finally {
        clearInterval(poll);
      }
      expect(finished, 'the run ended before the agent was killed: the test proves nothing').toBe(false);
      const killedAfterMs = performance.now() - started;
      await killAgentForReal(cluster.agents[victim]!);
      const result = await run;
      const summary = JSON.parse(result.stdout) as { status: Manifest['status']; manifest: string };
      const manifest = await readManifest(summary.manifest);
      expect(manifest.status).toBe(summary.status);
      expect(result.code, `exit code for status ${manifest.status}:\n${result.stderr}`).toBe(manifest.status === 'complete' ? 0 : 1);
      const live = new Set(cluster.ids.filter((_, i) => i !== victim));
      await expectHonestStatus({ manifest, manifestPath: summary.manifest, loaded, cluster, live, files: bigFiles, replicas });

      // What the fix intends: chunks that were on the dead node are sent again from the source to live nodes.
      expect(manifest.status, `killed after ${killedAfterMs.toFixed(0)} ms; shortfall: ${JSON.stringify(manifest.shortfall ?? [])}`).toBe('complete');
      const verify = await runCli(['verify', '--config', configPath, '--manifest', summary.manifest], {}, 120_000);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    },
    300_000,
  );
});

// ---- finding 2: placement never silently gives fewer copies than `replicas` --------------------------------------

/** Runs an ingest in this process; a throw is returned, not raised, so the test can say what it was. */
async function ingestCatching(loaded: Awaited<ReturnType<typeof writeConfig>>, onEvent: (e: IngestEvent) => void, pattern?: string): Promise<IngestResult | Error> {
  try {
    return await runIngest({ loaded, detection: detection('local'), onEvent, ...(pattern ? { pattern } : {}) });
  } catch (error) {
    return error as Error;
  }
}

function expectSucceeded(result: IngestResult | Error): asserts result is IngestResult {
  if (result instanceof Error) expect.fail(`runIngest threw ${result.name}: ${result.message}`);
}

/** Node id → every state it went through, in order. */
function stateLog(): { states: Map<string, NodeHealthState[]>; onNode: (e: IngestEvent) => void } {
  const states = new Map<string, NodeHealthState[]>();
  return {
    states,
    onNode: (e) => {
      if (e.type !== 'node') return;
      const list = states.get(e.status.id) ?? [];
      if (list.at(-1) !== e.status.state) list.push(e.status.state);
      states.set(e.status.id, list);
    },
  };
}

describe('replicas: 2 with a node full or dead mid-run (issue 12, finding 2)', () => {
  const midFile = (): SourceFile[] => bigFiles.filter((f) => f.key === 'mid-b.bin');

  it('one of three agents fills up (--max-bytes): every chunk of the complete run has 2 good copies on 2 distinct live nodes', async () => {
    const quota = 5 * MIB;
    const cluster = await startCluster([undefined, undefined, quota]);
    // Round robin keeps offering a3 its share whatever free space it reports, so it does fill up; eight chunks at
    // once leave several uploads to a3 in flight when it does, each needing another node.
    const { loaded } = await projectFor(cluster, bigDir, { replicas: 2, chunkMb: 2, placement: 'round_robin', concurrency: 8 });
    const log = stateLog();
    const result = await ingestCatching(loaded, log.onNode, 'mid-b.bin');
    expectSucceeded(result);
    expect(log.states.get('a3') ?? [], 'a3 never filled up: the test proves nothing').toContain('full');
    for (const chunk of result.manifest.chunks) {
      const nodes = chunk.copies.map((c) => c.nodeId);
      expect(new Set(nodes).size, `${chunk.id} is listed on ${nodes.join('+')}: a node twice`).toBe(nodes.length);
    }
    const onA3 = result.manifest.chunks.filter((c) => c.copies.some((x) => x.nodeId === 'a3')).reduce((s, c) => s + c.size, 0);
    expect(onA3).toBeLessThanOrEqual(quota);
    const audit = await expectHonestStatus({ ...result, loaded, cluster, live: new Set(cluster.ids), files: midFile(), replicas: 2 });
    // Two nodes keep room for every chunk, so nothing stops a complete run.
    expect(result.manifest.status, `shortfall: ${JSON.stringify(result.manifest.shortfall ?? [])}`).toBe('complete');
    expect([...audit.good.values()].every((nodes) => nodes.length === 2)).toBe(true);
  }, 180_000);

  it('one agent fills up and another is SIGKILLed: with one node left for 2 replicas the run ends degraded naming the chunks, never complete', async () => {
    const cluster = await startCluster([undefined, undefined, 5 * MIB]);
    // Round robin keeps offering a3 its share whatever free space it reports, so it does fill up.
    const { loaded } = await projectFor(cluster, bigDir, { replicas: 2, chunkMb: 2, placement: 'round_robin' });
    const log = stateLog();
    let kill: Promise<Error | undefined> | undefined;
    const result = await ingestCatching(
      loaded,
      (e) => {
        log.onNode(e);
        if (!kill && e.type === 'node' && e.status.id === 'a3' && e.status.state === 'full') kill = killAgentForReal(cluster.agents[1]!).then(() => undefined, (error: Error) => error);
      },
      'mid-b.bin',
    );
    expect(kill, 'a3 never filled up, so a2 was never killed: the test proves nothing').toBeDefined();
    expect(await kill).toBeUndefined();
    expectSucceeded(result);
    await expectHonestStatus({ ...result, loaded, cluster, live: new Set(['a1', 'a3']), files: midFile(), replicas: 2 });
    expect(result.manifest.status, 'only a1 has room after a3 fills and a2 dies: 2 copies cannot be placed').toBe('degraded');
    // Every file was read and stored at least once.
    expect(result.manifest.files.map((f) => f.status)).toEqual(['complete']);
  }, 180_000);
});

// ---- finding 5: an odd key fails at most its own file, never a node -----------------------------------------

describe('source keys with control characters, into agents (issue 12, finding 5)', () => {
  it('a tab, a newline, a CR and a BEL in keys: no "no healthy node", no node marked failed, the other files complete', async () => {
    const dir = await tempDir('ci-replication-odd-');
    const odd = ['odd\ttab.bin', 'odd\nnewline.bin', 'odd\rcr\u0007bell.bin'];
    const files = await makeSource(
      dir,
      [
        { key: 'good-1.bin', size: 3 * MIB + 5 },
        { key: odd[0]!, size: 2 * MIB + 1 },
        { key: odd[1]!, size: MIB },
        { key: odd[2]!, size: 1000 },
        { key: 'good-2.bin', size: 2 * MIB },
      ],
      'odd-keys',
    );
    const cluster = await startCluster([undefined, undefined, undefined]);
    const { loaded } = await projectFor(cluster, dir, { replicas: 1, chunkMb: 1 });
    const log = stateLog();
    const result = await ingestCatching(loaded, log.onNode);
    expect(result instanceof NoHealthyNodeError ? result.message : undefined).toBeUndefined();
    expectSucceeded(result);
    for (const [id, states] of log.states) expect(states.filter((s) => s !== 'healthy' && s !== 'suspect'), `node ${id} went ${states.join(' → ')}`).toEqual([]);
    expect(result.manifest.nodes.filter((n) => !n.healthy).map((n) => n.id)).toEqual([]);

    const byKey = new Map(result.manifest.files.map((f) => [f.key, f]));
    expect(byKey.get('good-1.bin')?.status).toBe('complete');
    expect(byKey.get('good-2.bin')?.status).toBe('complete');
    for (const key of odd) {
      const entry = byKey.get(key);
      expect(entry, `${JSON.stringify(key)} is missing from the manifest`).toBeDefined();
      // Either stored (agents accept every key), or failed alone with a message that names it.
      if (entry!.status === 'failed') expect(entry!.error ?? '').toContain(key.slice(key.lastIndexOf('odd') + 4).slice(-7));
    }
    const expected = await expectedChunks(files, result.manifest.chunkSize);
    const audit = await auditCopies(result.manifest, cluster, new Set(cluster.ids), expected, 1);
    expect(audit.short).toEqual([]);
    expect(audit.missing).toEqual([]);
    const out = await tempDir('ci-replication-out-');
    for (const [i, file] of files.entries()) {
      if (byKey.get(file.key)?.status !== 'complete') continue;
      const outPath = join(out, `file-${i}`);
      const report = await reassembleFile({ loaded, manifestPath: result.manifestPath, key: file.key, outPath });
      expect(report.matched).toBe(true);
      expect(await md5OfRange(outPath, 0, file.size)).toBe(await md5OfRange(file.path, 0, file.size));
    }
    // What agents accepting every key gives: every file stored.
    expect(odd.map((key) => `${JSON.stringify(key)}: ${byKey.get(key)?.status} ${byKey.get(key)?.error ?? ''}`)).toEqual(odd.map((key) => `${JSON.stringify(key)}: complete `));
  }, 120_000);
});
