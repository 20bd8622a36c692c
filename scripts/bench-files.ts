// Benchmark: many small files. npm run bench:files [-- 10000 100000 1000000] [--only rclone,unpacked,packed]
//
// Generates trees of N files of 256 B–16 KiB (samples of a .jpg and a .json, 1,000 files a folder; kept under
// $BENCH_FILES_DIR or the temp folder between runs), then, in the same run and one after another:
//   - cloud-ingest run, local folder → two folder nodes, 64 MiB chunks (a chunk per file, as before);
//   - the same with ingestion.pack_below_mb: 1 (files packed into 64 MiB tar shards);
//   - rclone copy --transfers 8 of the same tree into one folder.
// Each is timed by /usr/bin/time (wall, peak RSS of the whole process, worker threads included). Prints wall
// time, files/s, peak RSS and the files each left on disk. Not a test: it never fails on the figures.
// Each starts from the same state and no run starts within 6 minutes of the bench deleting many files: see
// scripts/bench-runs.ts for why.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchDisk, benchArgs, ENGINE_CLI, engineEnv, failedRun, filesUnder, printResults, runSelected, sampleSizes, settle, writeBenchProject } from './bench-runs.ts';
import type { BenchResult } from './bench-runs.ts';

const FILES_PER_FOLDER = 1000;
const { counts: COUNTS, only: ONLY } = benchArgs(process.argv.slice(2));
const WORK = process.env.BENCH_FILES_DIR ?? join(tmpdir(), 'ci-bench-files');
const disk = new BenchDisk(WORK);

/** The tree of `count` files (made once, then reused); returns its folder and total bytes. */
async function tree(count: number): Promise<{ dir: string; bytes: number }> {
  const dir = join(WORK, `tree-${count}`);
  const marker = join(WORK, `tree-${count}.done`);
  if (existsSync(marker)) return { dir, bytes: Number(await readFile(marker, 'utf8')) };
  await rm(dir, { recursive: true, force: true });
  process.stderr.write(`generating ${count.toLocaleString('en')} files under ${dir}\n`);
  const next = sampleSizes(count);
  const pool = randomBytes(16 * 1024 + 4096);
  let bytes = 0;
  for (let start = 0; start < count; start += FILES_PER_FOLDER) {
    const folder = join(dir, 'train', String(start / FILES_PER_FOLDER).padStart(5, '0'));
    await mkdir(folder, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + FILES_PER_FOLDER); i++) {
      const size = next();
      bytes += size;
      const name = `${String(i >> 1).padStart(7, '0')}.${i % 2 === 0 ? 'jpg' : 'json'}`;
      writes.push(writeFile(join(folder, name), pool.subarray(i % 4096, (i % 4096) + size)));
      if (writes.length >= 64) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
  }
  await writeFile(marker, String(bytes));
  return { dir, bytes };
}

/** A project running the engine over `source` into two folder nodes. */
function engineProject(project: string, source: string, packed: boolean): Promise<void> {
  return writeBenchProject(project, `local: { type: local, path: "${source}" }`, packed);
}

// --cloud local: a benchmark never probes the real cloud metadata addresses.
const ENGINE_ARGS = ['run', '--config', 'config/data_sources.yml', '--cloud', 'local', '--json'];

async function engine(count: number, { dir: source, bytes }: { dir: string; bytes: number }, packed: boolean, tiny: string): Promise<BenchResult> {
  const project = join(WORK, `engine-${count}-${packed ? 'packed' : 'unpacked'}`);
  await engineProject(project, source, packed);
  const warmProject = join(WORK, 'engine-warm-up');
  await engineProject(warmProject, tiny, packed);
  const tool = packed ? 'cloud-ingest (packed)' : 'cloud-ingest';
  try {
    const warm = (): void => void spawnSync(ENGINE_CLI, ENGINE_ARGS, { cwd: warmProject, env: engineEnv(), stdio: 'ignore' });
    const run = await disk.timed(ENGINE_CLI, ENGINE_ARGS, project, () => settle(source, warm), engineEnv());
    if (typeof run === 'string') return failedRun(tool, count, run);
    return { tool, files: count, ...run, filesOnDisk: await filesUnder(join(project, 'nodes')) };
  } finally {
    await disk.removeOutput(project, bytes);
    await rm(warmProject, { recursive: true, force: true });
  }
}

async function rclone(count: number, { dir: source, bytes }: { dir: string; bytes: number }, tiny: string): Promise<BenchResult> {
  const tool = 'rclone copy --transfers 8';
  if (spawnSync('rclone', ['version'], { stdio: 'ignore' }).status !== 0) return failedRun(tool, count, 'rclone not installed (apt-get install rclone)');
  const dest = join(WORK, `rclone-${count}`);
  await rm(dest, { recursive: true, force: true });
  try {
    const warm = (): void => void spawnSync('rclone', ['copy', tiny, `${dest}-warm-up`, '--transfers', '8'], { stdio: 'ignore' });
    const run = await disk.timed('rclone', ['copy', source, dest, '--transfers', '8'], WORK, () => settle(source, warm));
    if (typeof run === 'string') return failedRun(tool, count, run);
    return { tool, files: count, ...run, filesOnDisk: await filesUnder(dest) };
  } finally {
    await disk.removeOutput(dest, bytes);
    await rm(`${dest}-warm-up`, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  const results: BenchResult[] = [];
  const tiny = (await tree(10)).dir;
  for (const count of COUNTS) {
    const source = await tree(count);
    process.stderr.write(`${count.toLocaleString('en')} files, ${(source.bytes / 1024 / 1024).toFixed(0)} MiB\n`);
    const runs = { rclone: () => rclone(count, source, tiny), unpacked: () => engine(count, source, false, tiny), packed: () => engine(count, source, true, tiny) };
    await runSelected(runs, ONLY, results);
  }
  await disk.deleteKept();
  printResults(results);
  console.log('Local folder → two folder nodes (rclone: one folder).');
}

await main();
