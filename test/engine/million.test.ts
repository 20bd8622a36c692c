// A run of a million files, as far as memory goes: its journal, spill and manifest are written, and the journal
// read back for a resume, each in a process whose heap is capped far below what a million entries take when held.
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import { tempDir } from '../helpers/temp.ts';
import { detection, tempProject, writeConfig } from './fixtures.ts';

const MILLION = 1_000_000;
/** A million entries held as objects take several hundred MB of heap; streamed, the engine stays far below this. */
const HEAP_CAP_MB = 64;
const CHILD = join(import.meta.dirname, 'million-child.ts');

function child(phase: 'write' | 'resume' | 'lookup' | 'repair' | 'pages', dir: string): Record<string, number> {
  const run = spawnSync(process.execPath, [`--max-old-space-size=${HEAP_CAP_MB}`, CHILD, phase, dir, String(MILLION)], { encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 20 });
  expect(run.stderr.replace(/^.*ExperimentalWarning.*\n?/gm, '')).toBe('');
  expect(run.status).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
}

/** How many lines of the manifest hold each of these members (a line per top-level member, file and chunk). */
async function countMembers(path: string, names: string[]): Promise<Record<string, number>> {
  const counts = Object.fromEntries(names.map((n) => [n, 0]));
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) {
    for (const name of names) if (line.includes(`"${name}":`)) counts[name]!++;
  }
  return counts;
}

describe('a million files (issue 15)', () => {
  it(`a million-entry journal and manifest are written, the journal read back to resume, files looked up, the app's pages read and the run repaired, within a ${HEAP_CAP_MB} MB heap`, async () => {
    const dir = await tempDir('ci-million-');
    const written = child('write', dir);
    expect(written.heapUsedMb).toBeLessThan(HEAP_CAP_MB);

    // Every file and chunk is in the manifest once, a line each.
    const members = await countMembers(join(dir, 'run.json'), ['chunkCount', 'copies', 'files', 'chunks', 'totals']);
    expect(members).toEqual({ chunkCount: MILLION, copies: MILLION, files: 2, chunks: 2, totals: 1 });

    const resumed = child('resume', dir);
    expect(resumed).toMatchObject({ chunks: MILLION, found: Math.ceil(MILLION / 997), changed: 1, reread: 1 });
    expect(resumed.heapUsedMb).toBeLessThan(HEAP_CAP_MB);

    // reassemble --file KEY finds its file and chunks in the manifest without holding it (it once parsed it whole).
    const looked = child('lookup', dir);
    expect(looked).toMatchObject({ found: 3, missingFound: 0, keysNamed: 10, moreKeys: 1, summaryFiles: MILLION });
    expect(looked.heapUsedMb).toBeLessThan(HEAP_CAP_MB);

    // The app's Received screen on this run: a preview, then every copy counted and any page, row or file found, from
    // an index of where the chunk lines lie (the host once sent the manifest whole).
    const paged = child('pages', dir);
    expect(paged).toMatchObject({ previewFiles: 20_000, previewChunks: 20_000, partialFiles: MILLION, onN1: MILLION, onN2: MILLION });
    expect(paged).toMatchObject({ pageRows: 150, pageTotal: MILLION, pageEndsAtLast: 1, lastPosition: MILLION - 1, foundLast: 1 });
    expect(paged.heapUsedMb).toBeLessThan(HEAP_CAP_MB);

    // repair reads the manifest in passes and writes its next version line by line (it once parsed it whole).
    const repaired = child('repair', dir);
    expect(repaired).toMatchObject({ checked: 2, problems: 2, degraded: 1 });
    expect(repaired.heapUsedMb).toBeLessThan(HEAP_CAP_MB);
    const next = await countMembers(join(dir, 'run.v002.json'), ['chunkCount', 'copies', 'files', 'chunks', 'totals', 'shortfall']);
    // Every file and chunk again, and the one shortfall entry (which counts its copies too).
    expect(next).toEqual({ chunkCount: MILLION, copies: MILLION + 1, files: 2, chunks: 2, totals: 1, shortfall: 1 });
  }, 600_000);
});

describe('a plan longer than the window of it held in memory', () => {
  it('9,000 files through one delivery lane: every file delivered and listed once, in listing order', async () => {
    const root = await tempProject();
    const keys: string[] = [];
    for (let d = 0; d < 9; d++) {
      await mkdir(join(root, 'data', `d${d}`), { recursive: true });
      for (let i = 0; i < 1000; i++) {
        const key = `d${d}/${String(i).padStart(4, '0')}.txt`;
        keys.push(key);
        await writeFile(join(root, 'data', key), `${key}\n`);
      }
    }
    const loaded = await writeConfig(root, 'data_sources:\n  local: { type: local, path: ./data }\ningestion: { max_concurrent_chunks: 1 }\nnodes:\n  - { id: n1, path: ./nodes/n1 }\n');
    const { manifest, failedFiles } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.status).toBe('complete');
    expect(failedFiles.count).toBe(0);
    expect(manifest.files.map((f) => f.key)).toEqual(keys);
    expect(manifest.chunks.map((c) => c.file)).toEqual(keys);
    expect(manifest.totals).toMatchObject({ files: 9000, chunks: 9000 });
  }, 120_000);
});
