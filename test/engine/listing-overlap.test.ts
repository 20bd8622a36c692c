// Delivery starts while the store is still being listed: a run of many files does not wait for the whole listing
// before its first chunk moves, its totals grow as `listed` events until the last one says done, and a listing that
// is cancelled part way ends the run cancelled with the files listed so far.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { detection, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

const NODES = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];
/** More than two pages of the local store's listing (1,000 files a page). */
const FILES = 2_600;

async function project(ingestion = 'chunk_size_mb: 1') {
  const root = await tempProject();
  const data = join(root, 'data');
  for (let folder = 0; folder < FILES / 100; folder++) {
    await mkdir(join(data, `f${String(folder).padStart(2, '0')}`), { recursive: true });
    await Promise.all(Array.from({ length: 100 }, (_, i) => writeFile(join(data, `f${String(folder).padStart(2, '0')}`, `${i}.txt`), `file ${folder}/${i}\n`)));
  }
  const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { ${ingestion} }\n${nodesYaml(NODES)}`;
  return { root, loaded: await writeConfig(root, yaml) };
}

describe('delivery while listing', () => {
  it('moves the first chunks before the listing is done, and the listed totals grow to the manifest totals', async () => {
    const { loaded } = await project();
    const events: IngestEvent[] = [];
    const { manifest } = await runIngest({ loaded, detection: detection('local'), onEvent: (e) => events.push(e) });
    expect(manifest.status).toBe('complete');
    expect(manifest.files).toHaveLength(FILES);

    const started = events.findIndex((e) => e.type === 'run-started');
    expect(started).toBeGreaterThanOrEqual(0);
    expect(events.findIndex((e) => e.type === 'listed' || e.type === 'chunk')).toBeGreaterThan(started);
    const listed = events.filter((e): e is Extract<IngestEvent, { type: 'listed' }> => e.type === 'listed');
    expect(listed.at(-1)).toEqual({ type: 'listed', files: FILES, chunks: manifest.totals.chunks, bytes: manifest.totals.bytes, done: true });
    expect(listed.filter((e) => e.done)).toHaveLength(1);
    for (let i = 1; i < listed.length; i++) expect(listed[i]!.files).toBeGreaterThanOrEqual(listed[i - 1]!.files);

    const listingDone = events.findIndex((e) => e.type === 'listed' && e.done);
    const firstVerified = events.findIndex((e) => e.type === 'chunk' && e.state === 'verified');
    expect(firstVerified, 'a chunk was verified before the listing ended').toBeGreaterThanOrEqual(0);
    expect(firstVerified).toBeLessThan(listingDone);
  });

  it('packed, the last listed totals count every shard, the last one (packed only once the listing ends) too', async () => {
    const { loaded } = await project('chunk_size_mb: 1, pack_below_mb: 1');
    const events: IngestEvent[] = [];
    const { manifest } = await runIngest({ loaded, detection: detection('local'), onEvent: (e) => events.push(e) });
    expect(manifest.status).toBe('complete');
    expect(manifest.totals.chunks).toBeGreaterThanOrEqual(1);
    const last = events.filter((e) => e.type === 'listed').at(-1);
    expect(last).toEqual({ type: 'listed', files: FILES, chunks: manifest.totals.chunks, bytes: manifest.totals.bytes, done: true });
  });

  it('a run cancelled while listing ends cancelled, with a manifest of every file listed so far, none lost or doubled', async () => {
    const { loaded } = await project('chunk_size_mb: 1, max_concurrent_chunks: 2');
    const controller = new AbortController();
    let listedWhenCancelled = 0;
    const onEvent = (e: IngestEvent): void => {
      if (e.type !== 'listed' || controller.signal.aborted) return;
      listedWhenCancelled = e.files;
      controller.abort(new Error('stop'));
    };
    const { manifest } = await runIngest({ loaded, detection: detection('local'), signal: controller.signal, onEvent });
    expect(manifest.status).toBe('cancelled');
    expect(listedWhenCancelled).toBeGreaterThan(0);
    expect(listedWhenCancelled).toBeLessThan(FILES);
    const keys = manifest.files.map((f) => f.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBeGreaterThanOrEqual(listedWhenCancelled);
    expect(keys.length).toBeLessThan(FILES);
  });
});
