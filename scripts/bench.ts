// npm run bench [-- --size-mib 1024 --also-mib 4096]: ingest a large file into two local folder nodes and, in
// the same run, time md5sum and cp on the same file. Prints wall time, MB/s, peak RSS and the ratios.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from '../electron/engine/config.ts';
import { ensureDataFile } from '../electron/engine/testdata.ts';

const MIB = 1024 * 1024;
const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '1024' }, 'also-mib': { type: 'string' }, repeat: { type: 'string', default: '3' } } });
const sizes = [Number(values['size-mib']), ...(values['also-mib'] ? [Number(values['also-mib'])] : [])];
const repeat = Number(values.repeat);
const root = join(PROJECT_ROOT, 'test_data', 'bench');

/** Every contender starts with no dirty pages from the one before, or it would pay for their writeback. */
function settle(): void {
  execFileSync('sync');
}

function timeCommand(command: string, args: string[]): number {
  settle();
  const started = performance.now();
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error(`${command} failed`);
  return (performance.now() - started) / 1000;
}

function best<T extends { seconds: number }>(runs: T[]): T {
  return runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

async function benchSize(mib: number): Promise<Record<string, string | number>> {
  const source = join(root, `source-${mib}`);
  const file = join(source, `bench_${mib}mib.bin`);
  process.stderr.write(`preparing ${file}\n`);
  await ensureDataFile(file, mib * MIB, `bench-${mib}`);
  const project = join(root, `project-${mib}`);
  await mkdir(join(project, 'config'), { recursive: true });
  const config = join(project, 'config', 'data_sources.yml');
  await writeFile(config, `data_sources:\n  local: { type: local, path: "${source}" }\ningestion: { chunk_size_mb: 100, max_concurrent_chunks: 10, retry_attempts: 3, retry_delay_seconds: 5 }\nnodes:\n  - { id: node-1, path: ./nodes/node-1 }\n  - { id: node-2, path: ./nodes/node-2 }\n`);

  timeCommand('md5sum', [file]); // warm the page cache so every contender reads from memory
  const md5 = best(Array.from({ length: repeat }, () => ({ seconds: timeCommand('md5sum', [file]) })));
  const cp = best(
    Array.from({ length: repeat }, () => {
      const out = join(root, 'cp-target.bin');
      const seconds = timeCommand('cp', [file, out]);
      execFileSync('rm', ['-f', out]);
      return { seconds };
    }),
  );
  const ingests = [];
  for (let i = 0; i < repeat; i++) {
    await rm(join(project, 'nodes'), { recursive: true, force: true });
    await rm(join(project, 'received_chunks'), { recursive: true, force: true });
    settle();
    const out = execFileSync(process.execPath, [join(PROJECT_ROOT, 'scripts', 'bench-ingest-child.ts'), config], { encoding: 'utf8' });
    ingests.push(JSON.parse(out.trim().split('\n').at(-1)!) as { seconds: number; bytes: number; status: string; maxRssBytes: number });
  }
  await rm(join(project, 'nodes'), { recursive: true, force: true });
  const ingest = best(ingests);
  const peakRss = Math.max(...ingests.map((r) => r.maxRssBytes));
  return {
    'file (MiB)': mib,
    'ingest s': ingest.seconds.toFixed(2),
    'ingest MB/s': ((mib * MIB) / ingest.seconds / 1e6).toFixed(0),
    'peak RSS MB': (peakRss / 1e6).toFixed(0),
    'md5sum s': md5.seconds.toFixed(2),
    'cp s': cp.seconds.toFixed(2),
    'ingest/md5sum': (ingest.seconds / md5.seconds).toFixed(2),
    'ingest/cp': (ingest.seconds / cp.seconds).toFixed(2),
  };
}

const rows = [];
for (const mib of sizes) rows.push(await benchSize(mib));
const headers = Object.keys(rows[0]!);
console.log(`\nCloud Ingest benchmark: ${repeat} run(s) each, best time, two local folder nodes, 100 MiB chunks, ${process.version}\n`);
console.log(`| ${headers.join(' | ')} |\n|${headers.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${headers.map((h) => row[h]).join(' | ')} |`);
console.log('\nTargets: ingest/md5sum ≤ 0.8; peak RSS ≤ 150 MB, and no higher for a 4 GiB file.');
