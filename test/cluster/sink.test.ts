// The worker's direct way into an agent's store (storeSink): the quota is charged as bytes arrive, as the agent's
// HTTP upload charges it, never set aside whole before the first byte; a write that runs past the quota is refused
// then, and leaves nothing behind.
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../electron/engine/agent/log.ts';
import { ChunkStore } from '../../electron/engine/agent/store.ts';
import { SinkError, storeSink } from '../../electron/engine/cluster/sink.ts';
import type { SinkWrite } from '../../electron/engine/cluster/sink.ts';
import { incomingFiles } from '../helpers/agent-store.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { until } from '../helpers/until.ts';
import { MiB } from './harness.ts';

const stores: ChunkStore[] = [];

afterAll(async () => {
  for (const s of stores) await s.close();
  await removeTempDirs();
});

async function openStore(maxBytes: number): Promise<ChunkStore> {
  const store = new ChunkStore(await tempDir('ci-sink-store-'), { maxBytes }, silentLogger);
  await store.open();
  stores.push(store);
  return store;
}

const meta = (id: string, size: number) => ({ id, file: `${id}.bin`, index: 0, offset: 0, size, sourceEtag: 'v1' });

/** Free space as the store reports it, kept up to date by a poller so `until` can wait on it. */
function watchFree(store: ChunkStore): { now: () => number; stop: () => void } {
  let free = -1;
  const timer = setInterval(() => void store.space().then((s) => (free = s.freeBytes)), 10);
  return { now: () => free, stop: () => clearInterval(timer) };
}

describe('storeSink: the agent store written directly, its quota charged byte by byte', () => {
  it('a write in progress holds only the bytes that have arrived; once stored, the chunk holds its size', async () => {
    const store = await openStore(10 * MiB);
    const sink = storeSink(store);
    const body = new PassThrough();
    const writing = sink.write(meta('slow', 8 * MiB), body, 'md5');
    body.write(Buffer.alloc(MiB, 1));
    const free = watchFree(store);
    try {
      // Reserving the whole 8 MiB up front would report 2 MiB free here.
      await until(() => free.now() === 9 * MiB, 'the store to count the 1 MiB that arrived (9 MiB free)', 5_000);
      body.end(Buffer.alloc(7 * MiB, 2));
      const written = await writing;
      expect(written.status).toBe('created');
      expect(store.bytesHeld).toBe(8 * MiB);
      expect((await store.space()).freeBytes).toBe(2 * MiB);
    } finally {
      free.stop();
    }
  });

  it('two writes that fit when they start, but not together, are both admitted; the one that runs past the quota is refused then and leaves nothing behind', async () => {
    const store = await openStore(4 * MiB);
    const sink = storeSink(store);
    const [a, b] = [new PassThrough(), new PassThrough()];
    const writes: Promise<SinkWrite>[] = [sink.write(meta('first', 3 * MiB), a, 'md5'), sink.write(meta('second', 3 * MiB), b, 'md5')];
    const outcomes = Promise.allSettled(writes);
    a.write(Buffer.alloc(MiB, 3));
    b.write(Buffer.alloc(MiB, 4));
    const free = watchFree(store);
    try {
      // Both admitted: 2 MiB charged, 2 MiB free. A whole-chunk reservation would have refused the second at once.
      await until(() => free.now() === 2 * MiB, 'both writes to be admitted with 1 MiB each arrived', 5_000);
    } finally {
      free.stop();
    }
    a.end(Buffer.alloc(2 * MiB, 3));
    const [first] = await Promise.allSettled([writes[0]!]);
    expect(first).toMatchObject({ status: 'fulfilled', value: { status: 'created' } });
    b.end(Buffer.alloc(2 * MiB, 4));
    const second = (await outcomes)[1]!;
    expect(second.status).toBe('rejected');
    const error = (second as PromiseRejectedResult).reason as SinkError;
    expect(error).toBeInstanceOf(SinkError);
    expect(error.code).toBe('full');
    expect(error.message).toMatch(/quota/);
    expect(store.get('second')).toBeUndefined();
    expect(await incomingFiles(store.dir)).toEqual([]);
    // Nothing of the refused write stays charged: what is free is the quota less the stored chunk.
    expect((await store.space()).freeBytes).toBe(MiB);
  });

  it('a chunk larger than the free space is refused before any byte is read', async () => {
    const store = await openStore(2 * MiB);
    const body = new PassThrough();
    await expect(storeSink(store).write(meta('too-big', 3 * MiB), body, 'md5')).rejects.toMatchObject({ code: 'full' });
    expect(body.destroyed).toBe(true);
  });
});
