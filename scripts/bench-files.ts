// Benchmark: many small files. npm run bench:files [-- 10000 100000 1000000] [--only rclone,unpacked,packed]
//
// Generates trees of N files of 256 B–16 KiB (samples of a .jpg and a .json, 1,000 files a folder; kept under
// $BENCH_FILES_DIR or the temp folder between runs), then, in the same run and one after another:
//   - cloud-ingest run, local folder → two folder nodes, 64 MiB chunks (a chunk per file, as before);
//   - the same with ingestion.pack_below_mb: 1 (files packed into 64 MiB tar shards);
//   - rclone copy --transfers 8 of the same tree into one folder.
// Each is timed by /usr/bin/time (wall, peak RSS of the whole process, worker threads included). Prints wall
// time, files/s, peak RSS and the files each left on disk. Not a test: it never fails on the figures.
// Each starts from the same state (settle): the last run's files written back and, when the bench may (root), the
// kernel's caches dropped and the source tree read once again. Without that, whoever ran second paid for what
// the run before left: ext4 checks every free inode it considers against the inode tables it has cached, and a
// run just after another created files 2-2.5x slower, rclone as much as this engine (100,000 files: 7-8 s after
// a settle, 18-22 s right after another run).
// That was ext4 without a journal (this VM's disk): each new file's inode is searched past every inode freed in the
// last minutes whose inode table block is cached (fs/ext4/ialloc.c, recently_deleted: 60 s, 360 s while the block
// is dirty). 50,000 files created in 0.6-0.8 s on a quiet disk took 3.5-4.5 s up to 130 s after 50,000 others were
// deleted, even after a sync and with the caches dropped. Whoever ran right after a run's output was deleted paid for
// it (the unpacked run always followed rclone's). So outputs are kept until the bench ends when the disk has room
// for them, and no run starts until the bench's last large deletion is 6 minutes old (quietAfterDeletions).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENGINE_NODE_FLAGS } from '../bin/node22.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'cloud-ingest.js');
const FILES_PER_FOLDER = 1000;
const args = process.argv.slice(2);
const counts = args.map(Number).filter((n) => Number.isInteger(n) && n > 0);
const onlyAt = args.indexOf('--only');
const ONLY = new Set(onlyAt >= 0 ? (args[onlyAt + 1] ?? '').split(',') : ['rclone', 'unpacked', 'packed']);
const COUNTS = counts.length > 0 ? counts : [10_000, 100_000];
const WORK = process.env.BENCH_FILES_DIR ?? join(tmpdir(), 'ci-bench-files');

interface Result {
  tool: string;
  files: number;
  seconds: number;
  maxRssMb: number;
  /** CPU time the hypervisor gave to others while the run ran (all cores): how much slower this VM was then. */
  stealSeconds: number;
  filesOnDisk: number;
  note?: string;
}

/** Sizes from a seeded generator: the same tree every time. */
function sizes(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return 256 + (state % (16 * 1024 - 256 + 1));
  };
}

