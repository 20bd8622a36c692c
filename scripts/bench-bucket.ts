// Benchmark: a bucket of many small objects. npm run bench:bucket [-- 10000 100000 1000000] [--only rclone,unpacked,packed]
//
// The S3 emulator (s3rver) serving N objects of 256 B–16 KiB (1,000 keys a prefix), then, one after another:
//   - cloud-ingest run, the bucket → two folder nodes, 64 MiB chunks (a chunk per object);
//   - the same with ingestion.pack_below_mb: 1 (objects packed into 64 MiB tar shards);
//   - rclone copy --transfers 8 --fast-list of the bucket into one folder (--fast-list: one listing of the whole
//     bucket, as the engine lists it; s3rver's listing by folder finds no key two prefixes deep).
// Each is timed by /usr/bin/time (wall, peak RSS of the tool's process; s3rver runs apart and is not counted).
// Not a test: it never fails on the figures.
//
// The objects are laid out once in s3rver's own folder format (each object's bytes and its MD5, which is what
// s3rver writes when one is uploaded) and kept under $BENCH_BUCKET_DIR or the temp folder between runs: uploading a
// million objects through s3rver's API takes ~17 minutes, writing them ~2. s3rver then serves them through the
// S3 API like any it was sent. Each run starts settled (scripts/bench-runs.ts): caches dropped, s3rver's folder
// and the tool's own files read again.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3 } from '../test/helpers/emulators.ts';
import type { Emulator } from '../test/helpers/emulators.ts';
import { BenchDisk, benchArgs, ENGINE_CLI, engineEnv, failedRun, filesUnder, printResults, rcloneSourceEnv, runSelected, sampleSizes, settle, writeBenchProject } from './bench-runs.ts';
import type { BenchResult } from './bench-runs.ts';

const BUCKET = 'bench-bucket';
/** Ten objects beside the bucket, for each tool's warm-up run. */
const WARM_BUCKET = 'bench-warm-up';
const KEYS_PER_PREFIX = 1000;
const { counts: COUNTS, only: ONLY } = benchArgs(process.argv.slice(2));
const WORK = process.env.BENCH_BUCKET_DIR ?? join(tmpdir(), 'ci-bench-bucket');
const disk = new BenchDisk(WORK);

/** Writes one object as s3rver stores an upload: its bytes, and beside them its MD5 (the ETag it serves). */
function writeObject(root: string, bucket: string, key: string, bytes: Uint8Array): void {
  const path = join(root, bucket, `${key}._S3rver_object`);
  writeFileSync(path, bytes);
  writeFileSync(`${path}.md5`, createHash('md5').update(bytes).digest('hex'));
}

function layOut(root: string, bucket: string, count: number): number {
  const nextSize = sampleSizes(count);
  const pool = randomBytes(16 * 1024 + 4096);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    if (i % KEYS_PER_PREFIX === 0) mkdirSync(join(root, bucket, 'train', String(i / KEYS_PER_PREFIX).padStart(5, '0')), { recursive: true });
    const size = nextSize();
    const key = `train/${String(Math.floor(i / KEYS_PER_PREFIX)).padStart(5, '0')}/${String(i >> 1).padStart(7, '0')}.${i % 2 === 0 ? 'jpg' : 'json'}`;
    writeObject(root, bucket, key, pool.subarray(i % 4096, (i % 4096) + size));
    bytes += size;
  }
  return bytes;
}

/** s3rver's folder holding the bucket of `count` objects (made once, then reused); returns it and its bytes. */
async function bucketFolder(count: number): Promise<{ dir: string; bytes: number }> {
  const dir = join(WORK, `s3rver-${count}`);
  const marker = join(WORK, `s3rver-${count}.done`);
  if (existsSync(marker)) return { dir, bytes: Number(await readFile(marker, 'utf8')) };
  await rm(dir, { recursive: true, force: true });
  process.stderr.write(`laying out ${count.toLocaleString('en')} objects under ${dir}\n`);
  const bytes = layOut(dir, BUCKET, count);
  layOut(dir, WARM_BUCKET, 10);
  await writeFile(marker, String(bytes));
  return { dir, bytes };
}

function engineProject(project: string, bucket: string, packed: boolean): Promise<void> {
  return writeBenchProject(project, `aws: { type: s3, bucket: ${bucket}, region: us-east-1 }`, packed, 'use_local_simulation: false\n');
}

