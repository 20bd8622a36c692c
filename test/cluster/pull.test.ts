// Pull mode end to end: a real nats-server (-js, file storage), a real store (s3rver, or a local folder), three
// node agent processes started with --nats and --id, and the run itself (runIngest with ingestion.mode: pull) as
// the coordinator. The manifest must equal push mode's; a worker SIGKILLed mid-run and a NATS restart mid-run
// must lose nothing and duplicate nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../electron/engine/config.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import type { IngestResult } from '../../electron/engine/ingest.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { IngestEvent, Manifest } from '../../shared/types.ts';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { CLI, agentLogs, cleanupAgents, spawnAgent } from '../helpers/agents.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { startNatsServer, stopNatsServers } from '../helpers/nats.ts';
import type { NatsServer } from '../helpers/nats.ts';
import { startStore } from '../storage/stores.ts';
import type { StoreFixture } from '../storage/stores.ts';
import { chunksInFolder, clusterProject, deterministicBuffer, localSource, MiB } from './harness.ts';
import type { ClusterNode } from './harness.ts';

const LOCAL = { cloud: 'local' as const, signal: 'flag' as const, detail: '--cloud local (test)', elapsedMs: 0, probes: [] };
const AWS = { cloud: 'aws' as const, signal: 'flag' as const, detail: '--cloud aws (test)', elapsedMs: 0, probes: [] };

let nats: NatsServer;
let s3: StoreFixture;

beforeAll(async () => {
  [nats, s3] = await Promise.all([startNatsServer(), startStore('s3', 'pull-mode-source')]);
}, 120_000);

afterAll(async () => {
  await cleanupAgents();
  await stopNatsServers();
  await s3?.stop();
});

/** Three agents; with `pull`, each also pulls its own work items (--nats, --id). */
async function agents(prefix: string, pull: boolean, concurrency = 2): Promise<{ procs: AgentProcess[]; nodes: ClusterNode[] }> {
  const ids = [1, 2, 3].map((i) => `${prefix}${i}`);
  const procs = await Promise.all(
    ids.map((id) => spawnAgent({ tokenEnv: `TOKEN_${id.toUpperCase()}`, args: pull ? ['--nats', nats.url, '--id', id, '--pull-concurrency', String(concurrency)] : [] })),
  );
  const nodes = procs.map((p, i) => ({ id: ids[i]!, url: p.url, tokenEnv: p.tokenEnv }));
  for (const p of procs) process.env[p.tokenEnv] = p.token;
  return { procs, nodes };
}

/** What must be equal between modes: every file and chunk as the manifest records them (not timings or ids of the run). */
function content(manifest: Manifest) {
  return {
    status: manifest.status,
    files: manifest.files.map((f) => ({ key: f.key, size: f.size, etag: f.etag, checksum: f.checksum, chunkCount: f.chunkCount, status: f.status })),
    chunks: manifest.chunks.map((c) => ({ id: c.id, file: c.file, index: c.index, offset: c.offset, size: c.size, checksum: c.checksum, node: c.node, path: c.path, copies: c.copies.map((x) => x.nodeId) })),
    totals: { files: manifest.totals.files, chunks: manifest.totals.chunks, bytes: manifest.totals.bytes },
  };
}

