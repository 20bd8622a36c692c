// The host's page indexes (page-indexes.ts): built once per version of a manifest and shared by concurrent asks,
// kept for the latest two manifests only, built again when the file changes, and a failed build not kept.
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChunkPageIndex } from '../../electron/engine/manifest-pages.ts';
import { PAGE_INDEXES_KEPT, PageIndexCache } from '../../electron/host/page-indexes.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

afterAll(removeTempDirs);

function counting(): { build: (path: string) => Promise<ChunkPageIndex>; built: string[] } {
  const built: string[] = [];
  const build = async (path: string): Promise<ChunkPageIndex> => {
    built.push(path);
    if (path.endsWith('bad.json')) throw new Error('not a manifest');
    return { path, blockLines: 1, blockStarts: Float64Array.of(0), firstLine: 0, chunks: 0, copiesBefore: new Map() };
  };
  return { build, built };
}

describe('page indexes', () => {
  it('builds once per version of a file, keeps the latest two manifests, and builds a changed one again', async () => {
    const dir = await tempDir('ci-page-indexes-');
    const [a, b, c] = ['a.json', 'b.json', 'c.json'].map((name) => join(dir, name)) as [string, string, string];
    for (const path of [a, b, c]) await writeFile(path, '{}\n');
    const { build, built } = counting();
    const cache = new PageIndexCache(PAGE_INDEXES_KEPT, build);
    const [first, second] = await Promise.all([cache.get(a), cache.get(a)]);
    expect(first).toBe(second);
    await cache.get(b);
    await cache.get(a);
    expect(built).toEqual([a, b]);
    await cache.get(c); // b is the least recently used: dropped
    expect(cache.paths()).toEqual([a, c]);
    await cache.get(b);
    expect(built).toEqual([a, b, c, b]);
    await utimes(c, new Date(), new Date(Date.now() + 5_000)); // another version of c
    await cache.get(c);
    expect(built).toEqual([a, b, c, b, c]);
    expect(cache.paths()).toHaveLength(PAGE_INDEXES_KEPT);
  });

  it('does not keep a failed build, and names a manifest it cannot read', async () => {
    const dir = await tempDir('ci-page-indexes-');
    const bad = join(dir, 'bad.json');
    await writeFile(bad, 'x');
    const { build, built } = counting();
    const cache = new PageIndexCache(2, build);
    await expect(cache.get(bad)).rejects.toThrow('not a manifest');
    await expect(cache.get(bad)).rejects.toThrow('not a manifest');
    expect(built).toEqual([bad, bad]);
    expect(cache.paths()).toEqual([]);
    await expect(cache.get(join(dir, 'gone.json'))).rejects.toThrow(/Cannot read manifest .*gone\.json\. Fix:/);
  });
});