// --cloud aws names the cloud, and the metadata addresses point at a closed loopback port: a benchmark never
// probes the real ones.
const ENGINE_ARGS = ['run', '--config', 'config/data_sources.yml', '--cloud', 'aws', '--json'];
const NO_METADATA = { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9', AWS_EC2_METADATA_DISABLED: 'true', GCE_METADATA_HOST: '127.0.0.1:9', AZURE_IMDS_ENDPOINT: 'http://127.0.0.1:9', CLOUD_INGEST_DMI_DIR: '/nonexistent-dmi' };

async function engine(count: number, emulator: Emulator, source: { dir: string; bytes: number }, packed: boolean): Promise<BenchResult> {
  const project = join(WORK, `engine-${count}-${packed ? 'packed' : 'unpacked'}`);
  const warmProject = join(WORK, 'engine-warm-up');
  await engineProject(project, BUCKET, packed);
  await engineProject(warmProject, WARM_BUCKET, packed);
  const tool = packed ? 'cloud-ingest (packed)' : 'cloud-ingest';
  const env = engineEnv({ ...process.env, ...NO_METADATA, ...emulator.env });
  try {
    const warm = (): void => void spawnSync(ENGINE_CLI, ENGINE_ARGS, { cwd: warmProject, env, stdio: 'ignore' });
    const run = await disk.timed(ENGINE_CLI, ENGINE_ARGS, project, () => settle(source.dir, warm), env);
    if (typeof run === 'string') return failedRun(tool, count, run);
    return { tool, files: count, ...run, filesOnDisk: await filesUnder(join(project, 'nodes')) };
  } finally {
    await disk.removeOutput(project, source.bytes);
    await rm(warmProject, { recursive: true, force: true });
  }
}

async function rclone(count: number, emulator: Emulator, source: { dir: string; bytes: number }): Promise<BenchResult> {
  const tool = 'rclone copy (--fast-list)';
  if (spawnSync('rclone', ['version'], { stdio: 'ignore' }).status !== 0) return failedRun(tool, count, 'rclone not installed (apt-get install rclone)');
  const dest = join(WORK, `rclone-${count}`);
  await rm(dest, { recursive: true, force: true });
  // rclone gets only its own config, none of this process's cloud variables.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...rcloneSourceEnv(emulator) };
  try {
    const warm = (): void => void spawnSync('rclone', ['copy', `src:${WARM_BUCKET}`, `${dest}-warm-up`, '--transfers', '8', '--fast-list'], { env, stdio: 'ignore' });
    const run = await disk.timed('rclone', ['copy', `src:${BUCKET}`, dest, '--transfers', '8', '--fast-list'], WORK, () => settle(source.dir, warm), env);
    if (typeof run === 'string') return failedRun(tool, count, run);
    return { tool, files: count, ...run, filesOnDisk: await filesUnder(dest) };
  } finally {
    await disk.removeOutput(dest, source.bytes);
    await rm(`${dest}-warm-up`, { recursive: true, force: true });
  }
}

/**
 * Each tool gets an s3rver of its own, warmed by the tool's warm-up run: the engine run after rclone on one
 * s3rver took 15.4 s for 10,000 objects, and 11.8 s on an s3rver of its own (rclone left it slower).
 */
async function withS3rver(dir: string, run: (emulator: Emulator) => Promise<BenchResult>): Promise<BenchResult> {
  const emulator = await startS3(dir);
  try {
    return await run(emulator);
  } finally {
    await emulator.stop();
  }
}

async function main(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  const results: BenchResult[] = [];
  for (const count of COUNTS) {
    const source = await bucketFolder(count);
    process.stderr.write(`${count.toLocaleString('en')} objects, ${(source.bytes / 1024 / 1024).toFixed(0)} MiB, from s3rver\n`);
    const runs = {
      rclone: () => withS3rver(source.dir, (emulator) => rclone(count, emulator, source)),
      unpacked: () => withS3rver(source.dir, (emulator) => engine(count, emulator, source, false)),
      packed: () => withS3rver(source.dir, (emulator) => engine(count, emulator, source, true)),
    };
    await runSelected(runs, ONLY, results);
  }
  await disk.deleteKept();
  printResults(results, 'objects');
  console.log('s3rver (S3 API over loopback) → two folder nodes (rclone: one folder); s3rver itself runs apart and is not in peak RSS.');
}

await main();
