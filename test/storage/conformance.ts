// The driver conformance suite: the same scenarios against every store (local folder, S3 on s3rver,
// GCS on gcp-storage-emulator, Azure Blob on Azurite), through the driver and the portable Bucket
// wrapper the engine uses. Each store gets its own test file (so two run in parallel) that calls
// defineSourceSuites(kind, ...): the emulator is started and seeded once per file.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Slots } from '../../electron/engine/limit.ts';
import { Bucket } from '../../electron/engine/storage/bucket.ts';
import { StorageError } from '../../electron/engine/storage/driver.ts';
import type { ObjectInfo, StorageDriver } from '../../electron/engine/storage/driver.ts';
import { planSourceChecksum } from '../../electron/engine/storage/source-checksum.ts';
import { isRangedGet, rangeOf } from '../helpers/fault-proxy.ts';
import { MiB, makeRandomFile, md5, md5OfRange, md5OfStream } from './data.ts';
import { startStore } from './stores.ts';
import type { StoreFixture, StoreKind } from './stores.ts';

const RETRY = { retries: 1, baseDelayMs: 10 };

async function listAll(driver: StorageDriver, prefix: string): Promise<{ objects: ObjectInfo[]; pages: number }> {
  const objects: ObjectInfo[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await driver.listPage(prefix, token);
    pages++;
    objects.push(...page.objects);
    token = page.nextPageToken;
  } while (token && pages < 100);
  return { objects, pages };
}

async function codeOf(driver: StorageDriver, p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    const code = driver.errorCode(error);
    // An unclassified error shows itself in the assertion message.
    return code === 'unknown' ? `unknown: ${String(error)}` : code;
  }
  return 'no error';
}

/** Slots that remember how many were held at once, and how many are held now. */
class CountedSlots extends Slots {
  held = 0;
  mostHeld = 0;

