// Listing page by page: the local driver walks its folder in pages of bounded size, in the order sorting every key
// as a JS string gives, and Bucket.listPages hands each page on (filtered) as it arrives, never the whole listing.
// The same against S3 on moto, where the store pages and orders.
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bucket, matcherFor } from '../../electron/engine/storage/bucket.ts';
import { StorageError } from '../../electron/engine/storage/driver.ts';
import type { ListPage, ObjectInfo, StorageDriver } from '../../electron/engine/storage/driver.ts';
import { LocalDriver } from '../../electron/engine/storage/local.ts';
import { S3Driver } from '../../electron/engine/storage/s3.ts';
import { startMoto } from '../helpers/emulators.ts';
import type { Emulator } from '../helpers/emulators.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { applyEnv, bindDriver } from './stores.ts';

const RETRY = { retries: 1, baseDelayMs: 10 };

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function writeTree(root: string, keys: readonly string[]): Promise<void> {
  for (const key of keys) {
    const path = join(root, ...key.split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `content of ${key}`);
  }
}

/** Every page of a listing straight from the driver. */
async function driverPages(driver: StorageDriver, prefix = ''): Promise<ObjectInfo[][]> {
  const pages: ObjectInfo[][] = [];
  let token: string | undefined;
  do {
    const page: ListPage = await driver.listPage(prefix, token);
    pages.push(page.objects);
    token = page.nextPageToken;
  } while (token && pages.length < 10_000);
  return pages;
}

async function collect(pages: AsyncIterable<ObjectInfo[]>): Promise<ObjectInfo[][]> {
  const out: ObjectInfo[][] = [];
  for await (const page of pages) out.push(page);
  return out;
}

const keysOf = (pages: ObjectInfo[][]): string[] => pages.flat().map((o) => o.key);

/** The driver, with its listPage calls counted (each call goes to the driver itself). */
function counted(driver: StorageDriver): { driver: StorageDriver; calls: () => number } {
  let calls = 0;
  const listPage: StorageDriver['listPage'] = (...args) => {
    calls++;
    return driver.listPage(...args);
  };
  return { calls: () => calls, driver: { ...bindDriver(driver), listPage } };
}

/** How many listPage calls the driver had answered when the first page came out of listPages, and all pages. */
async function firstPageAfter(bucket: Bucket, calls: () => number, options: { pattern: string; prefix?: string }): Promise<{ callsAtFirst: number; pages: ObjectInfo[][] }> {
  let callsAtFirst = -1;
  const pages: ObjectInfo[][] = [];
  for await (const page of bucket.listPages(options)) {
    if (callsAtFirst < 0) callsAtFirst = calls();
    pages.push(page);
  }
  return { callsAtFirst, pages };
}

// Names that sort apart from their folders only if a folder sorts as `name/`: '.' and '-' < '/' < '0' < 'A' <
// '~' < 'é' < '日' < '🚀' (a surrogate pair, below U+E000 in UTF-16) < U+FFFD.
const FILE_NAMES = ['a.txt', 'a-b', 'a0', 'A', 'b', '~', 'ü.txt', '🚀.bin', '\uFFFD', 'with space'];
const DIR_NAMES = ['a', 'é', '日本語'];

function treeKeys(prefix = '', depth = 0): string[] {
  const keys = FILE_NAMES.map((name) => prefix + name);
  if (depth < 3) for (const dir of DIR_NAMES) keys.push(...treeKeys(`${prefix}${dir}/`, depth + 1));
  return keys;
}

