// A local folder listed with its files stat'ed on the hashing threads (HashPool.statFiles, as an ingest run lists
// one): the same driver conformance suite, plus what a page's stat on a thread gives and does when it cannot.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { LocalDriver, localEtag } from '../../electron/engine/storage/local.ts';
import type { ObjectInfo } from '../../electron/engine/storage/driver.ts';
import { defineSourceSuites } from './conformance.ts';
import { statLocalOnThreads } from './stores.ts';

const pool = new HashPool(2);
afterAll(() => pool.close());
statLocalOnThreads(pool);

defineSourceSuites('local');

async function listAll(driver: LocalDriver): Promise<ObjectInfo[]> {
  const all: ObjectInfo[] = [];
  let pageToken: string | undefined;
  do {
    const page = await driver.listPage('', pageToken);
    all.push(...page.objects);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return all;
}

describe('stat on the hashing threads', () => {
  it('gives each file its size and version as a stat here does, follows symlinks to files, and leaves out the rest', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ci-stat-threads-'));
    try {
      await mkdir(join(root, 'd'));
      await writeFile(join(root, 'd', 'a.txt'), 'alpha');
      await writeFile(join(root, 'b.bin'), Buffer.alloc(70_000, 1));
      await symlink(join(root, 'b.bin'), join(root, 'link.bin'));
      await symlink(join(root, 'nowhere'), join(root, 'dangling'));
      const stats = await pool.statFiles([join(root, 'd', 'a.txt'), join(root, 'd'), join(root, 'gone'), join(root, 'link.bin')]);
      const [a, b] = [statSync(join(root, 'd', 'a.txt')), statSync(join(root, 'b.bin'))];
      // The file, the folder, the missing path, the link to a file.
      expect(stats).toEqual([{ size: 5, mtimeMs: a.mtimeMs, ino: a.ino }, undefined, undefined, { size: 70_000, mtimeMs: b.mtimeMs, ino: b.ino }]);

      const listed = await listAll(new LocalDriver(root, { pageSize: 2, statFiles: (paths) => pool.statFiles(paths) }));
      const here = await listAll(new LocalDriver(root, { pageSize: 2 }));
      expect(listed).toEqual(here);
      expect(listed.map((o) => o.key)).toEqual(['b.bin', 'd/a.txt', 'link.bin']);
      expect(listed[0]).toMatchObject({ size: 70_000, etag: localEtag(statSync(join(root, 'b.bin'))) });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('a page whose stat on a thread fails is stat\'ed here instead: the listing is whole', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ci-stat-threads-'));
    try {
      for (let i = 0; i < 5; i++) await writeFile(join(root, `f${i}`), `file ${i}`);
      let calls = 0;
      const failing = (): Promise<never> => (calls++, Promise.reject(new Error('the hashing thread stopped')));
      const listed = await listAll(new LocalDriver(root, { pageSize: 2, statFiles: failing }));
      expect(calls).toBe(3);
      expect(listed.map((o) => [o.key, o.size])).toEqual([0, 1, 2, 3, 4].map((i) => [`f${i}`, `file ${i}`.length]));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
