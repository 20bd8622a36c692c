// A local folder's files are read once per run: as rclone does, the hashing threads tell the kernel to drop each
// file's cached pages once read (posix_fadvise DONTNEED), so a run over more data than the page cache holds does
// not push everything else out of it. Residency is read with util-linux's fincore, as a user would check it.
import { execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import { dropCacheImplementation } from '../../electron/engine/hash/drop-cache.js';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { LocalDriver } from '../../electron/engine/storage/local.ts';
import { detection, MIB, nodesYaml, tempProject, writeConfig } from './fixtures.ts';
import { tempDir } from '../helpers/temp.ts';

/** Threads that drop what they read from the first byte, as a big run's do once past their share of memory. */
const dropping = new HashPool(2, { keepCachedBytes: 0 });
const keeping = new HashPool(2);
afterAll(() => Promise.all([dropping.close(), keeping.close()]));

const NODES = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];

/** Bytes of each file held in the page cache. */
function residentBytes(paths: string[]): number[] {
  let out: string;
  try {
    out = execFileSync('fincore', ['--noheadings', '--bytes', '--output', 'RES', ...paths], { encoding: 'utf8' });
  } catch (error) {
    throw new Error(`fincore failed (${(error as Error).message}); it comes with Debian's util-linux-extra: apt-get install util-linux-extra (.ci/install-emulators.sh does)`, { cause: error });
  }
  return out.trim().split('\n').map(Number);
}

/** Written and flushed (dirty pages cannot be dropped), then read, so every page is cached and clean. */
async function cachedFile(path: string, size: number, seed: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  const bytes = Buffer.alloc(size, seed);
  for (let at = 0; at < size; ) at += writeSync(fd, bytes, at);
  fsyncSync(fd);
  closeSync(fd);
  readFileSync(path);
}

async function project(ingestion: string) {
  const root = await tempProject();
  const data = join(root, 'data');
  const small = Array.from({ length: 12 }, (_, i) => join(data, 'train', `${String(i).padStart(3, '0')}.jpg`));
  for (const [i, path] of small.entries()) await cachedFile(path, 3000 + i * 1111, i);
  const big = join(data, 'big.bin');
  // One write: the kernel caches it in large folios, which a chunk boundary must not split (2 MiB chunks).
  await cachedFile(big, 5.5 * MIB + 123, 99);
  const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { ${ingestion}, retry_attempts: 1, retry_delay_seconds: 0.05 }\n${nodesYaml(NODES)}`;
  return { files: [...small, big], loaded: await writeConfig(root, yaml) };
}

describe('a local source folder is read once: a big run does not keep its pages in the page cache', () => {
  it('drops the pages of every file it copied, chunked or packed, once past what it keeps; the copies are complete', async () => {
    expect(dropCacheImplementation()).toBe('fadvise');
    for (const ingestion of ['chunk_size_mb: 2', 'chunk_size_mb: 2, pack_below_mb: 0.5']) {
      const { files, loaded } = await project(ingestion);
      const before = residentBytes(files);
      expect(before.every((bytes) => bytes > 0), `cached before the run: ${before.join(' ')}`).toBe(true);

      const { manifest } = await runIngest({ loaded, detection: detection('local'), hashPool: dropping });
      expect(manifest.status, ingestion).toBe('complete');
      expect(residentBytes(files), ingestion).toEqual(files.map(() => 0));
    }
  });

  it('a run smaller than its share of memory (an eighth, by default) leaves what it read cached', async () => {
    const { files, loaded } = await project('chunk_size_mb: 2, pack_below_mb: 0.5');
    const before = residentBytes(files);
    const { manifest } = await runIngest({ loaded, detection: detection('local'), hashPool: keeping });
    expect(manifest.status).toBe('complete');
    expect(residentBytes(files)).toEqual(before);
  });

  it('ranges streamed from the folder (to node agents, or any other reader) are dropped as they end, past the reader\'s share', async () => {
    const dir = await tempDir('ci-drop-cache-');
    const size = 4 * MIB + 4321;
    await cachedFile(join(dir, 'big.bin'), size, 7);
    const read = async (driver: LocalDriver, offset: number, length: number): Promise<number> => {
      let bytes = 0;
      for await (const part of (await driver.read('big.bin', { offset, length }, {})).stream) bytes += (part as Buffer).length;
      return bytes;
    };
    // The default share (an eighth of memory) keeps a small read cached.
    expect(await read(new LocalDriver(dir), 0, size)).toBe(size);
    expect(residentBytes([join(dir, 'big.bin')])[0]).toBeGreaterThan(0);

    const dropping = new LocalDriver(dir, { keepCachedBytes: 0 });
    expect(await read(dropping, 0, 2 * MIB)).toBe(2 * MIB);
    // Only what was read: the rest of the file (in whole pages) is still cached.
    const rest = residentBytes([join(dir, 'big.bin')])[0]!;
    expect(rest).toBeGreaterThanOrEqual(size - 2 * MIB);
    expect(rest).toBeLessThan(size - 2 * MIB + 64 * 1024);
    expect(await read(dropping, 2 * MIB, size - 2 * MIB)).toBe(size - 2 * MIB);
    expect(residentBytes([join(dir, 'big.bin')])).toEqual([0]);
  });
});