describe('local driver: pages of bounded size in string order of the keys', () => {
  let root: string;
  const keys = treeKeys();
  const sorted = [...keys].sort(byString);

  beforeAll(async () => {
    root = join(await tempDir('ci-list-pages-'), 'data');
    await writeTree(root, keys);
    // Folders that hold no file give no key.
    await mkdir(join(root, 'empty', 'emptier'), { recursive: true });
    await mkdir(join(root, 'a', 'a0-empty'));
  });

  afterAll(removeTempDirs);

  it('walks a nested tree with a.txt, a/b, a-b, a0 and unicode names in exactly the sorted key order, 7 at a time', async () => {
    expect(keys.length).toBe(400);
    // The tree's own order is not the sort of its names: this would pass for a walk that sorted names only.
    expect(sorted.indexOf('a.txt')).toBeLessThan(sorted.indexOf('a/a.txt'));
    expect(sorted.indexOf('a/~')).toBeLessThan(sorted.indexOf('a0'));
    const driver = new LocalDriver(root, { pageSize: 7 });
    const pages = await driverPages(driver);
    expect(keysOf(pages)).toEqual(sorted);
    expect(pages.length).toBe(Math.ceil(400 / 7));
    expect(pages.every((page) => page.length <= 7)).toBe(true);
    const first = pages[0]![0]!;
    expect(first).toMatchObject({ key: 'A', size: Buffer.byteLength('content of A') });
    expect(first.etag).toMatch(/^\d+-\d+-\d+$/);
  });

  it('with the default page size a few hundred files are one page', async () => {
    const pages = await driverPages(new LocalDriver(root));
    expect(pages.length).toBe(1);
    expect(keysOf(pages)).toEqual(sorted);
  });

  it('lists under a prefix: a partial name, a folder, a folder deep down, and one that holds nothing', async () => {
    const driver = new LocalDriver(root, { pageSize: 5 });
    for (const prefix of ['a', 'a/', 'é/日本語/a/', 'é/日本語/a/a', '日本語/a0', 'nothing/here/']) {
      expect(keysOf(await driverPages(driver, prefix)), prefix).toEqual(sorted.filter((key) => key.startsWith(prefix)));
    }
  });

  it('Bucket.listPages filters each page with the pattern, in the same order, and list() still gives the sorted whole', async () => {
    const bucket = new Bucket(new LocalDriver(root, { pageSize: 9 }), RETRY);
    for (const [pattern, prefix] of [
      ['**', ''],
      ['*.txt', ''],
      ['é/**', ''],
      ['*.bin', 'a/'],
    ] as const) {
      const matches = matcherFor(pattern);
      const expected = sorted.filter((key) => key.startsWith(prefix) && matches(key.slice(prefix.length)));
      const pages = await collect(bucket.listPages({ pattern, prefix }));
      expect(keysOf(pages), pattern).toEqual(expected);
      expect(pages.every((page) => page.length > 0 && page.length <= 9)).toBe(true);
      expect((await bucket.list({ pattern, prefix })).map((o) => o.key)).toEqual(expected);
    }
  });

  it('yields the first page after one driver page, while most of the listing is still to come', async () => {
    const { driver, calls } = counted(new LocalDriver(root, { pageSize: 10 }));
    const { callsAtFirst, pages } = await firstPageAfter(new Bucket(driver, RETRY), calls, { pattern: '**' });
    expect(callsAtFirst).toBe(1);
    expect(calls()).toBe(40);
    expect(pages.length).toBe(40);
  });

  it('skips pages the pattern leaves empty', async () => {
    const { driver, calls } = counted(new LocalDriver(root, { pageSize: 10 }));
    // 日本語/日本語/ comes near the end of the walk: only 4 keys sort after its 40.
    const { callsAtFirst, pages } = await firstPageAfter(new Bucket(driver, RETRY), calls, { pattern: '日本語/日本語/**' });
    expect(keysOf(pages)).toEqual(sorted.filter((key) => key.startsWith('日本語/日本語/')));
    expect(pages.every((page) => page.length > 0)).toBe(true);
    expect(callsAtFirst).toBeGreaterThan(30);
  });

  it('drops a key listed again right after itself (a store repeating a page boundary)', async () => {
    const local = new LocalDriver(root, { pageSize: 6 });
    let last: ObjectInfo | undefined;
    const repeating: StorageDriver = {
      ...bindDriver(local),
      listPage: async (prefix, token, signal) => {
        const page = await local.listPage(prefix, token, signal);
        const objects = last ? [last, ...page.objects] : page.objects;
        last = page.objects.at(-1);
        return { ...page, objects };
      },
    };
    const pages = await collect(new Bucket(repeating, RETRY).listPages({ pattern: '**' }));
    expect(keysOf(pages)).toEqual(sorted);
  });

  it('a fresh listing starts over; a token is good for its own next page only', async () => {
    const driver = new LocalDriver(root, { pageSize: 50 });
    const one = await driver.listPage('', undefined);
    const two = await driver.listPage('', undefined);
    expect(two.objects).toEqual(one.objects);
    expect(two.nextPageToken).not.toBe(one.nextPageToken);
    // Two listings at once each go on from where they are.
    const oneNext = await driver.listPage('', one.nextPageToken);
    const twoNext = await driver.listPage('', two.nextPageToken);
    expect(twoNext.objects.map((o) => o.key)).toEqual(sorted.slice(50, 100));
    expect(oneNext.objects.map((o) => o.key)).toEqual(sorted.slice(50, 100));
    for (const [prefix, token] of [
      ['', one.nextPageToken], // already used
      ['a/', oneNext.nextPageToken], // another prefix
      ['', 'not-a-token'],
    ] as const) {
      const error = await driver.listPage(prefix, token).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe('invalid_argument');
    }
    await driver.close();
    expect(await driver.listPage('', twoNext.nextPageToken).catch((e: StorageError) => e.code)).toBe('invalid_argument');
  });

  it('a file or folder removed while the listing is under way is left out, and the listing goes on', async () => {
    const dir = join(await tempDir('ci-list-vanish-'), 'data');
    await writeTree(dir, ['d1/f1', 'd1/f2', 'd1/f3', 'd1/f4', 'd1/f5', 'd2/g1', 'd2/g2', 'z.bin']);
    const driver = new LocalDriver(dir, { pageSize: 2 });
    const first = await driver.listPage('', undefined);
    expect(first.objects.map((o) => o.key)).toEqual(['d1/f1', 'd1/f2']);
    // d1 has been read, d2 not yet.
    await rm(join(dir, 'd1', 'f4'));
    await rm(join(dir, 'd2'), { recursive: true });
    const rest: ObjectInfo[][] = [];
    let token = first.nextPageToken;
    while (token) {
      const page = await driver.listPage('', token);
      rest.push(page.objects);
      token = page.nextPageToken;
    }
    expect(keysOf(rest)).toEqual(['d1/f3', 'd1/f5', 'z.bin']);
  });

  it('symlinks: a link to a file inside is listed, loops, dangling links and links out are not, each folder walked once', async () => {
    const base = await tempDir('ci-list-links-');
    const dir = join(base, 'data');
    await writeTree(dir, ['real/one.bin', 'real/sub/two.bin']);
    await writeTree(base, ['outside/secret.bin']);
    await symlink('real/one.bin', join(dir, 'alias.bin'));
    await symlink('.', join(dir, 'self'));
    await symlink('..', join(dir, 'real', 'sub', 'up'));
    await symlink('real', join(dir, 'zz-second-way-in'));
    await symlink('nowhere', join(dir, 'dangling'));
    await symlink('loop-b', join(dir, 'loop-a'));
    await symlink('loop-a', join(dir, 'loop-b'));
    await symlink(join(base, 'outside'), join(dir, 'escape'));
    await symlink(join(base, 'outside', 'secret.bin'), join(dir, 'escape.bin'));
    const pages = await driverPages(new LocalDriver(dir, { pageSize: 1 }));
    expect(keysOf(pages)).toEqual(['alias.bin', 'real/one.bin', 'real/sub/two.bin']);
  });

  it('a missing folder is bucket_not_found', async () => {
    const driver = new LocalDriver(join(root, 'no-such-folder'));
    const error = await new Bucket(driver, RETRY)
      .listPages({ pattern: '**' })
      .next()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe('bucket_not_found');
  });
});

