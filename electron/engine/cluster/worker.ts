// A pull-mode worker: the part of a node agent that takes its own work items from the JetStream WorkQueue, reads
// each chunk's byte range straight from the store (pinned to the listed version), hashes it, keeps it in the
// agent's store, records the result in the result stream, and only then acks. At least once: a redelivered item
// finds its chunk already kept and is answered without writing it again.
//
// Per delivery: working() while a read is long, so it is not handed out again; nak with backoff for what may pass
// (a dropped connection, a store that is briefly down); term, with a result that says why, for what will not (the
// object changed or is gone, no room, a malformed item) or once the last delivery has failed too.
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { jetstream } from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CLUSTER_DEFAULTS } from '../../../shared/config/types.ts';
import {
  CONTRACT_VERSION,
  heartbeatSubject,
  progressSubject,
  resultMessageId,
  resultSubject,
} from '../../../shared/cluster/contract.ts';
import type { FailedResult, StoredResult, WorkerHeartbeat, WorkItem, WorkResult } from '../../../shared/cluster/contract.ts';
import { ContractError, decode, encode, workerHeartbeat, workItem, workProgress, workResult } from '../../../shared/cluster/validators.ts';
import type { AgentLogger } from '../agent/log.ts';
import { silentLogger } from '../agent/log.ts';
import { Slots } from '../limit.ts';
import { backoffDelayMs, sleep } from '../retry.ts';
import { StorageError } from '../storage/driver.ts';
import type { ChunkSink, HeldChunk } from './sink.ts';
import { SinkError } from './sink.ts';
import { StoreCache } from './store.ts';
import { connectNats, deliveryNoticeSubject, ensureConsumer, ensureStreams, manager } from './nats.ts';

export interface WorkerOptions {
  /** nats://host:port, several separated by commas. */
  natsUrl: string;
  /** This node's id, as the coordinator's config names it. */
  nodeId: string;
  sink: ChunkSink;
  /** Items worked on at once (the consumer's max_ack_pending). Default 4. */
  concurrency?: number;
  stream?: string;
  resultStream?: string;
  consumerPrefix?: string;
  /** How often the worker says it is alive. Default 1 s. */
  heartbeatMs?: number;
  /** How often bytes read so far are reported per item. Default 250 ms. */
  progressMs?: number;
  log?: AgentLogger;
}

export interface WorkerStats {
  inFlight: number;
  stored: number;
  existed: number;
  failed: number;
  /** Deliveries given back with nak, to come again. */
  retried: number;
  bytesRead: number;
}

export interface RunningWorker {
  readonly nodeId: string;
  stats(): WorkerStats;
  /** Stops taking items; items in progress are cut short and given back (nak) to come again at once. */
  close(): Promise<void>;
}

/** One delivery being worked on. */
interface InFlight {
  item?: WorkItem;
  bytes: number;
  reported: number;
  abort: AbortController;
  /** The `working` pace for this delivery: `now` says it at once and starts the pace again. */
  working: { now(): void; stop(): void };
}

const PULL_EXPIRES_MS = 5_000;
const SOURCE_RETRY = { retries: 2, baseDelayMs: 200, maxDelayMs: 2000 };
const NAK_BACKOFF = { retries: 0, baseDelayMs: 500, maxDelayMs: 30_000 };
/** Storage codes that another delivery would meet again. */
const PERMANENT_STORAGE_CODES = new Set(['not_found', 'bucket_not_found', 'permission_denied', 'unauthenticated', 'precondition_failed', 'invalid_argument']);

/** A failure the worker gives up on at once (term), with the code and reason the coordinator is told. */
class GiveUp extends Error {
  readonly code: string;
  constructor(code: string, reason: string) {
    super(reason);
    this.code = code;
  }
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const worker = new Worker(options);
  await worker.start();
  return worker;
}

class Worker implements RunningWorker {
  readonly nodeId: string;
  private readonly o: WorkerOptions;
  private readonly log: AgentLogger;
  private readonly settings: { stream: string; result_stream: string; consumer_prefix: string };
  private readonly concurrency: number;
  private readonly stores = new StoreCache(SOURCE_RETRY);
  /** One source read open per item: the agent's store, not the source, sets the pace. */
  private readonly readSlots: Slots;
  private readonly startedAt = new Date().toISOString();
  private readonly counters: Omit<WorkerStats, 'inFlight'> = { stored: 0, existed: 0, failed: 0, retried: 0, bytesRead: 0 };
  private readonly inFlight = new Map<JsMsg, InFlight>();
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private messages: ConsumerMessages | undefined;
  private timers: NodeJS.Timeout[] = [];
  private ackWaitMs = CLUSTER_DEFAULTS.ack_wait_seconds * 1000;
  private maxDeliver = CLUSTER_DEFAULTS.max_deliver;
  private closing = false;
  private consuming: Promise<void> | undefined;
  private deliveryReadAt = 0;
  /** Reads the consumer's delivery settings again (throttled): the coordinator may have changed them since. */
  private refreshDelivery: () => Promise<void> = async () => undefined;

