// The pull worker against a real nats-server (-js, file storage) and a local source: it stores what it is given,
// answers a redelivered item without writing the chunk again, retries what may pass, and gives up (term, with a
// recorded reason) on what will not. Results are read back from the result stream as the coordinator reads them.
import { readFile, stat, utimes } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkStore } from '../../electron/engine/agent/store.ts';
import { silentLogger } from '../../electron/engine/agent/log.ts';
import { SinkError, storeSink } from '../../electron/engine/cluster/sink.ts';
import { createChunkHash } from '../../electron/engine/hash/chunk-hash.ts';
import type { ChunkSink } from '../../electron/engine/cluster/sink.ts';
import { startWorker } from '../../electron/engine/cluster/worker.ts';
import type { RunningWorker } from '../../electron/engine/cluster/worker.ts';
import type { StoredResult, WorkResult } from '../../shared/cluster/contract.ts';
import { startNatsServer, stopNatsServers } from '../helpers/nats.ts';
import type { NatsServer } from '../helpers/nats.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { ManualCoordinator, MiB, itemsFor, localSource, md5Range } from './harness.ts';

let nats: NatsServer;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await stopNatsServers();
  await removeTempDirs();
});

async function openStore(): Promise<ChunkStore> {
  const store = new ChunkStore(await tempDir('ci-worker-store-'), {}, silentLogger);
  await store.open();
  cleanups.push(() => store.close());
  return store;
}

async function worker(nodeId: string, sink: ChunkSink, concurrency = 2): Promise<RunningWorker> {
  const w = await startWorker({ natsUrl: nats.url, nodeId, sink, concurrency, heartbeatMs: 200 });
  cleanups.push(() => w.close());
  return w;
}

/** A sink that wraps another and counts the writes that reach the store. */
function counting(inner: ChunkSink, hooks: { beforeWrite?: (id: string, n: number) => void; afterWrite?: (id: string, n: number) => void } = {}): ChunkSink & { writes: Map<string, number> } {
  const writes = new Map<string, number>();
  return {
    writes,
    find: (id) => inner.find(id),
    async write(meta, data, algorithm, crc, signal) {
      const n = (writes.get(meta.id) ?? 0) + 1;
      writes.set(meta.id, n);
      hooks.beforeWrite?.(meta.id, n);
      const out = await inner.write(meta, data, algorithm, crc, signal);
      hooks.afterWrite?.(meta.id, n);
      return out;
    },
    space: () => inner.space(),
    close: () => inner.close(),
  };
}

const stored = (results: WorkResult[]): StoredResult[] => results.filter((r): r is StoredResult => r.status !== 'failed');