/** The tree of `count` files (made once, then reused); returns its folder and total bytes. */
async function tree(count: number): Promise<{ dir: string; bytes: number }> {
  const dir = join(WORK, `tree-${count}`);
  const marker = join(WORK, `tree-${count}.done`);
  if (existsSync(marker)) return { dir, bytes: Number(await readFile(marker, 'utf8')) };
  await rm(dir, { recursive: true, force: true });
  process.stderr.write(`generating ${count.toLocaleString('en')} files under ${dir}\n`);
  const next = sizes(count);
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

/** When the bench last deleted many files (see the top of this file), kept across runs of the bench. */
const DELETED_AT = join(WORK, 'deleted-at');
const QUIET_AFTER_DELETION_MS = 370_000;
/** Outputs kept until the bench ends (removeOutput), so that no run follows the deletion of another's. */
const keptOutputs: string[] = [];

/** Waits until the bench's last large deletion is old enough that new files no longer pay for it. */
async function quietAfterDeletions(): Promise<void> {
  const deletedAt = Number(await readFile(DELETED_AT, 'utf8').catch(() => '0'));
  const wait = deletedAt + QUIET_AFTER_DELETION_MS - Date.now();
  if (!(wait > 0)) return;
  process.stderr.write(`  waiting ${Math.ceil(wait / 1000)} s: files deleted less than 6 minutes ago slow down every file created (see the top of scripts/bench-files.ts)\n`);
  await sleep(wait);
}

async function deleteMany(paths: readonly string[]): Promise<void> {
  for (const path of paths) await rm(path, { recursive: true, force: true });
  await writeFile(DELETED_AT, String(Date.now()));
}

/** A run's output: kept until the bench ends while the disk has room for another of `bytes`, else deleted now. */
async function removeOutput(path: string, bytes: number): Promise<void> {
  const disk = await statfs(WORK);
  if (disk.bavail * disk.bsize > 2 * bytes + 4 * 1024 ** 3) keptOutputs.push(path);
  else await deleteMany([path]);
}

/** Whether settle() could drop the kernel's caches (it needs root). */
let cachesDropped = false;

/**
 * The same start for every tool: written back, caches dropped where allowed, then the source tree and the tool's
 * own files (`warm`: the same command over a tree of ten files) read again, so neither starts cold.
 */
function settle(source: string, warm: () => void): void {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    cachesDropped = true;
  } catch {
    return; // not root: the caches stay as the last run left them
  }
  spawnSync('sh', ['-c', 'tar cf - . | cat > /dev/null'], { cwd: source, stdio: 'ignore' });
  warm();
  spawnSync('sync');
}

/** Seconds of CPU time stolen from this machine since boot (/proc/stat, all CPUs); NaN where it is not known. */
async function stolenSeconds(): Promise<number> {
  const cpu = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0]?.trim().split(/\s+/);
  return cpu?.[0] === 'cpu' && cpu[8] !== undefined ? Number(cpu[8]) / 100 : NaN;
}

