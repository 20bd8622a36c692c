// What the many-files benchmarks (bench-files.ts, bench-bucket.ts) share: a settled start for every tool, timing
// under /usr/bin/time, the wait after large deletions, and the results table.
//
// Why settle: whoever ran second paid for what the run before left. ext4 checks every free inode it considers
// against the inode tables it has cached, and a run just after another created files 2-2.5x slower, rclone as
// much as this engine (100,000 files: 7-8 s after a settle, 18-22 s right after another run).
// Why wait after deleting: on ext4 without a journal (this VM's disk) each new file's inode is searched past every
// inode freed in the last minutes whose inode table block is cached (fs/ext4/ialloc.c, recently_deleted: 60 s,
// 360 s while the block is dirty). 50,000 files created in 0.6-0.8 s on a quiet disk took 3.5-4.5 s up to 130 s
// after 50,000 others were deleted, even after a sync and with the caches dropped. So outputs are kept until the
// bench ends when the disk has room for them, and no run starts until the last large deletion is 6 minutes old.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../test/helpers/emulators.ts';
import type { Emulator } from '../test/helpers/emulators.ts';

export interface BenchResult {
  tool: string;
  /** Files or objects moved. */
  files: number;
  seconds: number;
  maxRssMb: number;
  /** The tool's own CPU time, user + system, all its threads (a 2-core VM copying small files is CPU-bound). */
  cpuSeconds: number;
  /** CPU time the hypervisor gave to others while the run ran (all cores): how much slower this VM was then. */
  stealSeconds: number;
  filesOnDisk: number;
  note?: string;
}

/**
 * The engine as a user runs the installed `cloud-ingest`: the launcher executed as a command, whose shell line
 * starts Node with the engine's flags and malloc settings (`node bin/cloud-ingest.js` would restart itself for
 * them), with the Node running this bench first on PATH.
 */
export const ENGINE_CLI = resolve(import.meta.dirname, '..', 'bin', 'cloud-ingest.js');

export function engineEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, PATH: `${dirname(process.execPath)}${delimiter}${env.PATH ?? ''}` };
}

export type TimedRun = Pick<BenchResult, 'seconds' | 'maxRssMb' | 'cpuSeconds' | 'stealSeconds'>;

/** A bench's command line: the counts to run (default 10,000 and 100,000) and `--only rclone,unpacked,packed`. */
export function benchArgs(args: readonly string[]): { counts: number[]; only: Set<string> } {
  const counts = args.map(Number).filter((n) => Number.isInteger(n) && n > 0);
  const onlyAt = args.indexOf('--only');
  return {
    counts: counts.length > 0 ? counts : [10_000, 100_000],
    only: new Set(onlyAt >= 0 ? (args[onlyAt + 1] ?? '').split(',') : ['rclone', 'unpacked', 'packed']),
  };
}

const QUIET_AFTER_DELETION_MS = 370_000;

/**
 * When any bench last deleted many files, shared by every bench (each also keeps its own in its folder): the slowdown
 * is the file system's, so bench:bucket run right after bench:files paid for the outputs bench:files had just deleted
 * (10,000 objects: engine CPU 18.4 s, with ext4's recently_deleted in the profile). Where a bench's folder is on
 * another file system this only makes it wait longer than it needs to.
 */
const SHARED_DELETED_AT = join(tmpdir(), 'cloud-ingest-bench.deleted-at');

/** The bench's working folder: when it last deleted many files (kept across runs), and the outputs it keeps. */
export class BenchDisk {
  readonly work: string;
  private readonly deletedAt: string;
  private readonly kept: string[] = [];

  constructor(work: string) {
    this.work = work;
    this.deletedAt = join(work, 'deleted-at');
  }

  /** Waits until the bench's last large deletion is old enough that new files no longer pay for it. */
  async quietAfterDeletions(): Promise<void> {
    const read = (path: string): Promise<number> => readFile(path, 'utf8').then(Number, () => 0);
    const deletedAt = Math.max(await read(this.deletedAt), await read(SHARED_DELETED_AT));
    const wait = deletedAt + QUIET_AFTER_DELETION_MS - Date.now();
    if (!(wait > 0)) return;
    process.stderr.write(`  waiting ${Math.ceil(wait / 1000)} s: files deleted less than 6 minutes ago slow down every file created (see scripts/bench-runs.ts)\n`);
    await sleep(wait);
  }

