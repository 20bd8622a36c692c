// Verify and repair through the real host (worker thread, real files, the engine's repair): a damaged copy comes
// back from verify located (file, index, offset, size, expected and found checksums), a repair limited to that
// chunk restores it with live progress events, and verify on the manifest repair wrote passes.
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { createHost } from '../../electron/host/host.ts';
import type { EngineHost } from '../../electron/host/host.ts';
import type { IngestProgress, RepairReport, VerifyResult } from '../../shared/ipc/contract.ts';
import type { Manifest, RepairEvent } from '../../shared/types.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { until } from '../helpers/until.ts';

let dir: string;
let host: EngineHost;
let manifestPath: string;
const repairEvents: RepairEvent[] = [];

function value<T>(envelope: { ok: boolean; value?: unknown; error?: unknown }): T {
  if (!envelope.ok) throw new Error(`call failed: ${JSON.stringify(envelope.error)}`);
  return envelope.value as T;
}

beforeAll(async () => {
  dir = await tempDir('app-repair-');
  const configPath = join(dir, 'data_sources.yml');
  await writeFile(configPath, 'data_sources:\n  local: { type: "local", path: "./source" }\ningestion:\n  chunk_size_mb: 0.0625\nnodes:\n  - { id: node-a, path: ./nodes/node-a }\n  - { id: node-b, path: ./nodes/node-b }\n');
  await mkdir(join(dir, 'source'));
  await ensureDataFile(join(dir, 'source', 'big.bin'), 640 * 1024, 'big');
  host = createHost({ configPath, batchMs: 20 });
  let last: IngestProgress | undefined;
  host.subscribe((event, payload) => {
    if (event === 'ingestProgress') last = payload as IngestProgress;
    if (event === 'repairProgress') repairEvents.push(payload as RepairEvent);
  });
  value(await host.call('startIngest', {}));
  await until(() => last?.phase === 'finished' || last?.phase === 'failed', 'the ingest to end');
  manifestPath = last!.manifestPath!;
});

afterAll(async () => {
  await host?.close();
  await removeTempDirs();
});

describe('verify and repair from the app', () => {
  it('names a damaged copy: file, chunk index, offset, size, expected and found checksums', async () => {
    const manifest = value<Manifest>(await host.call('openManifest', { path: manifestPath }));
    const chunk = manifest.chunks.find((c) => c.index === 7)!;
    const handle = await open(chunk.copies[0]!.location, 'r+');
    await handle.write(Buffer.alloc(8, 0x21), 0, 8, 100);
    await handle.close();

    const result = value<VerifyResult>(await host.call('verify', { manifestPath }));
    expect(result.problems).toHaveLength(1);
    const [problem] = result.problems;
    expect(problem).toMatchObject({
      chunkId: chunk.id,
      nodeId: chunk.copies[0]!.nodeId,
      reason: 'checksum_mismatch',
      file: 'big.bin',
      index: 7,
      offset: 7 * 64 * 1024,
      size: 64 * 1024,
      expected: chunk.checksum,
    });
    expect(problem!.found).toMatch(/^[0-9a-f]{32}$/);
    expect(problem!.found).not.toBe(chunk.checksum);
  });

  it('repairs just that chunk, reporting progress, and verify passes on the manifest it wrote', async () => {
    const verify = value<VerifyResult>(await host.call('verify', { manifestPath }));
    const chunkId = verify.problems[0]!.chunkId;
    const report = value<RepairReport>(await host.call('repair', { manifestPath, chunkIds: [chunkId] }));
    expect(report.checked).toBe(1);
    expect(report.actions).toEqual([expect.objectContaining({ chunkId, outcome: 'restored' })]);
    expect(report.manifestPath).not.toBe(manifestPath);
    expect(repairEvents.some((e) => e.type === 'repair-checked')).toBe(true);
    expect(repairEvents.at(-1)).toMatchObject({ type: 'repair-finished' });
    const after = value<VerifyResult>(await host.call('verify', { manifestPath: report.manifestPath }));
    expect(after.problems).toEqual([]);
    expect(after.checked).toBe(10);
  });

  it('refuses a repair of a file outside the manifest folder, and a second repair while one runs', async () => {
    expect(await host.call('repair', { manifestPath: join(dir, 'data_sources.yml') })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    const [first, second] = await Promise.all([host.call('repair', { manifestPath }), host.call('repair', { manifestPath })]);
    expect([first.ok, second.ok].sort()).toEqual([false, true]);
    expect(first.ok ? second : first).toMatchObject({ ok: false, error: { code: 'busy' } });
  });
});
