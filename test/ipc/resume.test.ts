// Resume through the app's real host (worker thread, real files): cancel a run from the store, find it among the
// unfinished runs, resume it to completion, and see the list empty. Unknown, malformed and finished run ids come
// back as errors in the usual envelope.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { createHost } from '../../electron/host/host.ts';
import type { EngineHost } from '../../electron/host/host.ts';
import { hostWireApi } from '../../electron/host/wire.ts';
import { unwrap } from '../../renderer/api/unwrap.ts';
import { bridgeEvents, createAppStore } from '../../renderer/store/store.ts';
import type { AppStore } from '../../renderer/store/store.ts';
import { until as untilEvery } from '../helpers/until.ts';

const until = (check: () => boolean, what: string, ms = 60_000): Promise<void> => untilEvery(check, what, ms, 5);

// 64 KiB chunks, two at a time: 3 × 6 MiB is 288 chunks, so a cancel after the first few lands mid-run.
const CONFIG = `data_sources:
  local: { type: "local", path: "./source" }
ingestion:
  chunk_size_mb: 0.0625
  max_concurrent_chunks: 2
  retry_attempts: 1
  retry_delay_seconds: 0.05
nodes:
  - { id: node-a, path: ./nodes/node-a }
  - { id: node-b, path: ./nodes/node-b }
`;
const MIB = 1024 * 1024;
const TOTAL_CHUNKS = 3 * 96;

let dir: string;
let host: EngineHost;
let store: AppStore;


const ended = (): boolean => ['finished', 'failed', 'cancelled'].includes(store.getState().ingest.meta?.phase ?? '');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'app-resume-'));
  await writeFile(join(dir, 'data_sources.yml'), CONFIG);
  for (const name of ['a.bin', 'b.bin', 'c.bin']) await ensureDataFile(join(dir, 'source', name), 6 * MIB, name);
  host = createHost({ configPath: join(dir, 'data_sources.yml'), batchMs: 20 });
  const api = unwrap(hostWireApi(host));
  store = createAppStore(api);
  bridgeEvents(api, store);
  await store.getState().detect('local');
});

afterAll(async () => {
  await host?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('resume in the app host', () => {
  it('refuses malformed run ids before they reach the engine, and names the missing journal for unknown ones', async () => {
    expect(await host.call('startIngest', { resume: '../data_sources' })).toMatchObject({ ok: false, error: { code: 'invalid_request', message: expect.stringContaining('startIngest.resume: expected a run id') } });
    expect(await host.call('startIngest', { resume: '' })).toMatchObject({ ok: false, error: { code: 'invalid_request' } });

    const unknown = await host.call('startIngest', { resume: 'no-such-run' });
    expect(unknown).toMatchObject({ ok: false, error: { code: 'failed' } });
    if (!unknown.ok) {
      expect(unknown.error.message).toMatch(/^There is no journal at .*no-such-run\.journal\.jsonl\. Fix: /);
    }
    // Through the store, the same words land in the Ingest screen's banner, and nothing started.
    await store.getState().resumeIngest('no-such-run');
    expect(store.getState().ingest.error).toMatch(/There is no journal at .*no-such-run/);
    expect(store.getState().ingest.meta).toBeNull();
    await store.getState().listResumable();
    expect(store.getState().resumable).toEqual({ runs: [], error: null });
  });

  it('cancels a run, lists it as unfinished, resumes it to completion, and then lists nothing', async () => {
    await store.getState().startIngest();
    expect(store.getState().ingest.error).toBeNull();
    await until(() => (store.getState().ingest.meta?.chunksDone ?? 0) >= 3 || ended(), 'the first chunks');
    // The run in progress is never offered for resuming.
    expect(await unwrap(hostWireApi(host)).listResumable({})).toEqual([]);
    await store.getState().cancelIngest();
    await until(ended, 'the cancelled run to end');
    const cancelled = store.getState().ingest.meta!;
    expect(cancelled.phase).toBe('cancelled');
    expect(cancelled.totals.chunks).toBe(TOTAL_CHUNKS);

    await store.getState().listResumable();
    const { runs, error } = store.getState().resumable;
    expect(error).toBeNull();
    expect(runs).toHaveLength(1);
    const run = runs[0]!;
    expect(run.lastStatus).toBe('cancelled');
    expect(run.runId).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(run.chunksDone).toBeGreaterThanOrEqual(3);
    expect(run.chunksDone).toBeLessThan(TOTAL_CHUNKS);
    expect(Number.isNaN(Date.parse(run.startedAt))).toBe(false);

    await store.getState().resumeIngest(run.runId);
    expect(store.getState().ingest.error).toBeNull();
    // The resumed run is in progress (its journal has no end line yet) and is not offered again.
    expect(await unwrap(hostWireApi(host)).listResumable({})).toEqual([]);
    const again = await host.call('startIngest', { resume: run.runId });
    expect(again).toMatchObject({ ok: false, error: { code: 'busy' } });
    await until(() => store.getState().ingest.meta?.runId === run.runId && ended(), 'the resumed run to end');

    const { meta, chunks } = store.getState().ingest;
    expect(meta?.phase).toBe('finished');
    expect(meta?.chunksDone).toBe(TOTAL_CHUNKS);
    expect(meta?.chunksFailed).toBe(0);
    expect(meta?.manifestPath).toContain(run.runId);
    // What the cancelled run delivered is skipped, not sent again; the rest is sent now.
    const states = chunks.map((c) => c?.state);
    expect(states.filter((s) => s === 'skipped').length).toBeGreaterThanOrEqual(run.chunksDone);
    expect(states.filter((s) => s === 'verified').length).toBeGreaterThan(0);
    expect(states.every((s) => s === 'skipped' || s === 'verified')).toBe(true);

    await store.getState().listResumable();
    expect(store.getState().resumable).toEqual({ runs: [], error: null });

    // A completed run cannot be resumed; the answer says so.
    const done = await host.call('startIngest', { resume: run.runId });
    expect(done).toMatchObject({ ok: false, error: { code: 'invalid_request', message: expect.stringContaining('already completed') } });
  });
});