  async deleteMany(paths: readonly string[]): Promise<void> {
    for (const path of paths) await rm(path, { recursive: true, force: true });
    const now = String(Date.now());
    await Promise.all([writeFile(this.deletedAt, now), writeFile(SHARED_DELETED_AT, now)]);
  }

  /** A run's output: kept until the bench ends while the disk has room for another of `bytes`, else deleted now. */
  async removeOutput(path: string, bytes: number): Promise<void> {
    const disk = await statfs(this.work);
    if (disk.bavail * disk.bsize > 2 * bytes + 4 * 1024 ** 3) this.kept.push(path);
    else await this.deleteMany([path]);
  }

  async deleteKept(): Promise<void> {
    if (this.kept.length > 0) await this.deleteMany(this.kept.splice(0));
  }

  /** Runs a command under /usr/bin/time once the disk is quiet and `settled` has run. */
  async timed(command: string, args: string[], cwd: string, settled: () => void, env?: NodeJS.ProcessEnv): Promise<TimedRun | string> {
    await this.quietAfterDeletions();
    settled();
    const stolenBefore = await stolenSeconds();
    const result = spawnSync('/usr/bin/time', ['-f', 'BENCH_TIME %e %M %U %S', command, ...args], { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const stealSeconds = (await stolenSeconds()) - stolenBefore;
    const line = /BENCH_TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(result.stderr ?? '');
    if (result.status !== 0 || !line) return `${command} exited ${result.status}: ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
    return { seconds: Number(line[1]), maxRssMb: Number(line[2]) / 1024, cpuSeconds: Number(line[3]) + Number(line[4]), stealSeconds };
  }
}

/** Whether settle() could drop the kernel's caches (it needs root). */
let cachesDropped = false;

export function couldDropCaches(): boolean {
  return cachesDropped;
}

/**
 * The same start for every tool: written back, caches dropped where allowed, then the source (a tree, or the
 * emulator's folder) and the tool's own files (`warm`: the same command over ten files) read again.
 */
export function settle(source: string, warm: () => void): void {
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

export async function filesUnder(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

/** A run that could not be timed, as a row of the table. */
export function failedRun(tool: string, files: number, note: string): BenchResult {
  return { tool, files, seconds: NaN, maxRssMb: NaN, cpuSeconds: NaN, stealSeconds: NaN, filesOnDisk: 0, note };
}

/** Runs each of `runs` that `only` names, in order, reporting each as it ends; adds their results to `results`. */
export async function runSelected(runs: Record<string, () => Promise<BenchResult>>, only: ReadonlySet<string>, results: BenchResult[]): Promise<void> {
  for (const [name, run] of Object.entries(runs)) {
    if (!only.has(name)) continue;
    const result = await run();
    reportRun(result);
    results.push(result);
  }
}

function reportRun(result: BenchResult): void {
  process.stderr.write(`  ${result.tool}: ${result.note ?? `${result.seconds.toFixed(2)} s, ${result.cpuSeconds.toFixed(2)} CPU-s, ${result.maxRssMb.toFixed(0)} MB peak RSS, ${result.filesOnDisk} files on disk, ${result.stealSeconds.toFixed(1)} CPU-s stolen`}\n`);
}

/** The table: each run against rclone's run of the same count. */
export function printResults(results: readonly BenchResult[], count = 'files'): void {
  console.log(`\n${count.padEnd(12)}tool                        wall s   ${`${count}/s`.padStart(7)}   CPU s  peak RSS MB  files on disk  vs rclone  stolen CPU-s`);
  for (const r of results) {
    const peer = results.find((p) => p.files === r.files && p.tool.startsWith('rclone'));
    const ratio = peer && Number.isFinite(peer.seconds) && Number.isFinite(r.seconds) ? `${(peer.seconds / r.seconds).toFixed(2)}x` : '-';
    const rate = Number.isFinite(r.seconds) ? Math.round(r.files / r.seconds).toString() : '-';
    console.log(`${r.files.toLocaleString('en').padEnd(12)}${r.tool.padEnd(28)}${(Number.isFinite(r.seconds) ? r.seconds.toFixed(2) : '-').padStart(6)}${rate.padStart(10)}${(Number.isFinite(r.cpuSeconds) ? r.cpuSeconds.toFixed(2) : '-').padStart(8)}${(Number.isFinite(r.maxRssMb) ? r.maxRssMb.toFixed(0) : '-').padStart(13)}${String(r.filesOnDisk).padStart(15)}${ratio.padStart(11)}${(Number.isFinite(r.stealSeconds) ? r.stealSeconds.toFixed(1) : '-').padStart(14)}${r.note ? `   (${r.note})` : ''}`);
  }
  console.log('vs rclone: rclone wall time / this wall time (above 1: faster than rclone). CPU s: the tool\'s user + system time (an emulator\'s is not counted).');
  console.log(cachesDropped ? 'Each run started with the caches dropped and the source read again.' : 'Caches not dropped (not root): each run started as the last one left the caches; see settle().');
  console.log('No run started within 6 minutes of the bench deleting files (outputs are deleted at the end).');
  console.log('stolen CPU-s: CPU time the hypervisor gave to other machines during the run (at most cores × wall); compare runs only when it is alike.');
}

/** rclone's remote `src:` for an emulator, as environment variables (rclone gets no config file). */
export function rcloneSourceEnv(emulator: Emulator): Record<string, string> {
  switch (emulator.kind) {
    case 's3':
      return {
        RCLONE_CONFIG_SRC_TYPE: 's3',
        RCLONE_CONFIG_SRC_PROVIDER: 'Other',
        RCLONE_CONFIG_SRC_ENDPOINT: emulator.endpoint,
        RCLONE_CONFIG_SRC_FORCE_PATH_STYLE: 'true',
        RCLONE_CONFIG_SRC_ACCESS_KEY_ID: emulator.env.AWS_ACCESS_KEY_ID ?? '',
        RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY: emulator.env.AWS_SECRET_ACCESS_KEY ?? '',
        RCLONE_CONFIG_SRC_REGION: 'us-east-1',
      };
    case 'azure':
      return {
        RCLONE_CONFIG_SRC_TYPE: 'azureblob',
        RCLONE_CONFIG_SRC_ACCOUNT: AZURITE_ACCOUNT,
        RCLONE_CONFIG_SRC_KEY: AZURITE_KEY,
        RCLONE_CONFIG_SRC_ENDPOINT: emulator.endpoint,
        RCLONE_CONFIG_SRC_USE_EMULATOR: 'true',
      };
    case 'gcs':
      return {
        RCLONE_CONFIG_SRC_TYPE: 'google cloud storage',
        RCLONE_CONFIG_SRC_ANONYMOUS: 'true',
        RCLONE_CONFIG_SRC_ENDPOINT: emulator.endpoint,
      };
  }
}

/**
 * A fresh project in `project` whose config reads `source` (a `data_sources` entry, YAML flow style) into two folder
 * nodes with 64 MiB chunks, packing files under 1 MiB when `packed`.
 */
export async function writeBenchProject(project: string, source: string, packed: boolean, topLevel = ''): Promise<void> {
  await rm(project, { recursive: true, force: true });
  await mkdir(join(project, 'config'), { recursive: true });
  const pack = packed ? ', pack_below_mb: 1' : '';
  const yaml = `data_sources:\n  ${source}\ningestion: { chunk_size_mb: 64${pack} }\n${topLevel}nodes:\n  - { id: n1, path: ./nodes/n1 }\n  - { id: n2, path: ./nodes/n2 }\n`;
  await writeFile(join(project, 'config', 'data_sources.yml'), yaml);
}

/** Sample sizes of 256 B–16 KiB from a generator seeded with `seed`: the same tree or bucket every time. */
export function sampleSizes(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return 256 + (state % (16 * 1024 - 256 + 1));
  };
}