describe('S3 on moto: listPages hands on the store pages as they arrive', () => {
  const BUCKET = 'list-pages-bucket';
  let moto: Emulator;
  // 2,400 objects, 600 in each of 4 folders (.csv in a/ and é/, .bin in a-b/ and 🚀/), names with unicode and a
  // character beyond U+FFFF: S3 orders by UTF-8 bytes, where U+FFFD < 🚀, while JS strings compare 🚀 < U+FFFD.
  const FOLDERS = ['a', 'a-b', 'é', '🚀'];
  const keys = Array.from({ length: 2400 }, (_, i) => {
    const folder = Math.floor(i / 600);
    const name = ['part', 'ü', '\uFFFD', '🚀'][i % 4]!;
    return `set/${FOLDERS[folder]!}/${name}-${String(i).padStart(5, '0')}.${folder % 2 === 0 ? 'csv' : 'bin'}`;
  });
  const storeOrder = [...keys].sort(byUtf8);

  beforeAll(async () => {
    moto = await startMoto();
    applyEnv(moto.env);
    await moto.createBucket(BUCKET);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < keys.length) {
          const key = keys[next++]!;
          await moto.put(BUCKET, key, Buffer.from(key));
        }
      }),
    );
  }, 300_000);

  afterAll(async () => {
    await moto?.stop();
  });

  const driver = (): S3Driver => new S3Driver({ type: 's3', bucket: BUCKET, region: 'us-east-1' }, { pageSize: 100 });

  it('yields more than one page, in the store order, every key once, the first after one store page', async () => {
    expect(storeOrder).not.toEqual([...keys].sort(byString)); // the two orders differ on these keys
    const s3 = driver();
    try {
      const { driver: d, calls } = counted(s3);
      const { callsAtFirst, pages } = await firstPageAfter(new Bucket(d, RETRY), calls, { pattern: '**', prefix: 'set/' });
      expect(callsAtFirst).toBe(1);
      expect(calls()).toBe(24);
      expect(pages.length).toBe(24);
      expect(pages.every((page) => page.length === 100)).toBe(true);
      expect(keysOf(pages)).toEqual(storeOrder);
      expect(pages.flat().every((o) => o.size === Buffer.byteLength(o.key))).toBe(true);
    } finally {
      await s3.close();
    }
  });

  it('applies the pattern to each page and keeps the store order', async () => {
    const s3 = driver();
    try {
      const bucket = new Bucket(s3, RETRY);
      const csv = await collect(bucket.listPages({ pattern: '*.csv', prefix: 'set/' }));
      // Only the folders a/ and é/ hold .csv keys: the 12 pages of a-b/ and 🚀/ are left out, not yielded empty.
      expect(csv.length).toBe(12);
      expect(keysOf(csv)).toEqual(storeOrder.filter((key) => key.endsWith('.csv')));
      const rocket = await collect(bucket.listPages({ pattern: '🚀/🚀-*', prefix: 'set/' }));
      expect(keysOf(rocket)).toEqual(storeOrder.filter((key) => key.startsWith('set/🚀/🚀-')));
      expect(keysOf(rocket).length).toBe(150);
      expect(rocket.length).toBeGreaterThan(1);
      // list() holds them all, sorted as JS strings.
      expect((await bucket.list({ pattern: '**', prefix: 'set/' })).map((o) => o.key)).toEqual([...keys].sort(byString));
    } finally {
      await s3.close();
    }
  });
});