/** Every chunk of the manifest once, on a node that holds it exactly once; no live node holds a chunk the manifest does not put there. */
async function expectNoLossNoDuplicates(result: IngestResult, live: { id: string; dir: string }[], replicas = 1): Promise<void> {
  const { manifest } = result;
  expect(manifest.chunks).toHaveLength(manifest.files.reduce((s, f) => s + f.chunkCount, 0));
  expect(new Set(manifest.chunks.map((c) => c.id)).size).toBe(manifest.chunks.length);
  const liveIds = new Set(live.map((n) => n.id));
  for (const chunk of manifest.chunks) {
    expect(chunk.copies.length, chunk.id).toBe(replicas);
    for (const copy of chunk.copies) expect(liveIds.has(copy.nodeId), `${chunk.id} on ${copy.nodeId}`).toBe(true);
  }
  for (const node of live) {
    const held = await chunksInFolder(node.dir);
    const listed = new Set(manifest.chunks.filter((c) => c.copies.some((x) => x.nodeId === node.id)).map((c) => c.id));
    for (const [id, count] of held) {
      expect(count, `${id} held twice on ${node.id}`).toBe(1);
      expect(listed.has(id), `${node.id} holds ${id}, which the manifest puts elsewhere`).toBe(true);
    }
    expect(held.size).toBe(listed.size);
  }
}

/** The most chunks of `file` between 'reading' and 'verified' at once. */
function maxInFlight(events: IngestEvent[], file: string): number {
  const open = new Set<string>();
  let most = 0;
  for (const e of events) {
    if (e.type !== 'chunk' || e.file !== file) continue;
    if (e.state === 'reading') open.add(e.id);
    else if (e.state === 'verified' || e.state === 'failed') open.delete(e.id);
    most = Math.max(most, open.size);
  }
  return most;
}

/**
 * No agent wrote a chunk twice (each "chunk stored" log line is a write that reached its store), and the workers
 * wrote at least every chunk of the manifest, straight into their stores (`via: pull`, not an HTTP upload).
 */
function expectEachWrittenOnce(procs: AgentProcess[], manifest: Manifest): void {
  let total = 0;
  for (const p of procs) {
    const stored = agentLogs(p).filter((l) => l.msg === 'chunk stored');
    expect(stored.every((l) => l.via === 'pull'), `agent ${p.url} received an upload`).toBe(true);
    const created = stored.filter((l) => l.status === 'created').map((l) => String(l.id));
    expect(created.length, `agent ${p.url}`).toBe(new Set(created).size);
    total += created.length;
  }
  expect(total).toBeGreaterThanOrEqual(manifest.chunks.length);
}

