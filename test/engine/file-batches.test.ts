// Small whole files from a local folder to folder nodes go to the hashing threads in batches (one job per node for
// many files). A file whose copy fails in a batch fails alone, exactly as it would have on its own: swapped for a
// link out of the folder, gone, or changed since it was listed; a node's own failure is retried the usual way.
import { mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunkFileName, chunkSubfolder } from '../../electron/engine/chunk-names.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { tempDir } from '../helpers/temp.ts';
import { detection, md5OfRange, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

const FILES = 300;
const NODES = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];

async function project(): Promise<{ root: string; data: string }> {
  const root = await tempProject();
  const data = join(root, 'data');
  await mkdir(data);
  await Promise.all(Array.from({ length: FILES }, (_, i) => writeFile(join(data, `f${String(i).padStart(3, '0')}.bin`), `file ${i} `.repeat(50 + i))));
  return { root, data };
}

describe('small files copied in batches', () => {
  it('a file swapped for a link out of the folder, one gone and one changed after listing each fail alone, as on their own; the rest complete', async () => {
    const { root, data } = await project();
    const outside = await tempDir('ci-batch-outside-');
    const secret = 'SECRET-OUTSIDE-THE-SOURCE-FOLDER';
    writeFileSync(join(outside, 'secret.bin'), secret);
    // max_concurrent_chunks 10 (at least the hashing threads), one replica, no packing: the batch lanes run.
    const loaded = await writeConfig(root, `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, retry_attempts: 2, retry_delay_seconds: 0.01 }\n${nodesYaml(NODES)}`);
    // Synchronously as each victim is queued: after the listing saw it, before any lane takes it.
    const victims: Record<string, () => void> = {
      'f100.bin': () => {
        unlinkSync(join(data, 'f100.bin'));
        symlinkSync(join(outside, 'secret.bin'), join(data, 'f100.bin'));
      },
      'f150.bin': () => unlinkSync(join(data, 'f150.bin')),
      'f200.bin': () => writeFileSync(join(data, 'f200.bin'), 'another version, another size'),
    };
    const onEvent = (e: IngestEvent): void => {
      if (e.type !== 'chunk' || e.state !== 'queued') return;
      victims[e.file]?.();
      delete victims[e.file];
    };
    const { manifest } = await runIngest({ loaded, detection: detection('local'), onEvent });

    expect(Object.keys(victims)).toEqual([]);
    const byKey = new Map(manifest.files.map((f) => [f.key, f]));
    expect(byKey.size).toBe(FILES);
    expect(byKey.get('f100.bin')).toMatchObject({ status: 'failed' });
    expect(byKey.get('f100.bin')!.error).toContain('f100.bin resolves outside the source folder');
    expect(byKey.get('f150.bin')).toMatchObject({ status: 'failed' });
    expect(byKey.get('f150.bin')!.error).toMatch(/f150\.bin.*(ENOENT|no such file)/);
    expect(byKey.get('f200.bin')).toMatchObject({ status: 'failed' });
    expect(byKey.get('f200.bin')!.error).toMatch(/f200\.bin.*changed/);
    const complete = manifest.files.filter((f) => f.status === 'complete');
    expect(complete).toHaveLength(FILES - 3);
    for (const chunk of manifest.chunks) expect(await md5OfRange(chunk.path, 0, chunk.size), chunk.id).toBe(await md5OfRange(join(data, chunk.file), 0, chunk.size));
    expect(manifest.chunks.filter((c) => c.node === 'n1').length).toBeGreaterThan(0);
    expect(manifest.chunks.filter((c) => c.node === 'n2').length).toBeGreaterThan(0);
    for (const node of NODES) {
      const stored = await readdir(join(root, node.path), { recursive: true, withFileTypes: true });
      for (const entry of stored.filter((e) => e.isFile())) expect((await readFile(join(entry.parentPath, entry.name))).toString()).not.toContain(secret);
    }
  });

  it("a node's failure under a batch is retried the usual way, and the file is stored once the node takes it", async () => {
    const { root, data } = await project();
    const loaded = await writeConfig(root, `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, retry_attempts: 3, retry_delay_seconds: 0.05 }\n${nodesYaml(NODES)}`);
    // The final name of f042.bin's chunk is taken by a non-empty folder on both nodes, so its rename fails; the
    // folders are cleared when the engine reports the retry.
    const id = 'f042.bin_chunk_0';
    const blockers = NODES.map((n) => join(root, n.path, chunkSubfolder(id), `${chunkFileName(id)}.chunk`));
    for (const blocker of blockers) mkdirSync(join(blocker, 'in-the-way'), { recursive: true });
    const events: IngestEvent[] = [];
    const onEvent = (e: IngestEvent): void => {
      events.push(e);
      if (e.type === 'chunk' && e.id === id && e.state === 'retried') for (const blocker of blockers) rmSync(blocker, { recursive: true, force: true });
    };
    const { manifest } = await runIngest({ loaded, detection: detection('local'), onEvent });

    expect(manifest.status).toBe('complete');
    expect(manifest.files.filter((f) => f.status === 'complete')).toHaveLength(FILES);
    const chunk = manifest.chunks.find((c) => c.id === id)!;
    expect(chunk.attempts).toBeGreaterThanOrEqual(2);
    expect(await md5OfRange(chunk.path, 0, chunk.size)).toBe(await md5OfRange(join(data, 'f042.bin'), 0, chunk.size));
    expect(events.some((e) => e.type === 'chunk' && e.id === id && e.state === 'retried')).toBe(true);
    expect(events.filter((e) => e.type === 'chunk' && e.id === id && e.state === 'verified')).toHaveLength(1);
  });
});
