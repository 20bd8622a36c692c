// Benchmark: ingest 1 GiB into two node agents on loopback and, in the same run, into two local folder nodes.
// Prints MB/s for both and the ratio (target: remote ≥ 0.7 × local).
// Usage: npm run bench:agents [-- --gib 1 --chunk-mb 64 --rounds 2]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../electron/engine/config.ts';
import { sharedHashPool } from '../electron/engine/hash/pool.ts';
import { runIngest } from '../electron/engine/ingest.ts';
import { ensureDataFile } from '../electron/engine/testdata.ts';
import type { DetectionResult } from '../shared/types.ts';
import { REPO_ROOT, cleanupAgents, spawnAgent } from '../test/helpers/agents.ts';

const { values } = parseArgs({
  options: { gib: { type: 'string', default: '1' }, 'chunk-mb': { type: 'string', default: '64' }, rounds: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '8' } },
});
const MiB = 1024 * 1024;
const totalBytes = Math.round(Number(values.gib) * 1024 * MiB);
const files = 4;
const rounds = Number(values.rounds);
const detection: DetectionResult = { cloud: 'local', signal: 'flag', detail: 'bench', elapsedMs: 0, probes: [] };

const sourceDir = resolve(REPO_ROOT, 'test_data', 'bench', 'agents');
for (let i = 0; i < files; i++) await ensureDataFile(join(sourceDir, `part-${i}.bin`), totalBytes / files, `bench-agents-${i}`);

const work = await mkdtemp(join(tmpdir(), 'bench-agents-'));

async function configFor(name: string, nodes: string[]): Promise<string> {
  const root = join(work, name);
  await mkdir(join(root, 'config'), { recursive: true });
  const yaml = [
    'data_sources:',
    `  local: { type: "local", path: "${sourceDir}" }`,
    `ingestion: { chunk_size_mb: ${values['chunk-mb']}, max_concurrent_chunks: ${values.concurrency}, retry_attempts: 1, retry_delay_seconds: 1, checksum: md5, manifest_dir: "${join(root, 'manifests')}" }`,
    'use_local_simulation: false',
    'nodes:',
    ...nodes,
    '',
  ].join('\n');
  const path = join(root, 'config', 'data_sources.yml');
  await writeFile(path, yaml);
  return path;
}

async function timeRun(configPath: string): Promise<number> {
  const loaded = await loadConfig(configPath);
  const started = performance.now();
  const { manifest } = await runIngest({ loaded, detection });
  const seconds = (performance.now() - started) / 1000;
  if (manifest.status !== 'complete' || manifest.totals.bytes !== totalBytes) throw new Error(`run ${manifest.status}, ${manifest.totals.bytes} bytes`);
  return totalBytes / 1e6 / seconds;
}

const results: { local: number[]; remote: number[] } = { local: [], remote: [] };
try {
  for (let round = 1; round <= rounds; round++) {
    // Local: two folder nodes on the same disk.
    const localDirs = [join(work, `f1-${round}`), join(work, `f2-${round}`)];
    const local = await timeRun(await configFor(`local-${round}`, localDirs.map((d, i) => `  - { id: f${i + 1}, path: "${d}" }`)));
    results.local.push(local);
    await Promise.all(localDirs.map((d) => rm(d, { recursive: true, force: true })));

    // Remote: two agent processes on loopback, each with its own folder on the same disk.
    const agents = await Promise.all([spawnAgent({ dir: join(work, `a1-${round}`) }), spawnAgent({ dir: join(work, `a2-${round}`) })]);
    agents.forEach((a, i) => (process.env[`BENCH_A${i + 1}_TOKEN`] = a.token));
    const remote = await timeRun(await configFor(`remote-${round}`, agents.map((a, i) => `  - { id: a${i + 1}, url: "${a.url}", token_env: BENCH_A${i + 1}_TOKEN }`)));
    results.remote.push(remote);
    await Promise.all(agents.map((a) => a.kill('SIGTERM')));
    await Promise.all(agents.map((a) => rm(a.dir, { recursive: true, force: true })));
    process.stdout.write(`round ${round}: local folders ${local.toFixed(0)} MB/s, agents ${remote.toFixed(0)} MB/s\n`);
  }
} finally {
  await cleanupAgents();
  await rm(work, { recursive: true, force: true });
  await sharedHashPool().close();
}

const best = (xs: number[]): number => Math.max(...xs);
const local = best(results.local);
const remote = best(results.remote);
const ratio = remote / local;
process.stdout.write(
  `\n${(totalBytes / 1024 / MiB).toFixed(2)} GiB in ${values['chunk-mb']} MiB chunks, ${values.concurrency} concurrent, best of ${rounds}:\n` +
    `  two local folder nodes: ${local.toFixed(0)} MB/s\n` +
    `  two agents on loopback: ${remote.toFixed(0)} MB/s\n` +
    `  ratio remote/local:     ${ratio.toFixed(2)} (target ≥ 0.70) ${ratio >= 0.7 ? 'OK' : 'BELOW TARGET'}\n`,
);
