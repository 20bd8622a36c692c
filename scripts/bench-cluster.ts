// Benchmark: pull mode (NATS JetStream, the node agents read their own chunks) against push mode (this machine
// reads every chunk and sends it), in one run, on loopback:
//   1. 1 GiB from the S3 emulator (s3rver) into three agents, each mode: wall time, the coordinator's CPU seconds
//      and bytes read (/proc/<pid>/stat and /proc/<pid>/io of the `cloud-ingest run` process), per-worker
//      throughput and CPU;
//   2. per-item overhead: thousands of 4 KiB chunks through a whole pull run (publish, pull, read, store, result,
//      ack), and the same messages through JetStream alone (publish + pull + ack + result, no store, no disk I/O
//      of ours), as items per second and microseconds per item.
// Usage: npm run bench:cluster [-- --gib 1 --chunk-mb 16 --pull-concurrency 4 --items 3000 --raw-items 20000]
import { spawn } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import { ENGINE_NODE_FLAGS } from '../bin/node22.js';
import { CLUSTER_DEFAULTS } from '../shared/config/types.ts';
import { resultFilter, resultSubject, workSubject } from '../shared/cluster/contract.ts';
import type { WorkItem } from '../shared/cluster/contract.ts';
import { decode, encode, workItem, workResult } from '../shared/cluster/validators.ts';
import type { Manifest } from '../shared/types.ts';
import { connectNats, ensureConsumer, ensureStreams, manager } from '../electron/engine/cluster/nats.ts';
import { ensureDataFile } from '../electron/engine/testdata.ts';
import { CLI, REPO_ROOT, cleanupAgents, spawnAgent } from '../test/helpers/agents.ts';
import type { AgentProcess } from '../test/helpers/agents.ts';
import { startS3 } from '../test/helpers/emulators.ts';
import { startNatsServer, stopNatsServers } from '../test/helpers/nats.ts';
import { removeTempDirs, tempDir } from '../test/helpers/temp.ts';

const { values } = parseArgs({
  options: {
    gib: { type: 'string', default: '1' },
    'chunk-mb': { type: 'string', default: '16' },
    'pull-concurrency': { type: 'string', default: '4' },
    items: { type: 'string', default: '3000' },
    'raw-items': { type: 'string', default: '20000' },
  },
});
const MiB = 1024 * 1024;
const FILES = 8;
const totalBytes = Math.round(Number(values.gib) * 1024 * MiB);
const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux
const BUCKET = 'bench-cluster';

interface ProcessCost {
  cpuSeconds: number;
  rchar: number;
}

