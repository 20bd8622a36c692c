// The Received screen's manifest through the real host: a run with more files and chunks than the host sends comes
// with its first ones and how many it has (`partial`); a smaller one comes whole. Verify still covers every copy.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHost } from '../../electron/host/host.ts';
import type { EngineHost } from '../../electron/host/host.ts';
import type { IngestProgress, OpenedManifest, VerifyResult } from '../../shared/ipc/contract.ts';
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
      expect(opened.partial).toEqual({ files: FILES, chunks: FILES });
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
