// A local folder source hands each key's file to the hashing thread unresolved (LocalDriver.localPath), with the
// folder's real path it must stay inside: the check is made on the file the thread opened. What may not leave the
// folder (links out, `..`, keys that look absolute) fails there, with the same errors a resolved path gave.
import { symlinkSync, unlinkSync } from 'node:fs';
import { mkdir, readdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import { FileCopyError, HashPool } from '../../electron/engine/hash/pool.ts';
import { Bucket } from '../../electron/engine/storage/bucket.ts';
import { StorageError } from '../../electron/engine/storage/driver.ts';
import { LocalDriver, localEtag } from '../../electron/engine/storage/local.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { tempDir } from '../helpers/temp.ts';
import { detection, md5OfRange, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

const nodeCallsPool = new HashPool(2);
/** Threads that open source files with Linux's openat2 from the first file (linux-calls.js). */
const linuxCallsPool = new HashPool(2, { linuxCallsAfter: 0 });
afterAll(() => Promise.all([nodeCallsPool.close(), linuxCallsPool.close()]));

const NO_RETRIES = { retries: 0, baseDelayMs: 1, maxDelayMs: 1 };

/** Copies `key` as an ingest does from a local folder: the driver's path, opened and checked on a hashing thread. */
async function copyKey(pool: HashPool, bucket: Bucket, key: string, target: string, etag?: string): Promise<Buffer> {
  const file = await bucket.localFile({ key, size: 0 });
  if (!file) throw new Error('the local driver gave no local file');
  const length = (await stat(file.path).catch(() => ({ size: 1 }))).size;
  try {
    await pool.copyFile({ algorithm: 'md5', source: file.path, inside: file.inside, offset: 0, length, target, ...(etag ? { etag } : {}) });
  } catch (error) {
    throw error instanceof FileCopyError && error.side === 'source' ? bucket.copyError(error, key) : error;
  }
  return readFile(target);
}

async function failure(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

describe.each([
  ['Node calls', nodeCallsPool],
  ['Linux calls', linuxCallsPool],
] as const)('local driver: a key as a path inside the folder, checked where the hashing thread opens it (%s)', (_, pool) => {
  it('copies files inside (a link that stays inside too); a link out, `..` out, or an absolute-looking key never reads outside', async () => {
    const dir = await tempDir('ci-local-inside-');
    const folder = join(dir, 'folder');
    const outside = join(dir, 'outside');
    await mkdir(join(folder, 'sub'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(folder, 'sub', 'in.bin'), 'inside');
    await writeFile(join(outside, 'secret.bin'), 'secret');
    await symlink(join(folder, 'sub', 'in.bin'), join(folder, 'alias.bin'));
    await symlink(join(outside, 'secret.bin'), join(folder, 'leak.bin'));
    await symlink(outside, join(folder, 'out'));
    // The source is named through a link: its real path is what files are checked against.
    await symlink(folder, join(dir, 'named'));
    const bucket = new Bucket(new LocalDriver(join(dir, 'named')), NO_RETRIES);
    const real = await realpath(folder);
    expect(await bucket.localFile({ key: 'sub/in.bin', size: 6 })).toEqual({ path: join(real, 'sub', 'in.bin'), inside: real });

    const target = join(dir, 'copy.bin');
    for (const key of ['sub/in.bin', 'alias.bin', 'sub/../sub/in.bin']) expect((await copyKey(pool, bucket, key, target)).toString(), key).toBe('inside');

    for (const key of ['leak.bin', 'out/secret.bin', `../${basename(outside)}/secret.bin`, `sub/../../${basename(outside)}/secret.bin`]) {
      const error = await failure(copyKey(pool, bucket, key, target));
      expect(error.code, key).toBe('permission_denied');
      expect(error.message).toContain(`${key} resolves outside the source folder`);
      expect(error.hint).toMatch(/may not leave the data folder/);
    }
    // A key that looks absolute is a path under the folder, not the path it spells.
    const absolute = await failure(copyKey(pool, bucket, join(outside, 'secret.bin'), target));
    expect(absolute.code).toBe('not_found');
    expect((await readFile(target)).toString()).toBe('inside');
  });

  it('a file gone or changed since it was listed fails as a streamed read of it does (not_found, precondition_failed)', async () => {
    const dir = await tempDir('ci-local-inside-');
    await writeFile(join(dir, 'kept.bin'), 'version 1');
    const bucket = new Bucket(new LocalDriver(dir), NO_RETRIES);
    const target = join(dir, '..', `${basename(dir)}-copy.bin`);

    const gone = await failure(copyKey(pool, bucket, 'gone.bin', target));
    const streamed = await failure(bucket.read({ key: 'gone.bin', size: 1 }, { offset: 0, length: 1 }));
    expect([gone.code, streamed.code]).toEqual(['not_found', 'not_found']);
    expect(gone.message).toContain('gone.bin');

    const etag = localEtag(await stat(join(dir, 'kept.bin')));
    await rm(join(dir, 'kept.bin'));
    await writeFile(join(dir, 'kept.bin'), 'version 2');
    const changed = await failure(copyKey(pool, bucket, 'kept.bin', target, etag));
    expect(changed.code).toBe('precondition_failed');
    expect(changed.message).toContain('kept.bin');
    await rm(target, { force: true });
  });

  it('resolves the folder once, when first asked; a folder missing then is bucket_not_found and is looked for again next time', async () => {
    const dir = await tempDir('ci-local-inside-');
    await mkdir(join(dir, 'first'));
    await mkdir(join(dir, 'second'));
    const bucket = new Bucket(new LocalDriver(join(dir, 'named')), NO_RETRIES);
    const missing = await failure(bucket.localFile({ key: 'a.bin', size: 1 }));
    expect(missing.code).toBe('bucket_not_found');
    expect(missing.message).toContain(join(dir, 'named'));

    await symlink(join(dir, 'first'), join(dir, 'named'));
    const first = await realpath(join(dir, 'first'));
    expect(await bucket.localFile({ key: 'a.bin', size: 1 })).toEqual({ path: join(first, 'a.bin'), inside: first });
    // The folder a run started reading is the one it goes on reading.
    await rm(join(dir, 'named'));
    await symlink(join(dir, 'second'), join(dir, 'named'));
    expect(await bucket.localFile({ key: 'a.bin', size: 1 })).toEqual({ path: join(first, 'a.bin'), inside: first });
  });
});

describe('ingest from a local folder into one folder node (the hashing thread copies each file)', () => {
  it('a file swapped for a link out of the folder after listing is never copied and fails clearly; one that vanished fails as gone; the others complete', async () => {
    const root = await tempProject();
    const data = join(root, 'data');
    const outside = await tempDir('ci-local-outside-');
    await mkdir(data);
    const secret = 'SECRET-OUTSIDE-THE-SOURCE-FOLDER';
    await writeFile(join(outside, 'secret.bin'), secret);
    for (const name of ['a.bin', 'b.bin', 'c.bin', 'd.bin']) await writeFile(join(data, name), `${name} `.repeat(100));
    const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 1, retry_attempts: 2, retry_delay_seconds: 0.01 }\n${nodesYaml([{ id: 'n1', path: './nodes/n1' }])}`;
    const loaded = await writeConfig(root, yaml);
    // Synchronously from the chunk's first event, before the run asks for its file.
    const swapped = new Set<string>();
    const onEvent = (e: IngestEvent): void => {
      if (e.type !== 'chunk' || e.state !== 'reading' || swapped.has(e.file)) return;
      swapped.add(e.file);
      if (e.file === 'b.bin') {
        unlinkSync(join(data, 'b.bin'));
        symlinkSync(join(outside, 'secret.bin'), join(data, 'b.bin'));
      } else if (e.file === 'c.bin') {
        unlinkSync(join(data, 'c.bin'));
      }
    };
    const { manifest } = await runIngest({ loaded, detection: detection('local'), onEvent });

    const byKey = new Map(manifest.files.map((f) => [f.key, f]));
    expect([...byKey.keys()]).toEqual(['a.bin', 'b.bin', 'c.bin', 'd.bin']);
    expect(byKey.get('b.bin')).toMatchObject({ status: 'failed' });
    expect(byKey.get('b.bin')!.error).toContain('b.bin resolves outside the source folder');
    expect(byKey.get('c.bin')).toMatchObject({ status: 'failed' });
    expect(byKey.get('c.bin')!.error).toMatch(/c\.bin.*(ENOENT|no such file)/);
    for (const key of ['a.bin', 'd.bin']) {
      expect(byKey.get(key)).toMatchObject({ status: 'complete' });
      const chunk = manifest.chunks.find((c) => c.file === key)!;
      expect(await md5OfRange(chunk.path, 0, chunk.size)).toBe(await md5OfRange(join(data, key), 0, chunk.size));
    }
    const stored = await readdir(join(root, 'nodes', 'n1'), { recursive: true, withFileTypes: true });
    for (const entry of stored.filter((e) => e.isFile())) expect((await readFile(join(entry.parentPath, entry.name))).toString()).not.toContain(secret);
  });
});
