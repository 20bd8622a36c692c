// The Received screen's manifest through the real host: a run with more files and chunks than the host sends comes
// with its first ones and how many it has (`partial`, with every node's copies); a smaller one comes whole. Verify
// still covers every copy, and the rest of a large run comes a page at a time (manifestChunks, locateChunk, findFiles).
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHost } from '../../electron/host/host.ts';
import type { EngineHost } from '../../electron/host/host.ts';
import type { ApiErrorData, IngestProgress, NodeChunkRow, OpenedManifest, Res, VerifyResult } from '../../shared/ipc/contract.ts';
import { readManifest, writeJsonAtomic } from '../../electron/engine/manifest.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { until } from '../helpers/until.ts';

const FILES = 30;
let dir: string;
let configPath: string;
let manifestPath: string;

function value<T>(envelope: { ok: boolean; value?: unknown; error?: unknown }): T {
  if (!envelope.ok) throw new Error(`call failed: ${JSON.stringify(envelope.error)}`);
  return envelope.value as T;
}

async function withHost<T>(previewEntries: number, use: (host: EngineHost) => Promise<T>): Promise<T> {
  const host = createHost({ configPath, batchMs: 20, previewEntries });
  try {
    return await use(host);
  } finally {
    await host.close();
  }
}

beforeAll(async () => {
  dir = await tempDir('app-open-manifest-');
  configPath = join(dir, 'data_sources.yml');
  await writeFile(configPath, 'data_sources:\n  local: { type: "local", path: "./source" }\nnodes:\n  - { id: node-a, path: ./nodes/node-a }\n  - { id: node-b, path: ./nodes/node-b }\n');
  await mkdir(join(dir, 'source'));
  for (let i = 0; i < FILES; i++) await writeFile(join(dir, 'source', `f${String(i).padStart(2, '0')}.txt`), `file ${i}\n`);
  manifestPath = await withHost(10, async (host) => {
    let last: IngestProgress | undefined;
    host.subscribe((event, payload) => {
      if (event === 'ingestProgress') last = payload as IngestProgress;
    });
    value(await host.call('startIngest', {}));
    await until(() => last?.phase === 'finished' || last?.phase === 'failed', 'the ingest to end');
    expect(last?.phase).toBe('finished');
    return last!.manifestPath!;
  });
});

afterAll(removeTempDirs);

describe('openManifest', () => {
  it('sends the first files and chunks of a run larger than its preview, and how many the run has; verify covers all', async () => {
    await withHost(10, async (host) => {
      const opened = value<OpenedManifest>(await host.call('openManifest', { path: manifestPath }));
      expect(opened.files.map((f) => f.key)).toEqual(Array.from({ length: 10 }, (_, i) => `f${String(i).padStart(2, '0')}.txt`));
      expect(opened.chunks).toHaveLength(10);
      expect(opened.partial).toEqual({ files: FILES, chunks: FILES, perNode: Object.fromEntries([...(await rowsByNode()).entries()].map(([id, rows]) => [id, rows.length])) });
      expect(Object.values(opened.partial!.perNode).reduce((a, b) => a + b, 0)).toBe(FILES);
      expect(opened.totals).toMatchObject({ files: FILES, chunks: FILES });
      expect(opened.nodes.map((n) => n.id)).toEqual(['node-a', 'node-b']);
      const verified = value<VerifyResult>(await host.call('verify', { manifestPath }));
      expect(verified).toMatchObject({ checked: FILES, ok: FILES, problems: [] });
      expect(Object.values(verified.checkedPerNode).reduce((a, b) => a + b, 0)).toBe(FILES);
      const onA = value<VerifyResult>(await host.call('verify', { manifestPath, nodeId: 'node-a' }));
      expect(onA.checked).toBe(verified.checkedPerNode['node-a']);
    });
  });

  it('sends a run within its preview whole, with no partial mark', async () => {
    await withHost(100, async (host) => {
      const opened = value<OpenedManifest>(await host.call('openManifest', { path: manifestPath }));
      expect(opened.files).toHaveLength(FILES);
      expect(opened.chunks).toHaveLength(FILES);
      expect(opened.partial).toBeUndefined();
    });
  });
});

/** Every node's rows as the manifest parsed whole has them. */
async function rowsByNode(path = manifestPath): Promise<Map<string, NodeChunkRow[]>> {
  const out = new Map<string, NodeChunkRow[]>();
  for (const chunk of (await readManifest(path)).chunks) {
    for (const copy of chunk.copies) out.set(copy.nodeId, [...(out.get(copy.nodeId) ?? []), { chunk, location: copy.location }]);
  }
  return out;
}

function refusal(envelope: { ok: boolean; error?: ApiErrorData }): ApiErrorData {
  if (envelope.ok) throw new Error('expected a refusal');
  return envelope.error!;
}