  constructor(options: WorkerOptions) {
    this.o = options;
    this.nodeId = options.nodeId;
    this.log = options.log ?? silentLogger;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.readSlots = new Slots(this.concurrency);
    this.settings = {
      stream: options.stream ?? CLUSTER_DEFAULTS.stream,
      result_stream: options.resultStream ?? CLUSTER_DEFAULTS.result_stream,
      consumer_prefix: options.consumerPrefix ?? CLUSTER_DEFAULTS.consumer_prefix,
    };
  }

  stats(): WorkerStats {
    return { inFlight: this.inFlight.size, ...this.counters };
  }

  async start(): Promise<void> {
    this.nc = await connectNats(this.o.natsUrl, `cloud-ingest worker ${this.nodeId}`);
    this.js = jetstream(this.nc, { timeout: 10_000 });
    void this.watchConnection(this.nc);
    const jsm = await manager(this.nc);
    await ensureStreams(jsm, this.settings);
    const consumer = await ensureConsumer(jsm, this.settings, this.nodeId, { maxAckPending: this.concurrency });
    // A coordinator that sets other delivery settings (a shorter ack wait) says so: read them again at once.
    this.nc.subscribe(deliveryNoticeSubject(this.nodeId), { callback: () => void this.readDelivery(jsm, consumer).catch(() => undefined) });
    await this.readDelivery(jsm, consumer);
    this.refreshDelivery = async () => {
      if (Date.now() - this.deliveryReadAt > 250) await this.readDelivery(jsm, consumer).catch(() => undefined);
    };
    this.timers.push(setInterval(() => void this.heartbeat(), this.o.heartbeatMs ?? 1000));
    this.timers.push(setInterval(() => this.reportProgress(), this.o.progressMs ?? 250));
    this.timers.push(setInterval(() => void this.readDelivery(jsm, consumer).catch(() => undefined), 30_000));
    for (const t of this.timers) t.unref();
    void this.heartbeat();
    this.consuming = this.consume(consumer);
    this.log.log('info', 'worker pulling', { nodeId: this.nodeId, stream: this.settings.stream, consumer, concurrency: this.concurrency });
  }

  /** The consumer's ack wait and delivery limit, as the coordinator last set them. */
  private async readDelivery(jsm: JetStreamManager, consumer: string): Promise<void> {
    this.deliveryReadAt = Date.now();
    const info = await jsm.consumers.info(this.settings.stream, consumer);
    const { ack_wait: ackWait, max_deliver: maxDeliver } = info.config;
    const before = this.ackWaitMs;
    if (ackWait) this.ackWaitMs = Math.max(1000, Math.round(ackWait / 1e6));
    this.maxDeliver = maxDeliver !== undefined && maxDeliver > 0 ? maxDeliver : Number.POSITIVE_INFINITY;
    // Items in progress were saying `working` at the old pace: say it now, and from now on at the new one.
    if (this.ackWaitMs < before) for (const state of this.inFlight.values()) state.working.now();
  }