describe('pull mode (NATS JetStream work queue)', () => {
  it('gives the same manifest as push mode for the same S3 source (s3rver), and verify passes', async () => {
    const files = [
      { key: 'train/shard-000.tar', bytes: 5 * MiB + 12_345 },
      { key: 'train/shard-001.tar', bytes: 3 * MiB },
      { key: 'train/small.json', bytes: 777 },
      { key: 'empty.txt', bytes: 0 },
    ];
    for (const f of files) await s3.put(f.key, await deterministicBuffer(f.key, f.bytes));
    const sourceYaml = `  aws: { type: "s3", bucket: "${s3.bucket}", region: "us-east-1" }`;

    const push = await agents('p', false);
    const pushConfig = await loadConfig(await clusterProject({ sourceYaml, nodes: push.nodes, mode: 'push', chunkMb: 1 }));
    const pushed = await runIngest({ loaded: pushConfig, detection: AWS });

    // The pull agents use the same ids, so stable placement puts every chunk on the same node in both modes.
    const pull = await agents('p', true);
    const pullConfig = await loadConfig(await clusterProject({ sourceYaml, nodes: pull.nodes, mode: 'pull', natsUrl: nats.url, chunkMb: 1 }));
    const events: IngestEvent[] = [];
    const pulled = await runIngest({ loaded: pullConfig, detection: AWS, onEvent: (e) => events.push(e) });

    expect(pushed.manifest.status).toBe('complete');
    expect(content(pulled.manifest)).toEqual(content(pushed.manifest));
    // Store checksums: a one-chunk file's MD5 ETag is its chunk's checksum, checked in both modes. A bigger file's
    // would have to be hashed again here, reading every byte back from the nodes: pull mode leaves it out and says so.
    for (const [i, file] of pulled.manifest.files.entries()) {
      if (file.chunkCount <= 1) expect(file.sourceChecksum).toEqual(pushed.manifest.files[i]!.sourceChecksum);
      else expect(file.sourceChecksum).toBeUndefined();
    }
    expect(pushed.manifest.files.find((f) => f.key === 'train/shard-000.tar')?.sourceChecksum).toMatchObject({ matched: true });
    expect(events.some((e) => e.type === 'log' && e.message.startsWith('pull mode: 2 file(s) are not checked'))).toBe(true);
    expect(pulled.manifest.chunks.length).toBe(10);
    // The same progress events as push mode: every chunk sent and verified, every byte counted once.
    const verified = events.filter((e) => e.type === 'chunk' && e.state === 'verified');
    expect(verified).toHaveLength(10);
    expect(events.filter((e) => e.type === 'chunk' && e.state === 'sending').length).toBeGreaterThanOrEqual(10);
    const bytes = events.reduce((s, e) => s + (e.type === 'bytes' ? e.bytes : 0), 0);
    expect(bytes).toBe(files.reduce((s, f) => s + f.bytes, 0));
    expect(events.at(-1)).toMatchObject({ type: 'run-finished', status: 'complete' });
    expect(events.some((e) => e.type === 'log' && e.message.startsWith('pull mode: 3 worker(s)'))).toBe(true);
    // Its whole-file MD5 left out, a multi-chunk file is not delivered one chunk at a time (as push mode does to
    // hash it in order): its chunks are in flight together.
    expect(maxInFlight(events, 'train/shard-000.tar')).toBeGreaterThan(1);
    const report = await verifyRun({ loaded: pullConfig, manifestPath: pulled.manifestPath });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(10);
    await expectNoLossNoDuplicates(pulled, pull.procs.map((p, i) => ({ id: pull.nodes[i]!.id, dir: p.dir })));
    expectEachWrittenOnce(pull.procs, pulled.manifest);
  }, 180_000);

  it('a worker SIGKILLed mid-run: every chunk lands on the others, verify passes, nothing lost or duplicated', async () => {
    const source = await localSource(Array.from({ length: 6 }, (_, i) => ({ key: `part-${i}.bin`, bytes: 8 * MiB + i })));
    const { procs, nodes } = await agents('k', true, 1);
    const path = await clusterProject({ sourceYaml: `  local: { type: "local", path: "${source.dir}" }`, nodes, mode: 'pull', natsUrl: nats.url, chunkMb: 0.5, concurrency: 6, cluster: ['ack_wait_seconds: 5', 'worker_timeout_seconds: 3'] });
    const loaded = await loadConfig(path);
    let onVictim = 0;
    let killed: Promise<unknown> | undefined;
    const result = await runIngest({
      loaded,
      detection: LOCAL,
      onEvent: (e) => {
        if (e.type === 'chunk' && e.state === 'verified' && e.nodeId === 'k2') onVictim++;
        // Killed while it is reading one of its chunks: its item is in flight, unacked.
        if (!killed && onVictim >= 6 && e.type === 'chunk' && e.state === 'sending' && e.nodeId === 'k2') killed = procs[1]!.kill('SIGKILL');
      },
    });
    expect(killed).toBeDefined();
    await killed;
    const { manifest } = result;
    expect(manifest.status).toBe('complete');
    expect(manifest.chunks.some((c) => c.movedFrom.includes('k2'))).toBe(true);
    expect(manifest.chunks.every((c) => c.copies.every((x) => x.nodeId !== 'k2'))).toBe(true);
    const report = await verifyRun({ loaded, manifestPath: result.manifestPath });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(manifest.chunks.length);
    await expectNoLossNoDuplicates(result, [0, 2].map((i) => ({ id: nodes[i]!.id, dir: procs[i]!.dir })));
    expectEachWrittenOnce(procs, result.manifest);
  }, 180_000);

  it('nats-server restarted mid-run (file storage): the run completes with every chunk, none twice', async () => {
    const source = await localSource(Array.from({ length: 4 }, (_, i) => ({ key: `r-${i}.bin`, bytes: 6 * MiB + i })));
    const { procs, nodes } = await agents('n', true, 1);
    const path = await clusterProject({ sourceYaml: `  local: { type: "local", path: "${source.dir}" }`, nodes, mode: 'pull', natsUrl: nats.url, chunkMb: 0.5, concurrency: 6, cluster: ['ack_wait_seconds: 5', 'worker_timeout_seconds: 5'] });
    const loaded = await loadConfig(path);
    let verified = 0;
    let restarted: Promise<void> | undefined;
    const result = await runIngest({
      loaded,
      detection: LOCAL,
      onEvent: (e) => {
        if (e.type === 'chunk' && e.state === 'verified') verified++;
        if (!restarted && verified >= 8) {
          restarted = (async () => {
            await nats.stop();
            await new Promise((r) => setTimeout(r, 1500));
            await nats.start();
          })();
        }
      },
    });
    expect(restarted).toBeDefined();
    await restarted;
    expect(result.manifest.status).toBe('complete');
    const report = await verifyRun({ loaded, manifestPath: result.manifestPath });
    expect(report.problems).toEqual([]);
    await expectNoLossNoDuplicates(result, procs.map((p, i) => ({ id: nodes[i]!.id, dir: p.dir })));
    expectEachWrittenOnce(procs, result.manifest);
  }, 180_000);

  it('the coordinator reads no data bytes: its rchar (/proc/<pid>/io) stays far below the data size, push mode reads it all', async () => {
    const files = Array.from({ length: 6 }, (_, i) => ({ key: `big-${i}.bin`, bytes: 32 * MiB }));
    const dataBytes = files.reduce((s, f) => s + f.bytes, 0);
    const source = await localSource(files);
    const sourceYaml = `  local: { type: "local", path: "${source.dir}" }`;
    const pull = await agents('c', true, 2);
    const pullRun = await coordinatorRun(await clusterProject({ sourceYaml, nodes: pull.nodes, mode: 'pull', natsUrl: nats.url, chunkMb: 4 }));
    expect(pullRun.code, pullRun.stderr).toBe(0);
    expect(pullRun.summary).toMatchObject({ status: 'complete' });
    const push = await agents('d', false);
    const pushRun = await coordinatorRun(await clusterProject({ sourceYaml, nodes: push.nodes, mode: 'push', chunkMb: 4 }));
    expect(pushRun.code, pushRun.stderr).toBe(0);
    console.log(`coordinator rchar: pull ${(pullRun.rchar / MiB).toFixed(1)} MiB, push ${(pushRun.rchar / MiB).toFixed(1)} MiB, data ${dataBytes / MiB} MiB`);
    expect(pushRun.rchar).toBeGreaterThan(dataBytes);
    expect(pullRun.rchar).toBeLessThan(dataBytes * 0.1);
  }, 240_000);
});

/** `cloud-ingest run --json` as its own process, its bytes read (rchar) sampled from /proc/<pid>/io until it exits. */
async function coordinatorRun(configPath: string): Promise<{ code: number | null; rchar: number; summary: unknown; stderr: string }> {
  const proc = spawn(process.execPath, [...ENGINE_NODE_FLAGS, CLI, 'run', '--config', configPath, '--cloud', 'local', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let rchar = 0;
  const sample = async (): Promise<void> => {
    const io = await readFile(`/proc/${proc.pid}/io`, 'utf8').catch(() => '');
    const m = /^rchar: (\d+)$/m.exec(io);
    if (m) rchar = Math.max(rchar, Number(m[1]));
  };
  const timer = setInterval(() => void sample(), 20);
  const code = await new Promise<number | null>((res) => proc.once('exit', (c) => res(c)));
  clearInterval(timer);
  let summary: unknown;
  try {
    summary = JSON.parse(stdout);
  } catch {
    summary = stdout;
  }
  return { code, rchar, summary, stderr };
}