describe('a large run a page at a time', () => {
  it('pages every node’s copies as the manifest parsed whole has them, finds a chunk’s row, and searches the files', async () => {
    await withHost(10, async (host) => {
      const whole = await rowsByNode();
      expect([...whole.keys()].sort()).toEqual(['node-a', 'node-b']);
      for (const [nodeId, rows] of whole) {
        for (const [start, count] of [[0, 7], [5, 100], [rows.length - 1, 10], [rows.length, 10]] as const) {
          const page = value<Res<'manifestChunks'>>(await host.call('manifestChunks', { path: manifestPath, nodeId, start, count }));
          expect(page, `${nodeId} from ${start}`).toEqual({ rows: rows.slice(start, start + count), total: rows.length });
        }
        const last = rows.at(-1)!.chunk.id;
        expect(value(await host.call('locateChunk', { path: manifestPath, nodeId, chunkId: last }))).toEqual({ position: rows.length - 1 });
      }
      expect(value(await host.call('locateChunk', { path: manifestPath, nodeId: 'node-a', chunkId: 'nothing_chunk_0' }))).toEqual({ position: null });
      // A manifest named relative to the manifest folder, as the renderer may.
      expect(value<Res<'manifestChunks'>>(await host.call('manifestChunks', { path: basename(manifestPath), nodeId: 'node-b', start: 0, count: 1 })).rows).toEqual(whole.get('node-b')!.slice(0, 1));
      expect(value(await host.call('findFiles', { path: manifestPath, query: 'F2', limit: 3 }))).toEqual({ keys: ['f20.txt', 'f21.txt', 'f22.txt'], more: true });
      expect(value(await host.call('findFiles', { path: manifestPath, query: 'f29', limit: 3 }))).toEqual({ keys: ['f29.txt'], more: false });
    });
  });

  it('reads the manifest again once it changed on disk', async () => {
    const copy = join(dir, '.cloud-ingest', 'runs', 'changed.json');
    const manifest = await readManifest(manifestPath);
    await writeJsonAtomic(copy, manifest);
    await withHost(10, async (host) => {
      const first = value<Res<'manifestChunks'>>(await host.call('manifestChunks', { path: copy, nodeId: 'node-a', start: 0, count: 100 }));
      expect(first.rows[0]!.chunk.id).toBe(manifest.chunks.find((c) => c.copies.some((k) => k.nodeId === 'node-a'))!.id);
      // Another version under the same name: fewer chunks, in another order (offsets and counts all change).
      await writeJsonAtomic(copy, { ...manifest, chunks: manifest.chunks.slice(0, 20).reverse() });
      const after = value<Res<'manifestChunks'>>(await host.call('manifestChunks', { path: copy, nodeId: 'node-a', start: 0, count: 100 }));
      const expected = (await rowsByNode(copy)).get('node-a')!;
      expect(after).toEqual({ rows: expected, total: expected.length });
      expect(expected.length).toBeLessThan(first.total);
    });
  });

  it('refuses a manifest outside the manifest folder, and malformed pages and searches', async () => {
    await withHost(10, async (host) => {
      for (const [channel, payload] of [
        ['manifestChunks', { path: configPath, nodeId: 'node-a', start: 0, count: 10 }],
        ['manifestChunks', { path: '../../etc/passwd.json', nodeId: 'node-a', start: 0, count: 10 }],
        ['locateChunk', { path: configPath, nodeId: 'node-a', chunkId: 'x' }],
        ['findFiles', { path: join(dir, 'elsewhere.json'), query: '', limit: 10 }],
      ] as const) {
        const error = refusal(await host.call(channel, payload));
        expect(error.code, channel).toBe('forbidden');
        expect(error.message).toMatch(/is not a manifest in .*Fix: pick a run from the list/);
      }
      for (const [channel, payload, message] of [
        ['manifestChunks', { path: manifestPath, nodeId: 'node-a', start: -1, count: 10 }, /manifestChunks\.start: expected a row number, a whole number from 0 to .*, got -1/],
        ['manifestChunks', { path: manifestPath, nodeId: 'node-a', start: 1.5, count: 10 }, /got 1\.5/],
        ['manifestChunks', { path: manifestPath, nodeId: 'node-a', start: 0, count: 1_001 }, /manifestChunks\.count: expected how many rows, a whole number from 1 to 1,000, got 1001/],
        ['manifestChunks', { path: manifestPath, nodeId: 'node-a', start: 0, count: 0 }, /got 0/],
        ['findFiles', { path: manifestPath, query: 'f', limit: 5_000 }, /findFiles\.limit: expected how many keys, a whole number from 1 to 1,000, got 5000/],
      ] as const) {
        const error = refusal(await host.call(channel, payload));
        expect(error.code).toBe('invalid_request');
        expect(error.message).toMatch(message);
      }
    });
  });
});
