// Benchmark: the engine pulling one 512 MiB object from each storage emulator into two local folder
// nodes, against `rclone copy` of the same object from the same emulator to local disk.
//
//   npm run bench:sources            (all four: s3 = s3rver, moto, gcs, azure)
//   npm run bench:sources -- s3 gcs  (a subset)
//   BENCH_TRIALS=5 BENCH_CHECKSUMS=crc32c npm run bench:sources -- s3 azure  (more trials; only the crc32c engine run)
//
// Both sides read from the same emulator process on loopback with warm caches. The engine run is a
// full `runIngest` with the default chunking (100 MiB chunks, up to 10 at once): ranged GETs, hashing,
// writing to the nodes, the manifest, and the whole-file check against the store's checksum (MD5 on
// s3rver and Azurite, CRC32 on moto, CRC32C on GCS; see docs/sources.md), once with the default md5 chunk
// checksums and once with `checksum: crc32c` (a CRC per chunk, leaving the store's check the only
// cryptographic hash). rclone runs
// with its defaults (multi-thread download, checksum check) configured through env only.
// Each side runs TRIALS times, alternating, each time after settle() (see there: this VM makes whoever
// writes into long-freed memory pay for it); the best and the median of each are printed.
// Not a test: it prints figures and never fails on them.
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { quietSdkStreamWarnings } from '../electron/cli/process-warnings.ts';
import { runIngest } from '../electron/engine/ingest.ts';
import { AzureBlobDriver } from '../electron/engine/storage/azure.ts';
import { GcsDriver } from '../electron/engine/storage/gcs.ts';
import { S3Driver } from '../electron/engine/storage/s3.ts';
import type { ChecksumAlgorithm, CloudName, DataSourceConfig } from '../shared/config/types.ts';
import { writeCloudProject } from '../test/helpers/cloud-project.ts';
import { startEmulator, startMoto } from '../test/helpers/emulators.ts';
import { rcloneSourceEnv } from './bench-runs.ts';
import type { Emulator, EmulatorKind } from '../test/helpers/emulators.ts';
import { makeRandomFile } from '../test/storage/data.ts';

const SIZE = 512 * 1024 * 1024;
const BUCKET = 'bench-bucket';
const KEY = 'bench/object-512mib.bin';
const CLOUD: Record<EmulatorKind, CloudName> = { s3: 'aws', gcs: 'gcp', azure: 'azure' };
/** The emulators: `s3` is s3rver (objects with an MD5 ETag only), `moto` an S3 keeping the CRC32 uploads carry. */
type Store = EmulatorKind | 'moto';
const STORES: Store[] = ['s3', 'moto', 'gcs', 'azure'];
const apiOf = (store: Store): EmulatorKind => (store === 'moto' ? 's3' : store);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 3);
/** The engine's chunk checksums to run: both by default, or those BENCH_CHECKSUMS names (md5, crc32c). */
const CHECKSUMS = (process.env.BENCH_CHECKSUMS ?? 'md5,crc32c').split(',').filter((c): c is ChecksumAlgorithm => c === 'md5' || c === 'crc32c');

interface Row {
  kind: Store;
  readsMBps?: number;
  engineMs: number[];
  /** The same run with `ingestion.checksum: crc32c`. */
  crcMs: number[];
  rcloneMs: number[];
  /** rclone plus an md5sum of its copy, when rclone itself checked nothing. */
  rcloneCheckedMs: number[];
  rcloneCheck?: string;
  note?: string;
}

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

/**
 * This VM hands freed memory back to its host within seconds; the next writer then pays about a second of
 * kernel time per 512 MiB to get it back. Before each contender: flush, then write and delete 1 GiB, so both
 * start on the same warm pages.
 */
async function settle(work: string): Promise<void> {
  spawnSync('sync');
  const scratch = join(work, 'warm.bin');
  const block = Buffer.alloc(4 * 1024 * 1024, 1);
  const handle = await open(scratch, 'w');
  try {
    for (let i = 0; i < 256; i++) await handle.write(block);
  } finally {
    await handle.close();
  }
  await rm(scratch);
}

function stats(ms: number[]): { best: number; median: number } | undefined {
  if (ms.length === 0) return undefined;
  const sorted = [...ms].sort((a, b) => a - b);
  return { best: sorted[0]!, median: sorted[Math.floor((sorted.length - 1) / 2)]! };
}

function sourceOf(kind: EmulatorKind): DataSourceConfig {
  switch (kind) {
    case 's3':
      return { type: 's3', bucket: BUCKET, region: 'us-east-1' };
    case 'gcs':
      return { type: 'gcs', bucket: BUCKET };
    case 'azure':
      return { type: 'blob', container: BUCKET };
  }
}

