// Activity for any run: who ran it from where comes from the manifest (`ranBy`), and the throughput chart from the
// run's journal (`t` on every chunk line), so a run made with the CLI shows both. The journal is read as a stream
// into a fixed number of bins: 100,000 lines, a resume pause and damaged lines cost the same small answer.
import { execFile } from 'node:child_process';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { createHost } from '../../electron/host/host.ts';
import type { EngineHost } from '../../electron/host/host.ts';
import { journalThroughput } from '../../electron/host/throughput.ts';
import { hostWireApi } from '../../electron/host/wire.ts';
import { unwrap } from '../../renderer/api/unwrap.ts';
import type { Api } from '../../shared/ipc/contract.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CHUNK = 64 * 1024;

const CONFIG = `data_sources:
  local: { type: "local", path: "./source" }
ingestion: { chunk_size_mb: 0.0625, max_concurrent_chunks: 2, retry_delay_seconds: 0.1 }
nodes:
  - { id: node-a, path: ./nodes/node-a }
  - { id: node-b, path: ./nodes/node-b }
`;

let dir: string;
let host: EngineHost;
let api: Api;

beforeAll(async () => {
  dir = await tempDir('app-activity-');
  await mkdir(join(dir, 'source'), { recursive: true });
  await writeFile(join(dir, 'data_sources.yml'), CONFIG);
  await ensureDataFile(join(dir, 'source', 'a.bin'), 3 * 1024 * 1024, 'a');
  await ensureDataFile(join(dir, 'source', 'b.bin'), 1024 * 1024 + 100, 'b');
  host = createHost({ configPath: join(dir, 'data_sources.yml') });
  api = unwrap(hostWireApi(host));
});

afterAll(async () => {
  await host?.close();
  await removeTempDirs();
});

function runsDir(): string {
  return join(dir, '.cloud-ingest', 'runs');
}

describe('Activity for a run made through the CLI', () => {
  it('shows who ran it from where (CLI, user, host) and its throughput over time from its journal', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'bin/cloud-ingest.js'), 'run', '--config', join(dir, 'data_sources.yml'), '--json'], {
      cwd: dir,
      env: { ...process.env, CLOUD_PROVIDER: 'local' },
    });
    const summary = JSON.parse(stdout) as { runId: string };
    const entries = await api.listActivity({});
    const entry = entries.find((e) => e.runId === summary.runId);
    expect(entry).toBeDefined();
    expect(entry!.origin).toEqual({ tool: 'cli', user: userInfo().username, host: hostname() });
    expect(entry!.bytes).toBe(4 * 1024 * 1024 + 100);

    const detail = await api.activityDetail({ runId: summary.runId });
    expect(detail.source).toBe('journal');
    expect(detail.attempts).toBe(1);
    expect(detail.heldChunks).toBe(0);
    expect(detail.samples.length).toBeGreaterThanOrEqual(3);
    expect(detail.samples.length).toBeLessThanOrEqual(401);
    // Cumulative, never falling, ending at every byte the run stored.
    for (let i = 1; i < detail.samples.length; i++) {
      expect(detail.samples[i]![0]).toBeGreaterThan(detail.samples[i - 1]![0]);
      expect(detail.samples[i]![1]).toBeGreaterThanOrEqual(detail.samples[i - 1]![1]);
    }
    expect(detail.samples.at(-1)![1]).toBe(entry!.bytes);
    // The chart spans the run: its last bin ends no earlier than the last chunk the journal timed.
    const lines = (await readFile(join(runsDir(), `${summary.runId}.journal.jsonl`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string; t?: number });
    const lastT = Math.max(...lines.filter((l) => l.type === 'chunk').map((l) => l.t!));
    expect(detail.samples.at(-1)![0]).toBeGreaterThan(lastT);
  });

  it('a second CLI run finds every chunk already on its nodes: nothing sent, nothing charted, and it says why', async () => {
    const { stdout } = await run(process.execPath, [join(ROOT, 'bin/cloud-ingest.js'), 'run', '--config', join(dir, 'data_sources.yml'), '--json'], {
      cwd: dir,
      env: { ...process.env, CLOUD_PROVIDER: 'local' },
    });
    const { runId } = JSON.parse(stdout) as { runId: string };
    const detail = await api.activityDetail({ runId });
    expect(detail).toMatchObject({ source: 'journal', samples: [], heldChunks: 65 });
  });

  it('a run whose manifest does not say who ran it, with no journal, is "unknown" with no chart (no guess)', async () => {
    const entries = await api.listActivity({});
    const cliRun = entries[0]!;
    const manifest = JSON.parse(await readFile(cliRun.manifestPath, 'utf8')) as Record<string, unknown>;
    delete manifest.ranBy;
    const oldId = 'old-run-1';
    await writeFile(join(runsDir(), `${oldId}.json`), JSON.stringify({ ...manifest, runId: oldId, startedAt: '2020-01-01T00:00:00.000Z', finishedAt: '2020-01-01T00:00:05.000Z' }));
    const old = (await api.listActivity({})).find((e) => e.runId === oldId);
    expect(old?.origin).toEqual({ tool: 'unknown' });
    expect(await api.activityDetail({ runId: oldId })).toEqual({ runId: oldId, samples: [], source: 'none', attempts: 1, heldChunks: 0 });
  });

  it('a manifest whose ranBy is not shaped as the engine writes it is not passed on', async () => {
    const entries = await api.listActivity({});
    const manifest = JSON.parse(await readFile(entries.find((e) => e.origin.tool === 'cli')!.manifestPath, 'utf8')) as Record<string, unknown>;
    const id = 'odd-run-1';
    await writeFile(join(runsDir(), `${id}.json`), JSON.stringify({ ...manifest, runId: id, startedAt: '2020-01-02T00:00:00.000Z', ranBy: { tool: 'rm -rf', user: { evil: true } } }));
    expect((await api.listActivity({})).find((e) => e.runId === id)?.origin).toEqual({ tool: 'unknown' });
  });
});