  override async acquire(): Promise<() => void> {
    const release = await super.acquire();
    this.mostHeld = Math.max(this.mostHeld, ++this.held);
    let done = false;
    return () => {
      if (!done) this.held--;
      done = true;
      release();
    };
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited > 5000) throw new Error(`timed out waiting until ${what}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

async function runConcurrently<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** What every suite in a store's test file shares: the running store and the objects seeded once. */
export interface SourceContext {
  kind: StoreKind;
  store: StoreFixture;
  dir: string;
  /** Local copy of big/150mib.bin and its MD5. */
  bigFile: string;
  bigMd5: string;
}

export const BIG_KEY = 'big/150mib.bin';
export const EMPTY_KEY = 'empty/zero.bin';
export const UNICODE_KEYS = ['keys/nested/a/b/c/deep.bin', 'keys/données/日本語/ファイル ü.txt', 'keys/with space/plus+and%percent.txt', 'keys/emoji/🚀.bin'];
export const MANY_KEYS = Array.from({ length: 2500 }, (_, i) => `many/part-${String(i).padStart(5, '0')}.${i % 2 === 0 ? 'csv' : 'bin'}`);
export const contentOf = (key: string): Buffer => Buffer.from(`content of ${key}`);

/**
 * One describe per store: starts it and seeds the shared objects once (a 150 MiB object, a 0-byte one,
 * nested and unicode keys, 2,500 small objects), then runs the driver conformance suite and the
 * suites passed in (the engine-level ingest suite) against it.
 */
export function defineSourceSuites(kind: StoreKind, ...more: ((ctx: SourceContext) => void)[]): void {
  describe(`${kind} source`, () => {
    const ctx = { kind } as SourceContext;

    beforeAll(async () => {
      ctx.dir = await mkdtemp(join(tmpdir(), `ci-src-${kind}-`));
      ctx.store = await startStore(kind);
      ctx.bigFile = join(ctx.dir, 'big.bin');
      ctx.bigMd5 = await makeRandomFile(ctx.bigFile, 150 * MiB);
      await ctx.store.put(BIG_KEY, { file: ctx.bigFile });
      await ctx.store.put(EMPTY_KEY, Buffer.alloc(0));
      for (const key of UNICODE_KEYS) await ctx.store.put(key, contentOf(key));
      await runConcurrently(MANY_KEYS, ctx.store.concurrency, (key) => ctx.store.put(key, Buffer.from(key)));
    });

    afterAll(async () => {
      await ctx.store?.stop();
      if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
    });

    defineConformanceSuite(ctx);
    for (const define of more) define(ctx);
  });
}

function defineConformanceSuite(ctx: SourceContext): void {
  const kind = ctx.kind;
  describe('driver conformance', () => {
    let store: StoreFixture;
    let driver: StorageDriver;
    let bucket: Bucket;

    beforeAll(() => {
      store = ctx.store;
      driver = store.driver({ pageSize: 1000 });
      bucket = new Bucket(driver, RETRY);
    });

    afterAll(async () => {
      await driver?.close();
    });

    it('reads a 150 MiB object as two 100 MiB ranged reads, pinned to its version, matching the store checksum', async () => {
      const size = 150 * MiB;
      const expected = ctx.bigMd5;
      const object = await bucket.stat(BIG_KEY);
      expect(object.size).toBe(size);
      expect(object.etag).toBeTruthy();
      const chunk = 100 * MiB;
      const ranges = [
        { offset: 0, length: chunk },
        { offset: chunk, length: size - chunk },
      ];
      const parts = [];
      for (const range of ranges) {
        const read = await driver.read(object.key, range, { ifMatch: object.etag as string });
        expect(read.etag === undefined || read.etag.replace(/"/g, '') === (object.etag as string).replace(/"/g, '')).toBe(true);
        parts.push(await md5OfStream(read.stream));
      }
      expect(parts.map((p) => p.bytes)).toEqual([100 * MiB, 50 * MiB]);
      // Whole-file MD5 from a second pass through the wrapper (exact-length checked), chunk by chunk.
      const whole = createHash('md5');
      for (const range of ranges) {
        for await (const b of await bucket.read(object, range)) whole.update(b as Buffer);
      }
      expect(whole.digest('hex')).toBe(expected);

      const plan = planSourceChecksum(object, driver.info.kind);
      if (store.keepsMd5) {
        expect(object.checksums?.md5Hex).toBe(expected);
        expect(plan?.algorithm).toBe('md5');
        expect(plan?.kind).toBe({ s3: 's3-etag-md5', gcs: 'gcs-md5', azure: 'azure-content-md5', local: 'md5' }[kind]);
        expect(plan?.value).toBe(expected);
      } else {
        expect(plan).toBeUndefined();
      }
    });

    it('reads a range in ordered parts, a few ranged reads at once, each closed when done', async () => {
      const object = await bucket.stat(BIG_KEY);
      // Neither end on a part boundary: 6 parts of 8 MiB and a short one.
      const range = { offset: 3 * MiB + 5, length: 50 * MiB + 7 };
      const slots = new CountedSlots(3);
      const read = await md5OfStream(await bucket.readInParts(object, range, { partSize: 8 * MiB, ahead: 4, slots }));
      expect(read.bytes).toBe(range.length);
      expect(read.md5).toBe(await md5OfRange(ctx.bigFile, range.offset, range.length));
      expect(slots.mostHeld).toBeGreaterThan(1);
      expect(slots.mostHeld).toBeLessThanOrEqual(3);
      await until(() => slots.held === 0, 'every part is closed');
    });

    it('closes every open part when a stream read in parts is dropped early', async () => {
      const object = await bucket.stat(BIG_KEY);
      const slots = new CountedSlots(4);
      const stream = await bucket.readInParts(object, { offset: 0, length: 64 * MiB }, { partSize: 4 * MiB, ahead: 4, slots });
      for await (const _bytes of stream) break; // for-await's break destroys the stream
      await until(() => slots.held === 0, 'every part is closed');
      expect(slots.mostHeld).toBeGreaterThan(1);
    });

    it('lists, stats and reads a 0-byte object', async () => {
      const listed = await bucket.list({ pattern: '**', prefix: 'empty/' });
      expect(listed.map((o) => [o.key, o.size])).toEqual([['empty/zero.bin', 0]]);
      const object = await bucket.stat('empty/zero.bin');
      expect(object.size).toBe(0);
      const read = await md5OfStream(await bucket.read(object, { offset: 0, length: 0 }));
      expect(read).toEqual({ md5: md5(''), bytes: 0 });
      if (store.keepsMd5) expect(object.checksums?.md5Hex).toBe(md5(''));
    });

    it('keeps nested and unicode keys exactly', async () => {
      const keys = UNICODE_KEYS;
      const listed = await bucket.list({ pattern: '**', prefix: 'keys/' });
      expect(listed.map((o) => o.key)).toEqual([...keys].sort());
      for (const object of listed) {
        expect(object.size).toBe(Buffer.byteLength(`content of ${object.key}`));
        const stat = await bucket.stat(object.key);
        expect(stat.size).toBe(object.size);
        const got = await md5OfStream(await bucket.read(stat, { offset: 0, length: stat.size }));
        expect(got.md5).toBe(md5(`content of ${object.key}`));
      }
      const deep = await bucket.list({ pattern: '**/*.bin', prefix: 'keys/' });
      expect(deep.map((o) => o.key)).toEqual(['keys/emoji/🚀.bin', 'keys/nested/a/b/c/deep.bin']);
    });

    it('pages through 2,500 objects and filters them with a glob', async () => {
      const { objects, pages } = await listAll(driver, 'many/');
      expect(new Set(objects.map((o) => o.key)).size).toBe(2500);
      expect(objects.length).toBe(2500);
      if (store.paginates) expect(pages).toBeGreaterThanOrEqual(3);

      const csv = await bucket.list({ pattern: '*.csv', prefix: 'many/' });
      expect(csv.length).toBe(1250);
      expect(csv.every((o) => o.key.endsWith('.csv'))).toBe(true);
      expect(csv[0]?.key).toBe('many/part-00000.csv');
      const all = await bucket.list({ pattern: '**', prefix: 'many/' });
      expect(all.length).toBe(2500);
    });

    it('reports a missing bucket as bucket_not_found, naming the bucket', async () => {
      const missing = store.driver({ bucket: 'no-such-bucket-here' });
      try {
        expect(await codeOf(missing, missing.listPage('', undefined))).toBe('bucket_not_found');
        const error = await new Bucket(missing, RETRY).list({ pattern: '**' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(StorageError);
        expect((error as StorageError).code).toBe('bucket_not_found');
        expect((error as StorageError).message).toContain('no-such-bucket-here');
        expect((error as StorageError).hint.length).toBeGreaterThan(10);
      } finally {
        await missing.close();
      }
    });

    it('detects an object overwritten between two ranged reads and never mixes versions', async () => {
      const first = Buffer.alloc(2 * MiB, 1);
      const second = Buffer.alloc(2 * MiB, 2);
      await store.put('changing/object.bin', first);
      const object = await bucket.stat('changing/object.bin');
      const half = { offset: 0, length: MiB };
      const rest = { offset: MiB, length: MiB };
      const a = await md5OfStream(await bucket.read(object, half));
      expect(a.md5).toBe(md5(first.subarray(0, MiB)));
      // Stores with coarse timestamps need a tick for the new version to differ.
      await new Promise((res) => setTimeout(res, 20));
      await store.put('changing/object.bin', second);

      expect(await codeOf(driver, driver.read(object.key, rest, { ifMatch: object.etag as string }).then((r) => md5OfStream(r.stream)))).toBe('precondition_failed');
      const error = await bucket
        .read(object, rest)
        .then((s) => md5OfStream(s))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe('precondition_failed');
      expect((error as StorageError).message).toContain('changing/object.bin');
      // Read in parts, the same: the first part already sees the new version (at its answer, or at the end of its
      // body where the store sends no version with it). It fails once no part is left open (a request left
      // running would still hold a socket and a slot).
      const slots = new CountedSlots(2);
      const parted = await bucket
        .readInParts(object, { offset: 0, length: 2 * MiB }, { partSize: MiB / 2, ahead: 2, slots })
        .then((stream) => md5OfStream(stream))
        .catch((e: unknown) => e);
      expect(parted).toBeInstanceOf(StorageError);
      expect((parted as StorageError).code).toBe('precondition_failed');
      expect(slots.mostHeld).toBeGreaterThanOrEqual(1);
      expect(slots.held).toBe(0);
    });

    if (kind !== 'local') {
      it('reports a refused connection as unreachable', async () => {
        const unreachable = store.unreachableDriver!();
        try {
          expect(await codeOf(unreachable, unreachable.listPage('', undefined))).toBe('unreachable');
          expect(await codeOf(unreachable, unreachable.read('x', { offset: 0, length: 1 }, {}))).toBe('unreachable');
        } finally {
          await unreachable.close();
        }
      });

      it('a part cut midway, or refused, is asked for again from its first byte not yet given, and the bytes come out whole', async () => {
        const { proxy, driver: viaProxy } = await store.withFaultProxy!({ kinds: ['truncate', '503'], first: 2, match: isRangedGet });
        const d = viaProxy();
        try {
          const data = Buffer.from(Array.from({ length: 3 * MiB }, (_, i) => (i * 7) % 251));
          await store.put('parted-faults/parts.bin', data);
          const object = await d.stat('parted-faults/parts.bin');
          const retried: StorageError[] = [];
          const slots = new CountedSlots(2);
          const stream = await new Bucket(d, RETRY).readInParts(object, { offset: 0, length: data.length }, { partSize: MiB, ahead: 2, slots, onRetry: (e) => retried.push(e) });
          expect((await md5OfStream(stream)).md5).toBe(md5(data));
          // One retry per fault.
          expect(retried.length).toBe(2);
          expect(retried.every((e) => e.code === 'transient')).toBe(true);
          expect(proxy.faults.map((f) => f.kind)).toEqual(['truncate', '503']);
          // The cut part was asked for again from where its bytes stopped, not from its start (a part boundary);
          // each fault costs exactly one more request.
          const starts = proxy.ranges.map((r) => Number(/bytes=(\d+)-/.exec(r)?.[1]));
          expect(starts.some((start) => start % MiB !== 0)).toBe(true);
          expect(new Set(starts.filter((start) => start % MiB === 0))).toEqual(new Set([0, MiB, 2 * MiB]));
          expect(starts.length).toBe(3 + proxy.faults.length);
          await until(() => slots.held === 0, 'every part is closed');
        } finally {
          await d.close();
          await proxy.close();
        }
      });

      it('a read cut midway breaks only itself: the other reads in flight from the same client come out whole', async () => {
        // The cut read is held at the proxy until the others have arrived, and nothing is consumed until it has
        // been cut, so the others are mid-body (held back by their sockets) when it breaks.
        const partSize = 16 * MiB;
        // A 251-byte pattern repeated: no two parts hold the same bytes.
        const data = Buffer.alloc(3 * partSize, Buffer.from(Array.from({ length: 251 }, (_, i) => (i * 13) % 251)));
        await store.put('siblings/object.bin', data);
        let arrived = 0;
        let othersArrived: () => void = () => undefined;
        const allArrived = new Promise<void>((res) => (othersArrived = res));
        const startsAtZero = (req: Parameters<typeof isRangedGet>[0]): boolean => isRangedGet(req) && /^bytes=0-/.test(rangeOf(req) ?? '');
        const { proxy, driver: viaProxy } = await store.withFaultProxy!({
          kinds: ['truncate'],
          first: 1,
          match: startsAtZero,
          before: async (req) => {
            if (!isRangedGet(req)) return;
            if (startsAtZero(req)) return allArrived;
            if (++arrived === 2) othersArrived();
          },
        });
        const d = viaProxy();
        try {
          const object = await d.stat('siblings/object.bin');
          const ranges = [0, 1, 2].map((i) => ({ offset: i * partSize, length: partSize }));
          const reads = ranges.map((range) => d.read(object.key, range, { ifMatch: object.etag as string }));
          const [cut, ...others] = await Promise.all(reads);
          expect(await codeOf(d, md5OfStream(cut!.stream))).toBe('transient');
          expect(proxy.faults.map((f) => f.kind)).toEqual(['truncate']);
          for (const [i, other] of others.entries()) {
            const range = ranges[i + 1]!;
            expect((await md5OfStream(other.stream)).md5).toBe(md5(data.subarray(range.offset, range.offset + range.length)));
          }
        } finally {
          await d.close();
          await proxy.close();
        }
      });

      it('classifies 503s, dropped connections and cut bodies as transient, and the wrapper retries listings', async () => {
        const { proxy, driver: viaProxy } = await store.withFaultProxy!({ kinds: ['503'], first: 1, match: isRangedGet });
        const d = viaProxy();
        try {
          await store.put('faults/object.bin', Buffer.alloc(MiB, 7));
          const object = await d.stat('faults/object.bin');
          const range = { offset: 0, length: MiB };
          for (const kinds of [['503'], ['reset']] as const) {
            proxy.setPlan({ kinds: [...kinds], first: 1, match: isRangedGet });
            expect(await codeOf(d, d.read(object.key, range, { ifMatch: object.etag as string }))).toBe('transient');
            const again = await d.read(object.key, range, { ifMatch: object.etag as string });
            expect((await md5OfStream(again.stream)).md5).toBe(md5(Buffer.alloc(MiB, 7)));
          }
          // Body cut halfway: the read starts, then its stream fails with a transient error.
          proxy.setPlan({ kinds: ['truncate'], first: 1, match: isRangedGet });
          const cut = await d.read(object.key, range, { ifMatch: object.etag as string });
          expect(await codeOf(d, md5OfStream(cut.stream))).toBe('transient');
          // The same through the wrapper: a StorageError with code transient, never a short success.
          proxy.setPlan({ kinds: ['truncate'], first: 1, match: isRangedGet });
          const wrapped = new Bucket(d, RETRY);
          const error = await wrapped
            .read(object, range)
            .then((s) => md5OfStream(s))
            .catch((e: unknown) => e);
          expect(error).toBeInstanceOf(StorageError);
          expect((error as StorageError).code).toBe('transient');
          // Listings: one 503, retried by the wrapper's retry layer, then complete.
          proxy.setPlan({ kinds: ['503'], first: 1, match: (req) => req.method === 'GET' && rangeOf(req) === undefined });
          const before = proxy.faults.length;
          const listed = await wrapped.list({ pattern: '**', prefix: 'faults/' });
          expect(listed.map((o) => o.key)).toEqual(['faults/object.bin']);
          expect(proxy.faults.length).toBe(before + 1);
          expect(proxy.faults.map((f) => f.kind)).toEqual(['503', 'reset', 'truncate', 'truncate', '503']);
        } finally {
          await d.close();
          await proxy.close();
        }
      });
    }

    if (checksCredentials(kind)) {
      it('reports rejected credentials as unauthenticated, naming the store and bucket', async () => {
        const bad = store.badCredentialsDriver!();
        try {
          const error = await new Bucket(bad, { retries: 0, baseDelayMs: 1 }).list({ pattern: '**' }).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(StorageError);
          expect((error as StorageError).code).toBe('unauthenticated');
          expect((error as StorageError).message).toContain(store.bucket);
          expect((error as StorageError).hint).toMatch(/credentials/);
        } finally {
          await bad.close();
        }
      });
    }
  });
}

/** s3rver checks the access key id, Azurite the shared-key signature; gcp-storage-emulator checks nothing, so for GCS the missing-ADC path is tested. */
function checksCredentials(kind: StoreKind): boolean {
  return kind === 's3' || kind === 'azure' || kind === 'gcs';
}