/** CPU seconds (user + system) and bytes read of a live process, from /proc. */
async function costOf(pid: number | undefined): Promise<ProcessCost | undefined> {
  if (pid === undefined) return undefined;
  try {
    const statText = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    const rchar = Number(/^rchar: (\d+)$/m.exec(await readFile(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
    return { cpuSeconds, rchar };
  } catch {
    return undefined;
  }
}

interface RunMeasure {
  wallSeconds: number;
  coordinator: ProcessCost;
  manifest: Manifest;
}

/** `cloud-ingest run --json` as its own process, sampled from /proc until it exits. */
async function coordinatorRun(configPath: string, cloud: string, env: Record<string, string>): Promise<RunMeasure> {
  const started = performance.now();
  const proc = spawn(process.execPath, [...ENGINE_NODE_FLAGS, CLI, 'run', '--config', configPath, '--cloud', cloud, '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let last: ProcessCost = { cpuSeconds: 0, rchar: 0 };
  const timer = setInterval(() => void costOf(proc.pid).then((c) => c && (last = c)), 20);
  const code = await new Promise<number | null>((res) => proc.once('exit', (c) => res(c)));
  clearInterval(timer);
  const wallSeconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`cloud-ingest run exited ${code}:\n${stderr.slice(-3000)}`);
  const summary = JSON.parse(stdout) as { manifest: string };
  const manifest = JSON.parse(await readFile(summary.manifest, 'utf8')) as Manifest;
  return { wallSeconds, coordinator: last, manifest };
}

async function project(name: string, o: { source: string; nodes: { id: string; url: string; tokenEnv: string }[]; mode: 'push' | 'pull'; natsUrl: string; chunkMb: number; concurrency: number }): Promise<string> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const root = await tempDir(`bench-cluster-${name}-`);
  await mkdir(join(root, 'config'));
  const yaml = [
    'data_sources:',
    o.source,
    'ingestion:',
    `  chunk_size_mb: ${o.chunkMb}`,
    `  max_concurrent_chunks: ${o.concurrency}`,
    '  retry_attempts: 2',
    '  retry_delay_seconds: 0.5',
    '  placement: stable',
    `  manifest_dir: "${join(root, 'manifests')}"`,
    `  mode: ${o.mode}`,
    'use_local_simulation: false',
    'nodes:',
    ...o.nodes.map((n) => `  - { id: ${n.id}, url: "${n.url}", token_env: ${n.tokenEnv} }`),
    'cluster:',
    `  nats_url: "${o.natsUrl}"`,
    '',
  ].join('\n');
  await writeFile(join(root, 'config', 'data_sources.yml'), yaml);
  return join(root, 'config', 'data_sources.yml');
}

async function agents(prefix: string, natsUrl: string | undefined, env: Record<string, string>): Promise<{ procs: AgentProcess[]; nodes: { id: string; url: string; tokenEnv: string }[] }> {
  const ids = [1, 2, 3].map((i) => `${prefix}${i}`);
  Object.assign(process.env, env); // the workers reach the store through the SDK's env conventions
  const procs = await Promise.all(ids.map((id) => spawnAgent({ tokenEnv: `BENCH_${id.toUpperCase()}_TOKEN`, args: natsUrl ? ['--nats', natsUrl, '--id', id, '--pull-concurrency', values['pull-concurrency']!] : [] })));
  for (const p of procs) process.env[p.tokenEnv] = p.token;
  return { procs, nodes: procs.map((p, i) => ({ id: ids[i]!, url: p.url, tokenEnv: p.tokenEnv })) };
}

function perNode(manifest: Manifest): Map<string, number> {
  const bytes = new Map<string, number>();
  for (const c of manifest.chunks) for (const copy of c.copies) bytes.set(copy.nodeId, (bytes.get(copy.nodeId) ?? 0) + c.size);
  return bytes;
}

async function measureMode(mode: 'push' | 'pull', natsUrl: string, source: string, env: Record<string, string>, cloud: string, chunkMb: number, concurrency: number, prefix: string): Promise<RunMeasure & { workers: { id: string; mb: number; cpuSeconds: number }[] }> {
  const { procs, nodes } = await agents(prefix, mode === 'pull' ? natsUrl : undefined, env);
  const before = await Promise.all(procs.map((p) => costOf(p.proc.pid)));
  const run = await coordinatorRun(await project(`${prefix}-${mode}`, { source, nodes, mode, natsUrl, chunkMb, concurrency }), cloud, env);
  const after = await Promise.all(procs.map((p) => costOf(p.proc.pid)));
  const bytes = perNode(run.manifest);
  const workers = nodes.map((n, i) => ({ id: n.id, mb: (bytes.get(n.id) ?? 0) / 1e6, cpuSeconds: (after[i]?.cpuSeconds ?? 0) - (before[i]?.cpuSeconds ?? 0) }));
  await Promise.all(procs.map((p) => p.kill('SIGTERM')));
  return { ...run, workers };
}

function report(label: string, m: RunMeasure & { workers: { id: string; mb: number; cpuSeconds: number }[] }, dataBytes: number): void {
  const mbps = dataBytes / 1e6 / m.wallSeconds;
  process.stdout.write(
    `  ${label}: ${m.wallSeconds.toFixed(2)} s wall (${mbps.toFixed(0)} MB/s), status ${m.manifest.status}, ${m.manifest.totals.chunks} chunks\n` +
      `    coordinator: ${m.coordinator.cpuSeconds.toFixed(2)} CPU-s, ${(m.coordinator.rchar / MiB).toFixed(1)} MiB read (${((100 * m.coordinator.rchar) / dataBytes).toFixed(1)}% of the data)\n` +
      m.workers.map((w) => `    ${w.id}: ${w.mb.toFixed(0)} MB, ${(w.mb / m.wallSeconds).toFixed(0)} MB/s, ${w.cpuSeconds.toFixed(2)} CPU-s\n`).join(''),
  );
}

/** JetStream alone: publish an item (await PubAck), a pull consumer takes it, publishes a result, acks; a reader counts results. */
async function rawRoundTrips(natsUrl: string, count: number): Promise<{ seconds: number; perItemUs: number }> {
  const nc = await connectNats(natsUrl, 'bench raw');
  const jsm = await manager(nc);
  const settings = CLUSTER_DEFAULTS;
  await ensureStreams(jsm, settings);
  const consumer = await ensureConsumer(jsm, settings, 'bench-raw', { delivery: settings, maxAckPending: 256 });
  const js = jetstream(nc);
  const runId = `raw-${Date.now()}`;
  const item: WorkItem = { v: 1, runId, chunkId: 'x', key: 'x', index: 0, offset: 0, size: 4096, objectSize: 4096, etag: '1', nodeId: 'bench-raw', targets: ['bench-raw'], checksum: 'md5', store: { kind: 'local', path: '/tmp' } };
  const started = performance.now();
  let results = 0;
  const done = new Promise<void>((res) => {
    void (async () => {
      const reader = await (await js.consumers.get(settings.result_stream, { filter_subjects: resultFilter(runId) })).consume({
        callback: (m) => {
          decode(workResult, m.data, 'result');
          if (++results === count) res();
        },
      });
      await done;
      reader.stop();
    })();
  });
  const worker = await (await js.consumers.get(settings.stream, consumer)).consume({
    max_messages: 256,
    callback: (m) => {
      const it = decode(workItem, m.data, 'item');
      const result = { v: 1 as const, runId, chunkId: it.chunkId, nodeId: 'bench-raw', delivery: 1, at: new Date().toISOString(), status: 'stored' as const, size: 4096, checksum: { algorithm: 'md5' as const, hex: '0'.repeat(32) }, location: '/v1/chunks/x', bytesRead: 4096, elapsedMs: 0 };
      void js.publish(resultSubject(runId, 'bench-raw'), encode(workResult, result, 'result'), { msgID: `${runId}|${it.chunkId}` }).then(() => m.ack());
    },
  });
  const window = 256;
  let next = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < count) {
        const i = next++;
        await js.publish(workSubject(runId, 'bench-raw'), encode(workItem, { ...item, chunkId: `c${i}` }, 'item'), { msgID: `${runId}|c${i}` });
      }
    }),
  );
  await done;
  const seconds = (performance.now() - started) / 1000;
  worker.stop();
  await nc.drain();
  return { seconds, perItemUs: (seconds * 1e6) / count };
}