describe('the journal is read as a stream into bounded bins', () => {
  it('100,000 chunk lines over 10 hours, a resume after a pause, damaged and overlong lines', async () => {
    const path = join(dir, 'big.journal.jsonl');
    const startedAt = Date.parse('2026-01-01T00:00:00.000Z');
    const hour = 3_600_000;
    await writeFile(path, `${JSON.stringify({ type: 'start', version: 1, runId: 'big', startedAt: new Date(startedAt).toISOString() })}\n`);
    const lines: string[] = [];
    const flush = async (): Promise<void> => {
      await appendFile(path, lines.join(''));
      lines.length = 0;
    };
    const chunkLine = (i: number, t: number): string =>
      `${JSON.stringify({ type: 'chunk', t, etag: 'e', chunk: { id: `k_chunk_${i}`, file: 'k', index: i, offset: i * CHUNK, size: CHUNK, checksum: 'x'.repeat(32), node: 'node-a', path: '/p', copies: [{ nodeId: 'node-a', location: '/p' }], attempts: 1, movedFrom: [] } })}\n`;
    // Attempt 1: 50,000 chunks over 5 hours; killed; resumed 3 hours later; attempt 2: 50,000 over 5 hours.
    for (let i = 0; i < 50_000; i++) {
      lines.push(chunkLine(i, Math.round(((i + 1) / 50_000) * 5 * hour)));
      if (lines.length === 5000) await flush();
    }
    lines.push('{"type":"chunk","t":12,"chunk":{"size":\n', 'not json at all\n', `{"type":"log","pad":"${'y'.repeat(5 * 1024 * 1024)}"}\n`);
    lines.push(`${JSON.stringify({ type: 'resume', at: new Date(startedAt + 8 * hour).toISOString() })}\n`);
    for (let i = 50_000; i < 100_000; i++) {
      lines.push(chunkLine(i, Math.round(8 * hour + ((i - 49_999) / 50_000) * 5 * hour)));
      if (lines.length === 5000) await flush();
    }
    await flush();

    const began = performance.now();
    const result = await journalThroughput(path);
    const elapsedMs = performance.now() - began;
    expect(result.timedChunks).toBe(100_000);
    expect(result.attempts).toBe(2);
    expect(result.skippedLines).toBe(3); // the torn line, the text, the 5 MiB line
    expect(result.samples.length).toBeLessThanOrEqual(401);
    expect(result.samples.at(-1)![1]).toBe(100_000 * CHUNK);
    // The 3-hour pause is left out: 10 hours of work end within one bin of 10 hours.
    const end = result.samples.at(-1)![0];
    const binWidth = end - result.samples.at(-2)![0];
    expect(end).toBeGreaterThanOrEqual(10 * hour);
    expect(end).toBeLessThanOrEqual(10 * hour + binWidth);
    // Steady throughput: the middle bins agree with the mean (one chunk every 360 ms).
    const mid = Math.floor(result.samples.length / 2);
    const rate = (result.samples[mid + 1]![1] - result.samples[mid]![1]) / binWidth;
    expect(rate).toBeCloseTo(CHUNK / 360, 0);
    expect(elapsedMs, 'read 100,000 lines').toBeLessThan(15_000);
  });

  it('a journal from before chunk lines carried t gives no samples; a missing one is an error the host turns into "none"', async () => {
    const path = join(dir, 'untimed.journal.jsonl');
    await writeFile(path, `${JSON.stringify({ type: 'chunk', chunk: { size: 10 } })}\n`);
    expect(await journalThroughput(path)).toEqual({ samples: [], timedChunks: 0, heldChunks: 0, skippedLines: 0, attempts: 1 });
    await expect(journalThroughput(join(dir, 'missing.journal.jsonl'))).rejects.toThrow(/ENOENT/);
  });
});