  /** Says `working` for `msg` every third of the ack wait as it stands at each turn (see readDelivery). */
  private keepWorking(msg: JsMsg): InFlight['working'] {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const tick = (): void => {
      if (stopped) return;
      msg.working();
      timer = setTimeout(tick, Math.max(250, Math.floor(this.ackWaitMs / 3)));
    };
    timer = setTimeout(tick, Math.max(250, Math.floor(this.ackWaitMs / 3)));
    return {
      now: () => {
        clearTimeout(timer);
        tick();
      },
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  private async consume(consumerName: string): Promise<void> {
    const consumer = await this.js!.consumers.get(this.settings.stream, consumerName);
    // Short pull requests (heartbeats every 2.5 s): after a server restart forgets them, the worker notices and
    // asks again within seconds instead of the default 30.
    this.messages = await consumer.consume({ max_messages: this.concurrency, expires: PULL_EXPIRES_MS, callback: (msg) => void this.handle(msg) });
    for await (const status of this.messages.status()) {
      if (status.type === 'consumer_deleted' || status.type === 'consumer_not_found') {
        this.log.log('warn', 'work consumer missing; creating it again', { consumer: consumerName });
        await ensureConsumer(await manager(this.nc!), this.settings, this.nodeId, { maxAckPending: this.concurrency }).catch(() => undefined);
      }
    }
  }

  private async watchConnection(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') this.log.log(s.type === 'disconnect' ? 'warn' : 'info', `nats ${s.type}`, { server: 'server' in s ? String(s.server) : null });
      // A delivery notice sent while this worker was away was missed: read the settings again.
      if (s.type === 'reconnect') void this.refreshDelivery();
    }
  }

  private async handle(msg: JsMsg): Promise<void> {
    // Long reads say they are still working, well inside the ack wait, so the item is not handed out again.
    const state: InFlight = { bytes: 0, reported: 0, abort: new AbortController(), working: this.keepWorking(msg) };
    this.inFlight.set(msg, state);
    const delivery = msg.info.deliveryCount;
    try {
      const item = decode(workItem, msg.data, 'work item');
      state.item = item;
      if (item.nodeId !== this.nodeId) throw new GiveUp('misrouted', `work item for node ${item.nodeId} reached worker ${this.nodeId}`);
      const result = await this.process(item, delivery, state);
      await this.record(result);
      msg.ack();
      if (result.status === 'stored') this.counters.stored++;
      else this.counters.existed++;
    } catch (error) {
      await this.fail(msg, state.item, delivery, error);
    } finally {
      state.working.stop();
      this.inFlight.delete(msg);
    }
  }

  private async process(item: WorkItem, delivery: number, state: { bytes: number; abort: AbortController }): Promise<StoredResult> {
    const started = performance.now();
    const base = { v: CONTRACT_VERSION, runId: item.runId, chunkId: item.chunkId, nodeId: this.nodeId, delivery } as const;
    const held = await this.o.sink.find(item.chunkId);
    if (held && isSameChunk(held, item)) {
      return { ...base, at: new Date().toISOString(), status: 'exists', size: held.size, checksum: held.checksum, location: held.location, bytesRead: 0, elapsedMs: Math.round(performance.now() - started) };
    }
    const bucket = await this.stores.get(item.store);
    const object = { key: item.key, size: item.objectSize, ...(item.etag ? { etag: item.etag } : {}) };
    const signal = state.abort.signal;
    const source = await bucket.readInParts(object, { offset: item.offset, length: item.size }, { partSize: Math.max(1, item.size), ahead: 1, slots: this.readSlots, signal });
    const counted = source.pipe(new Counter((n) => {
      state.bytes += n;
      this.counters.bytesRead += n;
    }));
    source.once('error', (error) => counted.destroy(error));
    counted.once('close', () => source.destroyed || source.destroy());
    const meta = { id: item.chunkId, file: item.key, index: item.index, offset: item.offset, size: item.size, ...(item.etag ? { sourceEtag: item.etag } : {}) };
    let written;
    try {
      written = await this.o.sink.write(meta, counted, item.checksum, item.crc, signal);
    } finally {
      // Whatever the sink did with it, the read ends here: its file handle or socket, and its read slot, go back.
      if (!counted.destroyed) counted.destroy();
      if (!source.destroyed) source.destroy();
    }
    return {
      ...base,
      at: new Date().toISOString(),
      status: written.status === 'exists' ? 'exists' : 'stored',
      size: written.chunk.size,
      checksum: written.chunk.checksum,
      ...(written.crc ? { crc: written.crc } : {}),
      location: written.chunk.location,
      bytesRead: state.bytes,
      elapsedMs: Math.round(performance.now() - started),
    };
  }

  /**
   * Puts the result in the result stream and waits for the server to have it. Tried again while the server is away
   * (a restart), for at most about the ack wait: past that the item comes again anyway.
   */
  private async record(result: WorkResult): Promise<void> {
    const body = encode(workResult, result, 'result');
    const deadline = Date.now() + Math.max(5_000, this.ackWaitMs);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.js!.publish(resultSubject(result.runId, this.nodeId), body, { msgID: resultMessageId(result), timeout: 5_000 });
        return;
      } catch (error) {
        if (this.closing || Date.now() > deadline) throw error;
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  private async fail(msg: JsMsg, item: WorkItem | undefined, delivery: number, error: unknown): Promise<void> {
    const verdict = classify(error);
    if (verdict.retry) await this.refreshDelivery();
    const reason = errorText(error);
    if (this.closing) {
      msg.nak();
      return;
    }
    if (verdict.retry && delivery < this.maxDeliver) {
      this.counters.retried++;
      const delay = backoffDelayMs(NAK_BACKOFF, delivery);
      this.log.log('warn', 'work item failed; it will come again', { chunkId: item?.chunkId ?? null, delivery, delayMs: delay, error: reason });
      msg.nak(delay);
      return;
    }
    const code = verdict.retry ? 'deliveries_exhausted' : verdict.code;
    const why = verdict.retry ? `failed on all ${delivery} deliveries; the last: ${reason}` : reason;
    this.counters.failed++;
    this.log.log('error', 'work item given up', { chunkId: item?.chunkId ?? null, delivery, code, error: why });
    if (item) {
      const failed: FailedResult = { v: CONTRACT_VERSION, runId: item.runId, chunkId: item.chunkId, nodeId: this.nodeId, delivery, at: new Date().toISOString(), status: 'failed', code, reason: why.slice(0, 4000) };
      try {
        await this.record(failed);
      } catch (recordError) {
        // Unrecorded, the coordinator would never hear why: let the item come again rather than end it silently.
        this.log.log('warn', 'could not record a failure; the item will come again', { chunkId: item.chunkId, error: errorText(recordError) });
        msg.nak(backoffDelayMs(NAK_BACKOFF, delivery));
        return;
      }
    }
    this.terminate(msg, `${code}: ${why}`);
  }

  /** term, with the reason where the server keeps one (2.10+); 2.9 ignores a `+TERM` that carries a reason. */
  private terminate(msg: JsMsg, reason: string): void {
    const [major = 0, minor = 0] = (this.nc?.info?.version ?? '0.0').split('.').map(Number);
    if (major > 2 || (major === 2 && minor >= 10)) msg.term(reason.slice(0, 1000));
    else msg.term();
  }

  private reportProgress(): void {
    if (!this.nc || this.nc.isClosed()) return;
    for (const [msg, state] of this.inFlight) {
      if (!state.item || state.bytes === state.reported) continue;
      state.reported = state.bytes;
      const note = { v: CONTRACT_VERSION, runId: state.item.runId, chunkId: state.item.chunkId, nodeId: this.nodeId, delivery: msg.info.deliveryCount, bytes: state.bytes } as const;
      this.nc.publish(progressSubject(state.item.runId, this.nodeId), encode(workProgress, note, 'progress'));
    }
  }

  private async heartbeat(): Promise<void> {
    if (!this.nc || this.nc.isClosed()) return;
    const space = await this.o.sink.space().catch(() => ({ chunkCount: 0, bytesHeld: 0, freeBytes: 0 }));
    const beat: WorkerHeartbeat = { v: CONTRACT_VERSION, nodeId: this.nodeId, at: new Date().toISOString(), startedAt: this.startedAt, inFlight: this.inFlight.size, ...pick(this.counters), ...space };
    if (!this.nc.isClosed()) this.nc.publish(heartbeatSubject(this.nodeId), encode(workerHeartbeat, beat, 'heartbeat'));
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    this.messages?.stop();
    for (const state of this.inFlight.values()) state.abort.abort(new Error('worker stopping'));
    for (let waited = 0; this.inFlight.size > 0 && waited < 5000; waited += 50) await sleep(50);
    await this.consuming?.catch(() => undefined);
    await this.nc?.drain().catch(() => undefined);
    await this.stores.close();
    await this.o.sink.close();
    this.log.log('info', 'worker stopped', { nodeId: this.nodeId, ...this.counters });
  }
}

function pick(c: Omit<WorkerStats, 'inFlight'>): Pick<WorkerHeartbeat, 'stored' | 'existed' | 'failed' | 'bytesRead'> {
  return { stored: c.stored, existed: c.existed, failed: c.failed, bytesRead: c.bytesRead };
}

/** The kept copy is this item's chunk: same source version, same range, same checksum algorithm. */
function isSameChunk(held: HeldChunk, item: WorkItem): boolean {
  return held.size === item.size && held.offset === item.offset && held.sourceEtag === item.etag && held.checksum.algorithm === item.checksum && held.file === item.key;
}

function classify(error: unknown): { retry: true } | { retry: false; code: string } {
  if (error instanceof GiveUp) return { retry: false, code: error.code };
  if (error instanceof ContractError) return { retry: false, code: 'invalid_item' };
  if (error instanceof StorageError) return PERMANENT_STORAGE_CODES.has(error.code) ? { retry: false, code: error.code } : { retry: true };
  if (error instanceof SinkError) {
    if (error.code === 'full') return { retry: false, code: 'store_full' };
    if (error.code === 'conflict') return { retry: false, code: 'conflict' };
    if (error.code === 'refused') return { retry: false, code: 'refused' };
  }
  return { retry: true };
}

function errorText(error: unknown): string {
  if (error instanceof StorageError) return `${error.message} (${error.hint})`;
  return error instanceof Error ? error.message : String(error);
}

/** Passes bytes through, telling how many went by. */
class Counter extends Transform {
  private readonly onBytes: (n: number) => void;
  constructor(onBytes: (n: number) => void) {
    super();
    this.onBytes = onBytes;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.onBytes(chunk.length);
    callback(null, chunk);
  }
}