async function main(): Promise<void> {
  const chunkMb = Number(values['chunk-mb']);
  const items = Number(values.items);
  const nats = await startNatsServer();
  const s3 = await startS3();
  try {
    // ---- 1. 1 GiB from s3rver, push vs pull -------------------------------------------------------------------
    const dataDir = resolve(REPO_ROOT, 'test_data', 'bench', 'cluster');
    await s3.createBucket(BUCKET);
    const seeded = performance.now();
    for (let i = 0; i < FILES; i++) {
      const path = join(dataDir, `shard-${i}.bin`);
      await ensureDataFile(path, totalBytes / FILES, `bench-cluster-${i}`);
      await s3.put(BUCKET, `train/shard-${i}.bin`, { file: path });
    }
    process.stdout.write(`seeded ${(totalBytes / 1024 / MiB).toFixed(2)} GiB into s3rver in ${((performance.now() - seeded) / 1000).toFixed(1)} s\n`);
    const s3Source = `  aws: { type: "s3", bucket: "${BUCKET}", region: "us-east-1" }`;
    process.stdout.write(`\n1. ${(totalBytes / 1024 / MiB).toFixed(2)} GiB from s3rver into three agents, ${chunkMb} MiB chunks, stable placement:\n`);
    const push = await measureMode('push', nats.url, s3Source, s3.env, 'aws', chunkMb, 8, 'a');
    report('push (the coordinator reads and sends every byte)', push, totalBytes);
    const pull = await measureMode('pull', nats.url, s3Source, s3.env, 'aws', chunkMb, 24, 'a');
    report(`pull (workers read their own chunks, ${values['pull-concurrency']} at once each)`, pull, totalBytes);
    const sameChunks = JSON.stringify(push.manifest.chunks.map((c) => [c.id, c.checksum, c.copies.map((x) => x.nodeId)])) === JSON.stringify(pull.manifest.chunks.map((c) => [c.id, c.checksum, c.copies.map((x) => x.nodeId)]));
    process.stdout.write(`  manifests: same chunks, checksums and nodes in both modes: ${sameChunks}\n`);

    // ---- 2. per-item overhead ---------------------------------------------------------------------------------
    // N and 2N items: the difference is what N more items cost, without the process start and the run's setup.
    process.stdout.write(`\n2. Per-item overhead: chunks of 4 KiB (one local file), three agents; ${items} and ${2 * items} items, the difference is per item:\n`);
    for (const mode of ['push', 'pull'] as const) {
      const runs: RunMeasure[] = [];
      for (const n of [items, 2 * items]) {
        const dir = await tempDir('bench-cluster-small-');
        await ensureDataFile(join(dir, 'small.bin'), n * 4096, `bench-cluster-small-${n}`);
        runs.push(await measureMode(mode, nats.url, `  local: { type: "local", path: "${dir}" }`, {}, 'local', 4096 / MiB, mode === 'pull' ? 256 : 64, `${mode[1]}${n}x`));
      }
      const [one, two] = runs as [RunMeasure, RunMeasure];
      const wallUs = ((two.wallSeconds - one.wallSeconds) * 1e6) / items;
      const cpuUs = ((two.coordinator.cpuSeconds - one.coordinator.cpuSeconds) * 1e6) / items;
      process.stdout.write(`  ${mode}: ${one.wallSeconds.toFixed(2)} s and ${two.wallSeconds.toFixed(2)} s wall → ${wallUs.toFixed(0)} µs/item wall (${(1e6 / wallUs).toFixed(0)} items/s), coordinator ${cpuUs.toFixed(0)} CPU-µs/item\n`);
    }
    const raw = await rawRoundTrips(nats.url, Number(values['raw-items']));
    process.stdout.write(`  JetStream alone (publish + pull + result + ack, ${values['raw-items']} items, one client process): ${raw.seconds.toFixed(2)} s, ${(Number(values['raw-items']) / raw.seconds).toFixed(0)} items/s, ${raw.perItemUs.toFixed(0)} µs/item\n`);
    const storeDir = nats.storeDir;
    const usage = await du(storeDir);
    process.stdout.write(`  nats-server store after the runs: ${(usage / MiB).toFixed(1)} MiB in ${storeDir}\n`);
  } finally {
    await cleanupAgents();
    await s3.stop();
    await stopNatsServers();
    await removeTempDirs();
  }
}

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

await main();