async function engineRun(kind: Store, emulator: Emulator, work: string, trial: number, checksum: ChecksumAlgorithm): Promise<number> {
  const root = join(work, `engine-${kind}-${trial}`);
  const loaded = await writeCloudProject(root, CLOUD[apiOf(kind)], sourceOf(apiOf(kind)), { chunk_size_mb: 100, max_concurrent_chunks: 10, retry_attempts: 3, retry_delay_seconds: 1, checksum });
  const saved = { ...process.env };
  Object.assign(process.env, emulator.env);
  try {
    await settle(work);
    const cpu = process.cpuUsage();
    const start = performance.now();
    const { manifest } = await runIngest({ loaded, detection: { cloud: CLOUD[apiOf(kind)], signal: 'flag', detail: 'bench', elapsedMs: 0, probes: [] } });
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    const file = manifest.files[0];
    if (manifest.status !== 'complete' || !file || file.size !== SIZE) throw new Error(`engine run on ${kind} ended ${manifest.status}: ${file?.error ?? 'no file'}`);
    const check = file.sourceChecksum ? `, store ${file.sourceChecksum.kind} ${file.sourceChecksum.matched ? 'matched' : 'MISMATCH'}` : '';
    const cpuText = `cpu ${(used.user / 1e6).toFixed(2)} s user + ${(used.system / 1e6).toFixed(2)} s system`;
    console.log(`  engine (${checksum}): ${(ms / 1000).toFixed(2)} s, ${cpuText}, ${manifest.totals.chunks} chunks on ${manifest.nodes.length} nodes, ${manifest.totals.retries} retries${check}`);
    return ms;
  } finally {
    await rm(root, { recursive: true, force: true }); // a second run in the same place would skip every chunk
    for (const k of Object.keys(emulator.env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

/** The source side alone: 8 parallel ranged GETs through the driver, bytes discarded. */
async function driverReads(kind: Store, emulator: Emulator): Promise<number> {
  const saved = { ...process.env };
  Object.assign(process.env, emulator.env);
  try {
    const driver =
      apiOf(kind) === 's3'
        ? new S3Driver({ type: 's3', bucket: BUCKET, region: 'us-east-1' })
        : kind === 'gcs'
          ? new GcsDriver({ type: 'gcs', bucket: BUCKET })
          : new AzureBlobDriver({ type: 'blob', container: BUCKET });
    try {
      const object = await driver.stat(KEY);
      const parts = 8;
      const part = Math.ceil(SIZE / parts);
      const start = performance.now();
      await Promise.all(
        Array.from({ length: parts }, async (_, i) => {
          const read = await driver.read(KEY, { offset: i * part, length: Math.min(part, SIZE - i * part) }, { ...(object.etag ? { ifMatch: object.etag } : {}) });
          for await (const _chunk of read.stream) {
            // discard
          }
        }),
      );
      const ms = performance.now() - start;
      console.log(`  driver reads: ${(ms / 1000).toFixed(2)} s (8 ranged GETs in parallel)`);
      return ms;
    } finally {
      await driver.close();
    }
  } finally {
    for (const k of Object.keys(emulator.env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

/**
 * Elapsed ms and what rclone said of its own checksum check, or why it could not run. When rclone checked
 * nothing, `checkedMs` adds an `md5sum` of its copy: the same work as the engine's whole-object check.
 */
async function rcloneRun(kind: Store, emulator: Emulator, work: string): Promise<{ ms: number; check: string; checkedMs?: number } | string> {
  if (spawnSync('rclone', ['version'], { stdio: 'ignore' }).status !== 0) return 'rclone not installed (apt-get install rclone)';
  const dest = join(work, `rclone-${kind}`);
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  await settle(work);
  // rclone gets only its own config, none of the test process's cloud variables (AWS_CA_BUNDLE breaks it).
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...rcloneSourceEnv(emulator) };
  const start = performance.now();
  const result = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const child = spawn('rclone', ['copy', `src:${BUCKET}/${KEY}`, dest, '--retries', '1', '--low-level-retries', '1', '-vv'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8000)));
    child.on('close', (code) => resolve({ code, err }));
  });
  const ms = performance.now() - start;
  // rclone -vv says "<file>: md5 = <hex> OK" after checking, or "Src hash empty - aborting Dst hash check".
  const checked = /: (\w+) = [0-9a-f]+ OK/.exec(result.err);
  const check = checked ? `${checked[1]} checked` : /Src hash empty/.test(result.err) ? 'no checksum check (store gave rclone none)' : 'checksum check not reported';
  let checkedMs: number | undefined;
  if (result.code === 0 && !checked) {
    const md5Start = performance.now();
    spawnSync('md5sum', [join(dest, basename(KEY))], { stdio: 'ignore' });
    checkedMs = ms + performance.now() - md5Start;
  }
  // Freed at once, as the engine's nodes are: see settle().
  await rm(dest, { recursive: true, force: true });
  if (result.code !== 0) return `rclone failed against this emulator: ${result.err.trim().split('\n').slice(-2).join(' | ')}`;
  const plus = checkedMs !== undefined ? ` (${(checkedMs / 1000).toFixed(2)} s with an md5sum of its copy)` : '';
  console.log(`  rclone: ${(ms / 1000).toFixed(2)} s, ${check}${plus}`);
  return { ms, check, ...(checkedMs !== undefined ? { checkedMs } : {}) };
}

async function benchOne(kind: Store, file: string, work: string): Promise<Row> {
  console.log(`\n${kind}: starting emulator and uploading 512 MiB`);
  const emulator = kind === 'moto' ? await startMoto() : await startEmulator(kind);
  try {
    await emulator.createBucket(BUCKET);
    await emulator.put(BUCKET, KEY, { file });
    const row: Row = { kind, engineMs: [], crcMs: [], rcloneMs: [], rcloneCheckedMs: [] };
    row.readsMBps = mbps(SIZE, await driverReads(kind, emulator));
    for (let trial = 0; trial < TRIALS; trial++) {
      if (CHECKSUMS.includes('md5')) row.engineMs.push(await engineRun(kind, emulator, work, trial, 'md5'));
      if (CHECKSUMS.includes('crc32c')) row.crcMs.push(await engineRun(kind, emulator, work, trial, 'crc32c'));
      if (row.note) continue;
      const r = await rcloneRun(kind, emulator, work);
      if (typeof r === 'string') row.note = r;
      else {
        row.rcloneMs.push(r.ms);
        if (r.checkedMs !== undefined) row.rcloneCheckedMs.push(r.checkedMs);
        row.rcloneCheck = r.check;
      }
    }
    return row;
  } finally {
    await emulator.stop();
  }
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a): a is Store => (STORES as string[]).includes(a));
  const kinds: Store[] = wanted.length > 0 ? wanted : STORES;
  const work = await mkdtemp(join(tmpdir(), 'ci-bench-sources-'));
  try {
    const file = join(work, 'object.bin');
    await makeRandomFile(file, SIZE);
    const rows: Row[] = [];
    for (const kind of kinds) {
      try {
        rows.push(await benchOne(kind, file, work));
      } catch (error) {
        rows.push({ kind, engineMs: [], crcMs: [], rcloneMs: [], rcloneCheckedMs: [], note: `failed: ${error instanceof Error ? error.message : String(error)}` });
      }
      await rm(join(work, `rclone-${kind}`), { recursive: true, force: true });
    }
    console.log(`\n512 MiB object, loopback emulator → local disk; MB/s best / median of ${TRIALS}`);
    console.log('store   reads    engine best/median   rclone best/median   engine/rclone best, median');
    for (const r of rows) {
      const e = stats(r.engineMs);
      const c = stats(r.rcloneMs);
      const rd = r.readsMBps !== undefined ? r.readsMBps.toFixed(0).padStart(6) : '     -';
      const show = (x?: { best: number; median: number }) => (x ? `${mbps(SIZE, x.best).toFixed(0).padStart(10)} /${mbps(SIZE, x.median).toFixed(0).padStart(4)}` : '             -     ');
      const ratio = e && c ? `${(c.best / e.best).toFixed(2)}x, ${(c.median / e.median).toFixed(2)}x`.padStart(18) : '                 -';
      console.log(`${r.kind.padEnd(6)}${rd}  ${show(e)}       ${show(c)}   ${ratio}${r.note ? `   (${r.note})` : ''}${r.rcloneCheck ? `   rclone: ${r.rcloneCheck}` : ''}`);
      const v = stats(r.rcloneCheckedMs);
      if (e && v) console.log(`${''.padEnd(6)}${''.padStart(6)}  ${''.padStart(22)}  +md5sum ${show(v)}   ${`${(v.best / e.best).toFixed(2)}x, ${(v.median / e.median).toFixed(2)}x`.padStart(18)}   (rclone, then an md5sum of its copy)`);
      const k = stats(r.crcMs);
      const against = v ?? c;
      if (k) console.log(`${'crc32c'.padEnd(6)}${''.padStart(6)}  ${show(k)}       ${''.padStart(20)}   ${against ? `${(against.best / k.best).toFixed(2)}x, ${(against.median / k.median).toFixed(2)}x`.padStart(18) : ''}   (checksum: crc32c, against rclone${v ? ' + md5sum' : ''})`);
    }
    console.log('reads: the driver alone, 8 ranged GETs at once, bytes discarded.');
    console.log("engine: full runIngest into 2 folder nodes (100 MiB chunks, 10 at once, md5 per chunk, the store's whole-object checksum checked); crc32c: the same with checksum: crc32c.");
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

quietSdkStreamWarnings();
await main();
