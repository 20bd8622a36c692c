// The coordinator's failure paths against a real nats-server: an item that exhausts its deliveries is reported
// (the max-deliveries advisory) and answered as a node error, a worker that goes silent is lost (its queued items
// purged, its transfers failed over), and malformed messages fail only themselves. The workers here are a real
// in-process worker, or a bare JetStream client that takes items and never answers (a hung worker).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { ChunkStore } from '../../electron/engine/agent/store.ts';
import { silentLogger } from '../../electron/engine/agent/log.ts';
import type { PlannedChunk } from '../../electron/engine/chunks.ts';
import { PullCoordinator } from '../../electron/engine/cluster/coordinator.ts';
import { connectNats, manager } from '../../electron/engine/cluster/nats.ts';
import type { ClusterSettings } from '../../electron/engine/cluster/nats.ts';
import { storeSink } from '../../electron/engine/cluster/sink.ts';
import { startWorker } from '../../electron/engine/cluster/worker.ts';
import { NodeError } from '../../electron/engine/nodes/node.ts';
import { CLUSTER_DEFAULTS } from '../../shared/config/types.ts';
import { consumerName, heartbeatSubject, resultSubject, workSubject } from '../../shared/cluster/contract.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { startNatsServer, stopNatsServers } from '../helpers/nats.ts';
import type { NatsServer } from '../helpers/nats.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { localSource, md5Range } from './harness.ts';
import type { SourceFile } from './harness.ts';

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

function settings(over: Partial<ClusterSettings> = {}): ClusterSettings {
  return { ...CLUSTER_DEFAULTS, nats_url: nats.url, ...over };
}

function planned(file: SourceFile, index: number, size: number): PlannedChunk {
  return { id: `${file.key}_chunk_${index}`, object: { key: file.key, size: file.size, etag: file.etag }, index, offset: index * size, size: Math.min(size, file.size - index * size) };
}

async function coordinator(runId: string, nodes: string[], over: Partial<ClusterSettings>, events: IngestEvent[], lost: string[] = []): Promise<{ c: PullCoordinator; dir: string; files: SourceFile[] }> {
  const source = await localSource([{ key: 'c.bin', bytes: 64 * 1024 }]);
  const c = await PullCoordinator.open({
    settings: settings(over),
    runId,
    store: { kind: 'local', path: source.dir },
    checksum: 'md5',
    nodes,
    onEvent: (e) => events.push(e),
    onWorkerLost: (id) => lost.push(id),
  });
  cleanups.push(() => c.close());
  return { c, dir: source.dir, files: source.files };
}

/** A JetStream manager on its own connection, closed when the file is done. */
async function checker(): Promise<Awaited<ReturnType<typeof manager>>> {
  const nc = await connectNats(nats.url, 'check');
  cleanups.push(() => nc.drain());
  return manager(nc);
}

/** A worker that takes its items and never answers, while it keeps sending heartbeats (it looks alive). */
async function hungWorker(nodeId: string): Promise<{ taken: number[]; stop: () => Promise<void> }> {
  const nc = await connectNats(nats.url, `hung ${nodeId}`);
  const js = jetstream(nc);
  const taken: number[] = [];
  const messages = await (await js.consumers.get(CLUSTER_DEFAULTS.stream, consumerName(CLUSTER_DEFAULTS.consumer_prefix, nodeId))).consume({ callback: (m) => void taken.push(m.info.deliveryCount) });
  const beat = setInterval(() => {
    const now = new Date().toISOString();
    nc.publish(heartbeatSubject(nodeId), JSON.stringify({ v: 1, nodeId, at: now, startedAt: now, inFlight: 1, stored: 0, existed: 0, failed: 0, bytesRead: 0, chunkCount: 0, bytesHeld: 0, freeBytes: 1 }));
  }, 200);
  const stop = async (): Promise<void> => {
    clearInterval(beat);
    messages.stop();
    await nc.drain().catch(() => undefined);
  };
  cleanups.push(stop);
  return { taken, stop };
}

