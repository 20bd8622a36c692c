// The app's state driven through the real engine host (worker thread, real files): the renderer store, the
// contract's checks at the host, config saving that keeps comments, node edits through the YAML document,
// an ingest with batched progress, manifests, verify and the manifest-folder fence.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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
import type { IngestProgress } from '../../shared/ipc/contract.ts';
import { until } from '../helpers/until.ts';

const CONFIG = `# App host test config: keep this comment.
data_sources:
  local: { type: "local", path: "./source" } # the source folder

ingestion:
  chunk_size_mb: 0.25
  retry_attempts: 2
  retry_delay_seconds: 0.1

# The nodes of this test.
nodes:
  - { id: node-a, path: ./nodes/node-a } # first
  - { id: node-b, path: ./nodes/node-b }
`;

let dir: string;
let configPath: string;
let host: EngineHost;
let store: AppStore;
const batches: IngestProgress[] = [];


beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'app-host-'));
  configPath = join(dir, 'data_sources.yml');
  await writeFile(configPath, CONFIG);
  await mkdir(join(dir, 'source', 'sub'), { recursive: true });
  await ensureDataFile(join(dir, 'source', 'a.bin'), 700_000, 'a');
  await ensureDataFile(join(dir, 'source', 'sub', 'b.bin'), 300_000, 'b');
  await ensureDataFile(join(dir, 'source', 'c.txt'), 1000, 'c');
  host = createHost({ configPath });
  const api = unwrap(hostWireApi(host));
  store = createAppStore(api);
  bridgeEvents(api, store);
  host.subscribe((event, payload) => {
    if (event === 'ingestProgress') batches.push(payload as IngestProgress);
  });
});