/** Runs a command under /usr/bin/time: wall seconds, peak RSS (MB) and CPU stolen meanwhile, or why it failed. */
async function timed(command: string, args: string[], cwd: string, settled: () => void): Promise<{ seconds: number; maxRssMb: number; stealSeconds: number } | string> {
  await quietAfterDeletions();
  settled();
  const stolenBefore = await stolenSeconds();
  const result = spawnSync('/usr/bin/time', ['-f', 'BENCH_TIME %e %M', command, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const stealSeconds = (await stolenSeconds()) - stolenBefore;
  const line = /BENCH_TIME ([\d.]+) (\d+)/.exec(result.stderr ?? '');
  if (result.status !== 0 || !line) return `${command} exited ${result.status}: ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
  return { seconds: Number(line[1]), maxRssMb: Number(line[2]) / 1024, stealSeconds };
}

async function filesUnder(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

/** A project running the engine over `source` into two folder nodes. */
async function engineProject(project: string, source: string, packed: boolean): Promise<void> {
  await rm(project, { recursive: true, force: true });
  await mkdir(join(project, 'config'), { recursive: true });
  const pack = packed ? ', pack_below_mb: 1' : '';
  const yaml = `data_sources:\n  local: { type: local, path: "${source}" }\ningestion: { chunk_size_mb: 64${pack} }\nnodes:\n  - { id: n1, path: ./nodes/n1 }\n  - { id: n2, path: ./nodes/n2 }\n`;
  await writeFile(join(project, 'config', 'data_sources.yml'), yaml);
}

// --cloud local: a benchmark never probes the real cloud metadata addresses.
const ENGINE_ARGS = [...ENGINE_NODE_FLAGS, CLI, 'run', '--config', 'config/data_sources.yml', '--cloud', 'local', '--json'];

async function engine(count: number, { dir: source, bytes }: { dir: string; bytes: number }, packed: boolean, tiny: string): Promise<Result> {
  const project = join(WORK, `engine-${count}-${packed ? 'packed' : 'unpacked'}`);
  await engineProject(project, source, packed);
  const warmProject = join(WORK, 'engine-warm-up');
  await engineProject(warmProject, tiny, packed);
  const tool = packed ? 'cloud-ingest (packed)' : 'cloud-ingest';
  try {
    const warm = (): void => void spawnSync(process.execPath, ENGINE_ARGS, { cwd: warmProject, stdio: 'ignore' });
    const run = await timed(process.execPath, ENGINE_ARGS, project, () => settle(source, warm));
    if (typeof run === 'string') return { tool, files: count, seconds: NaN, maxRssMb: NaN, stealSeconds: NaN, filesOnDisk: 0, note: run };
    return { tool, files: count, ...run, filesOnDisk: await filesUnder(join(project, 'nodes')) };
  } finally {
    await removeOutput(project, bytes);
    await rm(warmProject, { recursive: true, force: true });
  }
}

async function rclone(count: number, { dir: source, bytes }: { dir: string; bytes: number }, tiny: string): Promise<Result> {
  const tool = 'rclone copy --transfers 8';
  if (spawnSync('rclone', ['version'], { stdio: 'ignore' }).status !== 0) return { tool, files: count, seconds: NaN, maxRssMb: NaN, stealSeconds: NaN, filesOnDisk: 0, note: 'rclone not installed (apt-get install rclone)' };
  const dest = join(WORK, `rclone-${count}`);
  await rm(dest, { recursive: true, force: true });
  try {
    const warm = (): void => void spawnSync('rclone', ['copy', tiny, `${dest}-warm-up`, '--transfers', '8'], { stdio: 'ignore' });
    const run = await timed('rclone', ['copy', source, dest, '--transfers', '8'], WORK, () => settle(source, warm));
    if (typeof run === 'string') return { tool, files: count, seconds: NaN, maxRssMb: NaN, stealSeconds: NaN, filesOnDisk: 0, note: run };
    return { tool, files: count, ...run, filesOnDisk: await filesUnder(dest) };
  } finally {
    await removeOutput(dest, bytes);
    await rm(`${dest}-warm-up`, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  const results: Result[] = [];
  const tiny = (await tree(10)).dir;
  for (const count of COUNTS) {
    const source = await tree(count);
    process.stderr.write(`${count.toLocaleString('en')} files, ${(source.bytes / 1024 / 1024).toFixed(0)} MiB\n`);
    const runs = { rclone: () => rclone(count, source, tiny), unpacked: () => engine(count, source, false, tiny), packed: () => engine(count, source, true, tiny) };
    for (const [name, run] of Object.entries(runs)) {
      if (!ONLY.has(name)) continue;
      const result = await run();
      process.stderr.write(`  ${result.tool}: ${result.note ?? `${result.seconds.toFixed(2)} s, ${result.maxRssMb.toFixed(0)} MB peak RSS, ${result.filesOnDisk} files on disk, ${result.stealSeconds.toFixed(1)} CPU-s stolen`}\n`);
      results.push(result);
    }
  }
  if (keptOutputs.length > 0) await deleteMany(keptOutputs.splice(0));
  console.log('\nfiles       tool                        wall s   files/s  peak RSS MB  files on disk  vs rclone  stolen CPU-s');
  for (const r of results) {
    const peer = results.find((p) => p.files === r.files && p.tool.startsWith('rclone'));
    const ratio = peer && Number.isFinite(peer.seconds) && Number.isFinite(r.seconds) ? `${(peer.seconds / r.seconds).toFixed(2)}x` : '-';
    const rate = Number.isFinite(r.seconds) ? Math.round(r.files / r.seconds).toString() : '-';
    console.log(`${r.files.toLocaleString('en').padEnd(12)}${r.tool.padEnd(28)}${(Number.isFinite(r.seconds) ? r.seconds.toFixed(2) : '-').padStart(6)}${rate.padStart(10)}${(Number.isFinite(r.maxRssMb) ? r.maxRssMb.toFixed(0) : '-').padStart(13)}${String(r.filesOnDisk).padStart(15)}${ratio.padStart(11)}${(Number.isFinite(r.stealSeconds) ? r.stealSeconds.toFixed(1) : '-').padStart(14)}${r.note ? `   (${r.note})` : ''}`);
  }
  console.log('vs rclone: rclone wall time / this wall time (above 1: faster than rclone). Local folder → two folder nodes (rclone: one folder), warm page cache.');
  console.log(cachesDropped ? 'Each run started with the caches dropped and the source tree read again.' : 'Caches not dropped (not root): each run started as the last one left the caches; see settle().');
  console.log('No run started within 6 minutes of the bench deleting files (outputs are deleted at the end).');
  console.log('stolen CPU-s: CPU time the hypervisor gave to other machines during the run (at most cores × wall); compare runs only when it is alike.');
}

await main();