describe('pull worker', () => {
  it('stores every item it is given, with the checksum of exactly its byte range, and records each result', async () => {
    const source = await localSource([{ key: 'a/one.bin', bytes: 5 * MiB + 77 }, { key: 'two.bin', bytes: 1000 }, { key: 'empty.bin', bytes: 0 }]);
    const store = await openStore();
    const sink = counting(storeSink(store));
    await worker('w1', sink);
    const coordinator = await ManualCoordinator.open(nats.url, ['w1'], { ack_wait_seconds: 5, max_deliver: 3 });
    cleanups.push(() => coordinator.close());
    const items = itemsFor('run-store', source.dir, source.files, 2 * MiB, 'w1').map((i) => (i.index === 1 ? { ...i, crc: 'crc32c' as const } : i));
    expect(items).toHaveLength(4);
    for (const item of items) await coordinator.publish(item);
    const results = await coordinator.results('run-store', (r) => r.length >= items.length);
    expect(results.map((r) => r.status)).toEqual(items.map(() => 'stored'));
    for (const item of items) {
      const r = stored(results).find((x) => x.chunkId === item.chunkId)!;
      const file = source.files.find((f) => f.key === item.key)!;
      expect(r.checksum.hex).toBe(await md5Range(file.path, item.offset, item.size));
      expect(r.size).toBe(item.size);
      expect(r.bytesRead).toBe(item.size);
      expect(r.location).toBe(`/v1/chunks/${encodeURIComponent(item.chunkId)}`);
      expect(r.crc !== undefined).toBe(item.crc !== undefined);
      expect(store.get(item.chunkId)).toMatchObject({ size: item.size, offset: item.offset, sourceEtag: item.etag, checksum: r.checksum });
      expect((await stat(store.dataPath(item.chunkId))).size).toBe(item.size);
    }
    expect([...sink.writes.values()].every((n) => n === 1)).toBe(true);
  });

  it('takes the checksum algorithm from the item: sha256 and crc32c as well as md5', async () => {
    const source = await localSource([{ key: 'algos.bin', bytes: 3000 }]);
    const store = await openStore();
    await worker('w-algos', storeSink(store));
    const coordinator = await ManualCoordinator.open(nats.url, ['w-algos'], { ack_wait_seconds: 5, max_deliver: 3 });
    cleanups.push(() => coordinator.close());
    const [base] = itemsFor('run-algos', source.dir, source.files, 1000, 'w-algos');
    const items = (['sha256', 'crc32c'] as const).map((checksum, i) => ({ ...base!, chunkId: `algos-${checksum}`, index: i, offset: i * 1000, checksum }));
    for (const item of items) await coordinator.publish(item);
    const results = stored(await coordinator.results('run-algos', (r) => r.length >= 2));
    const bytes = await readFile(source.files[0]!.path);
    for (const item of items) {
      const expected = createChunkHash(item.checksum).update(bytes.subarray(item.offset, item.offset + item.size)).digest('hex');
      expect(results.find((r) => r.chunkId === item.chunkId)?.checksum).toEqual({ algorithm: item.checksum, hex: expected });
    }
  });

  it('a redelivered item finds its chunk stored and is answered without a second write', async () => {
    const source = await localSource([{ key: 'redeliver.bin', bytes: 3 * MiB }]);
    const store = await openStore();
    // The first write of chunk 1 reaches the store and then "fails" before the worker could ack: JetStream hands
    // the item out again (delivery 2), as it does when a worker dies between keeping a chunk and acking it.
    const sink = counting(storeSink(store), {
      afterWrite: (id, n) => {
        if (id.endsWith('_chunk_1') && n === 1) throw new SinkError('io', 'lost after the write (test)');
      },
    });
    await worker('w-redeliver', sink);
    const coordinator = await ManualCoordinator.open(nats.url, ['w-redeliver'], { ack_wait_seconds: 5, max_deliver: 4 });
    cleanups.push(() => coordinator.close());
    const items = itemsFor('run-redeliver', source.dir, source.files, MiB, 'w-redeliver');
    for (const item of items) await coordinator.publish(item);
    const results = await coordinator.results('run-redeliver', (r) => r.length >= items.length);
    const second = results.find((r) => r.chunkId === 'redeliver.bin_chunk_1') as StoredResult;
    expect(second).toMatchObject({ status: 'exists', delivery: 2, bytesRead: 0 });
    expect(second.checksum.hex).toBe(await md5Range(source.files[0]!.path, MiB, MiB));
    expect(sink.writes.get('redeliver.bin_chunk_1')).toBe(1);
    // The same item published again (a re-publish after the dedup window, another run) is not written again either.
    const inode = (await stat(store.dataPath('redeliver.bin_chunk_0'))).ino;
    await coordinator.publish({ ...items[0]!, runId: 'run-redeliver-2' });
    const again = await coordinator.results('run-redeliver-2', (r) => r.length >= 1);
    expect(again[0]).toMatchObject({ status: 'exists', bytesRead: 0 });
    expect((await stat(store.dataPath('redeliver.bin_chunk_0'))).ino).toBe(inode);
    expect(sink.writes.get('redeliver.bin_chunk_0')).toBe(1);
  });

  it('a transient failure comes again (nak) and succeeds; one that lasts past max_deliver is given up with its reason', async () => {
    const source = await localSource([{ key: 'flaky.bin', bytes: 2 * MiB }]);
    const store = await openStore();
    const sink = counting(storeSink(store), {
      beforeWrite: (id, n) => {
        if (id.endsWith('_chunk_0') && n <= 2) throw new SinkError('io', `disk hiccup ${n} (test)`);
        if (id.endsWith('_chunk_1')) throw new SinkError('io', `disk broken (test)`);
      },
    });
    await worker('w-flaky', sink);
    const coordinator = await ManualCoordinator.open(nats.url, ['w-flaky'], { ack_wait_seconds: 5, max_deliver: 3 });
    cleanups.push(() => coordinator.close());
    const items = itemsFor('run-flaky', source.dir, source.files, MiB, 'w-flaky');
    for (const item of items) await coordinator.publish(item);
    const results = await coordinator.results('run-flaky', (r) => r.length >= 2, 60_000);
    expect(results.find((r) => r.chunkId === 'flaky.bin_chunk_0')).toMatchObject({ status: 'stored', delivery: 3 });
    expect(results.find((r) => r.chunkId === 'flaky.bin_chunk_1')).toMatchObject({ status: 'failed', code: 'deliveries_exhausted', delivery: 3 });
    expect((results.find((r) => r.chunkId === 'flaky.bin_chunk_1') as { reason: string }).reason).toContain('disk broken (test)');
  });

  it('a worker that started before the coordinator shortened the ack wait keeps a long item to itself (working at the new pace): one delivery', async () => {
    const source = await localSource([{ key: 'long.bin', bytes: MiB }]);
    const store = await openStore();
    // The sink takes 5 s before it keeps the bytes: more than twice the 2 s ack wait the coordinator sets below.
    const slow = counting(storeSink(store));
    const sink: ChunkSink = { ...slow, write: async (...args) => (await new Promise((r) => setTimeout(r, 5000)), slow.write(...args)) };
    // The worker starts first and creates its consumer with the default ack wait (30 s)...
    await worker('w-ackwait', sink);
    // ...then a coordinator opens with ack_wait_seconds: 2 and announces it.
    const coordinator = await ManualCoordinator.open(nats.url, ['w-ackwait'], { ack_wait_seconds: 2, max_deliver: 5 });
    cleanups.push(() => coordinator.close());
    const [item] = itemsFor('run-ackwait', source.dir, source.files, MiB, 'w-ackwait');
    await coordinator.publish(item!);
    const results = await coordinator.results('run-ackwait', (r) => r.length >= 2, 9_000);
    expect(results.map((r) => [r.status, r.delivery])).toEqual([['stored', 1]]);
    expect(slow.writes.get(item!.chunkId)).toBe(1);
  }, 60_000);

  it('a source that changed since it was listed is given up at once (term) with precondition_failed', async () => {
    const source = await localSource([{ key: 'moving.bin', bytes: MiB }]);
    const store = await openStore();
    await worker('w-moving', storeSink(store));
    const coordinator = await ManualCoordinator.open(nats.url, ['w-moving'], { ack_wait_seconds: 5, max_deliver: 5 });
    cleanups.push(() => coordinator.close());
    const [item] = itemsFor('run-moving', source.dir, source.files, MiB, 'w-moving');
    await utimes(source.files[0]!.path, new Date(), new Date(Date.now() + 60_000));
    await coordinator.publish(item!);
    const [result] = await coordinator.results('run-moving', (r) => r.length >= 1);
    expect(result).toMatchObject({ status: 'failed', code: 'precondition_failed', delivery: 1 });
    expect((result as { reason: string }).reason).toContain('moving.bin');
    expect(store.get(item!.chunkId)).toBeUndefined();
  });

  it('a malformed or misrouted item fails only itself: the worker goes on with the next', async () => {
    const source = await localSource([{ key: 'after.bin', bytes: 4096 }]);
    const store = await openStore();
    const w = await worker('w-bad', storeSink(store));
    const coordinator = await ManualCoordinator.open(nats.url, ['w-bad'], { ack_wait_seconds: 5, max_deliver: 5 });
    cleanups.push(() => coordinator.close());
    await coordinator.publishRaw('run-bad', 'w-bad', '{"v":1,"this is":"not a work item"}');
    await coordinator.publishRaw('run-bad', 'w-bad', '\u0000\u00ff not json');
    const [good] = itemsFor('run-bad', source.dir, source.files, MiB, 'w-bad');
    await coordinator.publishRaw('run-bad', 'w-bad', JSON.stringify({ ...good!, chunkId: 'misrouted', nodeId: 'someone-else', targets: ['someone-else'] }));
    await coordinator.publish(good!);
    const results = await coordinator.results('run-bad', (r) => r.length >= 2);
    expect(results.find((r) => r.status === 'failed')).toMatchObject({ code: 'misrouted' });
    expect(results.find((r) => r.status === 'stored')).toMatchObject({ chunkId: good!.chunkId });
    expect(w.stats().failed).toBe(3);
  });
});