afterAll(async () => {
  await host?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('app host', () => {
  it('refuses unknown channels and malformed payloads before they reach the engine', async () => {
    expect(await host.call('deleteEverything', {})).toEqual({ ok: false, error: { code: 'unknown_channel', message: 'Unknown channel "deleteEverything".' } });
    const bad = await host.call('saveConfig', { text: ['not', 'text'] });
    expect(bad).toEqual({ ok: false, error: { code: 'invalid_request', message: 'Refused: saveConfig.text: expected a string, got array.' } });
    const extra = await host.call('removeNode', { id: 'node-a', force: true });
    expect(extra.ok).toBe(false);
    expect(await readFile(configPath, 'utf8')).toBe(CONFIG);
  });

  it('loads the config and detects the cloud', async () => {
    await store.getState().loadConfig();
    expect(store.getState().config.saved).toBe(CONFIG);
    expect(store.getState().config.draft).toBe(CONFIG);
    await store.getState().detect('local');
    expect(store.getState().detection.view).toMatchObject({ override: 'local', effective: 'local' });
  });

  it('refuses to save a config with errors, and saves a valid one atomically with its comments', async () => {
    const s = store.getState();
    s.setDraft(CONFIG.replace('chunk_size_mb: 0.25', 'chunk_size_mb: -1'));
    expect(await store.getState().saveConfig()).toBe(false);
    expect(store.getState().config.refused[0]).toMatchObject({ line: 6, key: 'ingestion.chunk_size_mb' });
    expect(await readFile(configPath, 'utf8')).toBe(CONFIG);

    const edited = CONFIG.replace('retry_attempts: 2', 'retry_attempts: 3 # edited');
    store.getState().setDraft(edited);
    expect(await store.getState().saveConfig()).toBe(true);
    expect(await readFile(configPath, 'utf8')).toBe(edited);
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(store.getState().config.saved).toBe(edited);
  });

  it('adds, edits and removes nodes through the YAML document, keeping comments', async () => {
    expect(await store.getState().upsertNode({ id: 'node-c', path: './nodes/node-c' })).toBe(true);
    let text = await readFile(configPath, 'utf8');
    expect(text).toContain('# App host test config: keep this comment.');
    expect(text).toContain('# the source folder');
    expect(text).toContain('# first');
    expect(text).toContain('retry_attempts: 3 # edited');
    expect(text).toMatch(/id: node-c/);
    expect(store.getState().config.saved).toBe(text);

    expect(await store.getState().upsertNode({ id: 'node-a', path: './nodes/node-a' })).toBe(false);
    expect(store.getState().nodes.editError).toMatch(/already exists/);

    expect(await store.getState().upsertNode({ id: 'node-c2', path: './nodes/node-c2' }, 'node-c')).toBe(true);
    text = await readFile(configPath, 'utf8');
    expect(text).toMatch(/id: node-c2/);
    expect(text).not.toMatch(/id: node-c\b(?!2)/);

    expect(await store.getState().removeNode('node-c2')).toBe(true);
    text = await readFile(configPath, 'utf8');
    expect(text).not.toContain('node-c2');
    expect(text).toContain('# first');
    expect(await store.getState().removeNode('nope')).toBe(false);
    expect(store.getState().nodes.editError).toMatch(/No node "nope"/);
  });

  it('probes the nodes', async () => {
    await store.getState().probeNodes();
    const statuses = store.getState().nodes.statuses;
    expect(statuses.map((n) => [n.id, n.state])).toEqual([
      ['node-a', 'healthy'],
      ['node-b', 'healthy'],
    ]);
  });

  it('runs an ingest and folds its batched progress into the store', async () => {
    await store.getState().startIngest();
    expect(store.getState().ingest.error).toBeNull();
    await until(() => ['finished', 'failed', 'cancelled'].includes(store.getState().ingest.meta?.phase ?? ''), 'the ingest to end');
    const { meta, chunks } = store.getState().ingest;
    expect(meta?.phase).toBe('finished');
    // 700,000 + 300,000 + 1,000 bytes in 0.25 MiB chunks: 3 + 2 + 1.
    expect(meta?.totals).toEqual({ files: 3, chunks: 6, bytes: 1_001_000 });
    expect(meta?.chunksDone).toBe(6);
    expect(chunks).toHaveLength(6);
    expect(chunks.every((c) => c?.state === 'verified')).toBe(true);
    expect(new Set(chunks.map((c) => c?.nodeId))).toEqual(new Set(['node-a', 'node-b']));
    // Batches are numbered in order and never repeat a chunk within one batch.
    expect(batches.map((b) => b.batch)).toEqual(batches.map((_, i) => i + 1));
    for (const b of batches) expect(new Set(b.chunks.map((c) => c.id)).size).toBe(b.chunks.length);
    expect(meta?.manifestPath).toMatch(/\.json$/);

    // The nodes now report what they hold.
    await store.getState().probeNodes();
    const held = store.getState().nodes.statuses;
    expect(held.reduce((n, s) => n + (s.chunkCount ?? 0), 0)).toBe(6);
    expect(held.reduce((n, s) => n + (s.bytesHeld ?? 0), 0)).toBe(1_001_000);

    // A late subscriber gets the same picture from one full snapshot.
    const late = createAppStore(unwrap(hostWireApi(host)));
    await late.getState().loadIngestSnapshot();
    expect(late.getState().ingest.chunks.map((c) => c?.state)).toEqual(chunks.map((c) => c?.state));
  });

  it('starts one ingest at a time, and cancels', async () => {
    const [first, second] = await Promise.all([host.call('startIngest', {}), host.call('startIngest', {})]);
    expect(first.ok).toBe(true);
    expect(second).toMatchObject({ ok: false, error: { code: 'busy', message: expect.stringContaining('already running') } });
    await store.getState().cancelIngest();
    const runId = first.ok ? (first.value as { runId: string }).runId : '';
    await until(() => store.getState().ingest.meta?.runId === runId && ['finished', 'failed', 'cancelled'].includes(store.getState().ingest.meta?.phase ?? ''), 'the second ingest to end');
  });

  it('lists manifests, opens one, verifies it, and will not read files outside the manifest folder', async () => {
    await store.getState().listManifests();
    const { manifests, manifest } = store.getState().received;
    expect(manifests.length).toBeGreaterThanOrEqual(1);
    const started = manifests.map((m) => m.startedAt);
    expect(started).toEqual([...started].sort().reverse()); // newest first
    expect(manifest?.runId).toBe(manifests[0]?.runId);
    const complete = manifests.find((m) => m.status === 'complete');
    expect(complete).toBeDefined();
    await store.getState().openManifest(complete!.path);
    expect(store.getState().received.manifest?.files.map((f) => f.key).sort()).toEqual(['a.bin', 'c.txt', 'sub/b.bin']);

    await store.getState().verify();
    expect(store.getState().received.verify).toMatchObject({ nodeId: null, checked: 6, ok: 6, problems: [] });
    expect(store.getState().received.task).toMatchObject({ task: 'verify', total: 6, done: 6 });
    await store.getState().verify('node-a');
    const one = store.getState().received.verify!;
    expect(one.nodeId).toBe('node-a');
    expect(one.checked).toBe(one.ok);
    expect(one.checked).toBeLessThan(6);

    const outside = await host.call('openManifest', { path: configPath });
    expect(outside).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const climbing = await host.call('verify', { manifestPath: '../../data_sources.yml' });
    expect(climbing).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });
});
