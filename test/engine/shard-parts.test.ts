// A shard from local files packed by every hashing thread at once (HashPool.copyShardInParts): the same bytes,
// checksum and member checksums as one thread packing it alone, and a member that fails in any part fails the
// whole copy, naming the member, with nothing renamed or indexed.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool, shardParts } from '../../electron/engine/hash/pool.ts';
import type { IndexLine, LocalShard } from '../../electron/engine/hash/pool.ts';
import { END_OF_ARCHIVE, memberLength } from '../../electron/engine/pack/tar.js';
import { localEtag } from '../../electron/engine/storage/local.ts';

const oneThread = new HashPool(1);
const twoThreads = new HashPool(2);
let dir: string;
let root: string;
const keys: string[] = [];
const sizes: number[] = [];
const etags: string[] = [];

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ci-shard-parts-'));
  root = await realpath(await mkdtemp(join(dir, 'source-')));
  // ~12 MiB in 60 members of uneven sizes; one name too long for ustar (a pax header: a longer member header).
  for (let i = 0; i < 60; i++) {
    const key = i === 7 ? `${'long-name-'.repeat(12)}${i}.bin` : `member-${i}.bin`;
    const data = randomBytes(100_000 + ((i * 7919) % 200_000));
    await writeFile(join(root, key), data);
    keys.push(key);
    sizes.push(data.length);
    etags.push(localEtag(await stat(join(root, key))));
  }
});
afterAll(async () => {
  await Promise.all([oneThread.close(), twoThreads.close()]);
  await rm(dir, { recursive: true, force: true });
});

const shardLength = (): number => keys.reduce((sum, key, i) => sum + memberLength(key, sizes[i]!), END_OF_ARCHIVE);

async function pack(pool: HashPool, name: string, shard: Partial<LocalShard> = {}, options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {}) {
  let digests: string[] = [];
  const index: IndexLine = { path: join(dir, `${name}.index`), head: `{"id":"${name}"` };
  const job = { algorithm: 'md5' as const, source: root, offset: 0, length: shardLength(), target: join(dir, `${name}.part`), renameTo: join(dir, `${name}.tar`), index };
  const copied = await pool.copyFile({ ...job, pack: { root, keys, sizes, etags, onMemberDigests: (d) => (digests = d), ...shard } }, options);
  return { copied, digests };
}

describe('a shard packed by every hashing thread at once', () => {
  it('is the same bytes, checksum and member checksums as one thread packing it alone', async () => {
    let reported = 0;
    const alone = await pack(oneThread, 'alone');
    const together = await pack(twoThreads, 'together', {}, { onBytes: (n) => (reported += n) });
    const bytes = await readFile(join(dir, 'together.tar'));
    expect(bytes.equals(await readFile(join(dir, 'alone.tar')))).toBe(true);
    expect(bytes.length).toBe(shardLength());
    expect(reported).toBe(shardLength());
    expect(together.copied).toMatchObject({ checksum: { algorithm: 'md5', hex: md5(bytes) }, renamed: true, indexed: true });
    expect(alone.copied.checksum.hex).toBe(md5(bytes));
    const sources = await Promise.all(keys.map((key) => readFile(join(root, key))));
    expect(together.digests).toEqual(sources.map(md5));
    expect(alone.digests).toEqual(together.digests);
    const line = JSON.parse((await readFile(join(dir, 'together.index'), 'utf8')).trim()) as { id: string; checksum: { hex: string } };
    expect(line).toMatchObject({ id: 'together', checksum: { algorithm: 'md5', hex: md5(bytes) } });
  });

  it('fails as a whole when a member in a later part changed since the listing, naming it; nothing is renamed or indexed', async () => {
    const changed = [...etags];
    changed[55] = 'another-version';
    const error = await pack(twoThreads, 'changed', { etags: changed }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CHANGED', side: 'source', key: keys[55] });
    await expect(stat(join(dir, 'changed.tar'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(join(dir, 'changed.index'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stops every part when the copy is cancelled', async () => {
    const error = await pack(twoThreads, 'cancelled', {}, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'CANCELLED' });
    await expect(stat(join(dir, 'cancelled.tar'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('shardParts', () => {
  it('splits members into runs of about equal bytes that follow one another to the end of the archive', () => {
    const parts = shardParts(keys, sizes, 3);
    expect(parts).toHaveLength(3);
    let at = 0;
    let from = 0;
    for (const part of parts) {
      expect(part.from).toBe(from);
      expect(part.at).toBe(at);
      const members = keys.slice(part.from, part.to).reduce((sum, key, i) => sum + memberLength(key, sizes[part.from + i]!), 0);
      expect(part.length).toBe(members + (part.last ? END_OF_ARCHIVE : 0));
      expect(Math.abs(part.length - shardLength() / 3)).toBeLessThan(300_000 + 2048);
      at += part.length;
      from = part.to;
    }
    expect(from).toBe(keys.length);
    expect(at).toBe(shardLength());
    expect(parts.map((p) => p.last)).toEqual([false, false, true]);
    expect(shardParts(['only.bin'], [10], 4)).toEqual([{ from: 0, to: 1, at: 0, length: memberLength('only.bin', 10) + END_OF_ARCHIVE, last: true }]);
  });
});