describe('pull coordinator', () => {
  it('a stored result answers the transfer with the chunk as the node holds it', async () => {
    const events: IngestEvent[] = [];
    const { c, files } = await coordinator('run-ok', ['ok-1'], { ack_wait_seconds: 5 }, events);
    const store = new ChunkStore(await tempDir('ci-coord-store-'), {}, silentLogger);
    await store.open();
    cleanups.push(() => store.close());
    const worker = await startWorker({ natsUrl: nats.url, nodeId: 'ok-1', sink: storeSink(store), heartbeatMs: 200 });
    cleanups.push(() => worker.close());
    const chunk = planned(files[0]!, 1, 16 * 1024);
    const outcome = await c.transfer(chunk, ['ok-1'], 1);
    expect(outcome.nodeErrors.size).toBe(0);
    expect(outcome.stored.get('ok-1')).toMatchObject({ id: chunk.id, offset: chunk.offset, size: chunk.size, checksum: { algorithm: 'md5', hex: await md5Range(files[0]!.path, chunk.offset, chunk.size) } });
    expect(c.stats.published).toBe(1);
  });

  it('an item that exhausts its deliveries is reported and answered as a node error, and leaves the queue', async () => {
    const events: IngestEvent[] = [];
    const { c, files } = await coordinator('run-maxdel', ['hung-1'], { ack_wait_seconds: 1, max_deliver: 2, worker_timeout_seconds: 30 }, events);
    const hung = await hungWorker('hung-1');
    const outcome = await c.transfer(planned(files[0]!, 0, 16 * 1024), ['hung-1'], 1);
    const error = outcome.nodeErrors.get('hung-1');
    expect(error).toBeInstanceOf(NodeError);
    expect((error as NodeError).code).toBe('timeout');
    expect((error as Error).message).toContain('in 2 deliveries (cluster.max_deliver)');
    expect(hung.taken).toEqual([1, 2]);
    expect(c.stats.maxDeliveries).toBe(1);
    expect(events.some((e) => e.type === 'log' && e.level === 'error' && e.message.includes('did not finish'))).toBe(true);
    const jsm = await checker();
    await expect.poll(async () => (await jsm.streams.info(CLUSTER_DEFAULTS.stream, { subjects_filter: workSubject('run-maxdel', 'hung-1') })).state.messages, { timeout: 10_000 }).toBe(0);
  });

  it('a worker that goes silent is lost: its transfers fail over at once and its queued items are purged', async () => {
    const events: IngestEvent[] = [];
    const lost: string[] = [];
    const { c, files } = await coordinator('run-lost', ['gone-1'], { ack_wait_seconds: 30, worker_timeout_seconds: 1.5 }, events, lost);
    const started = Date.now();
    const outcome = await c.transfer(planned(files[0]!, 2, 16 * 1024), ['gone-1'], 1);
    const error = outcome.nodeErrors.get('gone-1') as NodeError;
    expect(error.code).toBe('unreachable');
    expect(error.message).toContain('sent no heartbeat for 1.5 s');
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(lost).toEqual(['gone-1']);
    const jsm = await checker();
    await expect.poll(async () => (await jsm.streams.info(CLUSTER_DEFAULTS.stream, { subjects_filter: workSubject('run-lost', 'gone-1') })).state.messages, { timeout: 10_000 }).toBe(0);
    // Later transfers to it answer at once, until it is heard from again.
    const again = await c.transfer(planned(files[0]!, 3, 16 * 1024), ['gone-1'], 1);
    expect((again.nodeErrors.get('gone-1') as NodeError).code).toBe('unreachable');
  });

  it('malformed results and heartbeats fail only themselves', async () => {
    const events: IngestEvent[] = [];
    const { c, files } = await coordinator('run-junk', ['junk-1'], { ack_wait_seconds: 5 }, events);
    const nc = await connectNats(nats.url, 'junk');
    cleanups.push(() => nc.drain());
    const js = jetstream(nc);
    const store = new ChunkStore(await tempDir('ci-coord-store-'), {}, silentLogger);
    await store.open();
    cleanups.push(() => store.close());
    nc.publish(heartbeatSubject('junk-1'), 'not json');
    nc.publish(heartbeatSubject('junk-1'), JSON.stringify({ v: 1, nodeId: 'junk-1' }));
    await js.publish(resultSubject('run-junk', 'junk-1'), JSON.stringify({ v: 1, status: 'stored', chunkId: 12 }));
    await js.publish(resultSubject('run-junk', 'junk-1'), new Uint8Array([0xff, 0xfe]));
    const worker = await startWorker({ natsUrl: nats.url, nodeId: 'junk-1', sink: storeSink(store), heartbeatMs: 200 });
    cleanups.push(() => worker.close());
    const outcome = await c.transfer(planned(files[0]!, 0, 16 * 1024), ['junk-1'], 1);
    expect(outcome.stored.has('junk-1')).toBe(true);
    expect(c.stats.refused).toBeGreaterThanOrEqual(4);
    expect(events.some((e) => e.type === 'log' && e.message.includes('ignored a malformed message'))).toBe(true);
  });
});
