// The coordinator's side of pull mode: `cloud-ingest run` publishes one work item per chunk and node to the
// JetStream WorkQueue and waits for the workers' results; it reads no data bytes itself. It plugs into the run's
// transfer seam: transfer(chunk, targets, attempt) answers with the same TransferOutcome a push transfer gives
// (stored copies, node errors, or the source's error), so placement, retries, moving off failed nodes, replicas,
// the journal, resume and the manifest are the run's own, identical in both modes.
//
// Why results go to a result stream (not a reply subject, not a KV bucket): a worker records its result durably
// before it acks, so neither a coordinator that was away (a NATS restart, a coordinator restart) nor one that is
// slow loses a result; a stream keeps results in order and cheap to read from any point (an ordered consumer per
// run); and, unlike KV keys, its subjects take any run and node id (encoded) and keep every delivery's answer.
//
// Failure handling: a worker that stops sending heartbeats for `worker_timeout_seconds` is lost: its items of this
// run are purged from the queue (so it does not redo them if it comes back) and every transfer waiting on it
// answers with a node error, on which the run moves the chunk to another node (as push mode does for a node that
// dies). An item that exhausts its deliveries (the max-deliveries advisory) or that the worker terminated answers
// with a node error too; a worker's permanent failure (the object changed or is gone) is the source's error.
import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import {
  CONTRACT_VERSION,
  HEARTBEAT_FILTER,
  progressFilter,
  resultFilter,
  SUBJECT_ROOT,
  subjectToken,
  workMessageId,
  workSubject,
} from '../../../shared/cluster/contract.ts';
import type { StoreDescriptor, WorkerHeartbeat, WorkItem, WorkResult } from '../../../shared/cluster/contract.ts';
import { ContractError, decode, encode, workerHeartbeat, workItem, workProgress, workResult } from '../../../shared/cluster/validators.ts';
import type { ChunkCrc, IngestEvent } from '../../../shared/types.ts';
import type { PlannedChunk } from '../chunks.ts';
import { NodeError } from '../nodes/node.ts';
import type { NodeErrorCode, StoredChunk } from '../nodes/node.ts';
import { sleep } from '../retry.ts';
import { StorageError } from '../storage/driver.ts';
import type { StorageErrorCode } from '../storage/driver.ts';
import { announceDelivery, connectNats, ensureConsumer, ensureStreams, manager } from './nats.ts';
import type { ClusterSettings } from './nats.ts';

/** The answer of one transfer, shaped as the run's transfer seam expects (nodes/nodes.ts TransferOutcome). */
export interface PullOutcome {
  stored: Map<string, StoredChunk>;
  nodeErrors: Map<string, unknown>;
  sourceError?: unknown;
}

export interface PullTransferOptions {
  crc?: ChunkCrc['kind'];
  /** The first worker started reading. */
  onSending?: () => void;
  /** Bytes read so far by the first target's worker (deltas), for progress. */
  onBytes?: (bytes: number) => void;
}

export interface PullCoordinatorOptions {
  settings: ClusterSettings;
  runId: string;
  /** The store the workers read, as they open it. */
  store: StoreDescriptor;
  checksum: ChecksumAlgorithm;
  /** The nodes that pull work (their workers must run with these ids). */
  nodes: readonly string[];
  onEvent?: (event: IngestEvent) => void;
  /** A worker stopped sending heartbeats: the run should treat its node as down. */
  onWorkerLost?: (nodeId: string, error: NodeError) => void;
  signal?: AbortSignal;
}

/** What the coordinator last heard from each worker. */
export interface WorkerView {
  nodeId: string;
  alive: boolean;
  lastHeartbeat?: WorkerHeartbeat;
  /** Milliseconds since the last heartbeat (or since the coordinator started, if none came). */
  silentMs: number;
}

export interface CoordinatorStats {
  published: number;
  /** Re-sends of a publish whose acknowledgement did not come (the server was away); deduplicated by message id. */
  republished: number;
  results: number;
  /** Results that answered no waiting transfer (an earlier session's, a lost worker's, a duplicate delivery's). */
  staleResults: number;
  /** Messages refused by the contract validators. */
  refused: number;
  maxDeliveries: number;
  workersLost: number;
}

interface Pending {
  chunk: PlannedChunk;
  nodeId: string;
  /** The first target's pending reports bytes. */
  reportsBytes: boolean;
  options: PullTransferOptions;
  seq?: number;
  delivery: number;
  bytes: number;
  sending: boolean;
  settle: (answer: { stored: StoredChunk } | { nodeError: unknown } | { sourceError: unknown }) => void;
}

const LIVENESS_TICK_MS = 250;
const RESULTS_EXPIRES_MS = 5_000;
/** How long after a "terminated" advisory the worker's own failure result may still arrive before it is assumed lost. */
const TERMINATED_GRACE_MS = 3000;

export class PullCoordinator {
  private readonly o: PullCoordinatorOptions;
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly emit: (event: IngestEvent) => void;
  private readonly pending = new Map<string, Pending>();
  private readonly bySeq = new Map<number, string>();
  private readonly workers = new Map<string, { lastSeen: number; alive: boolean; heartbeat?: WorkerHeartbeat }>();
  /** Unique per coordinator: a message id names one publish (retried ones dedupe), never a later transfer's. */
  private readonly session = randomBytes(4).toString('hex');
  private publishes = 0;
  private readonly subscriptions: Subscription[] = [];
  private results: ConsumerMessages | undefined;
  private timer: NodeJS.Timeout | undefined;
  private connected = true;
  private closed = false;
  readonly stats: CoordinatorStats = { published: 0, republished: 0, results: 0, staleResults: 0, refused: 0, maxDeliveries: 0, workersLost: 0 };

  private constructor(options: PullCoordinatorOptions, nc: NatsConnection, jsm: JetStreamManager) {
    this.o = options;
    this.nc = nc;
    this.jsm = jsm;
    this.js = jetstream(nc, { timeout: 10_000 });
    this.emit = options.onEvent ?? (() => undefined);
    const now = Date.now();
    for (const id of options.nodes) this.workers.set(id, { lastSeen: now, alive: true });
  }

  /** Connects, makes sure the streams and every node's consumer exist with the configured delivery settings, and starts listening. */
  static async open(options: PullCoordinatorOptions): Promise<PullCoordinator> {
    const { settings } = options;
    const nc = await connectNats(settings.nats_url, `cloud-ingest coordinator ${options.runId}`);
    try {
      const jsm = await manager(nc);
      await ensureStreams(jsm, settings);
      for (const nodeId of options.nodes) await ensureConsumer(jsm, settings, nodeId, { delivery: settings });
      await announceDelivery(nc, options.nodes);
      const coordinator = new PullCoordinator(options, nc, jsm);
      await coordinator.listen();
      return coordinator;
    } catch (error) {
      await nc.close().catch(() => undefined);
      throw error;
    }
  }

  private async listen(): Promise<void> {
    const { settings, runId } = this.o;
    this.subscribe(HEARTBEAT_FILTER, (data) => this.onHeartbeat(decode(workerHeartbeat, data, 'heartbeat')));
    this.subscribe(progressFilter(runId), (data) => this.onProgress(decode(workProgress, data, 'progress')));
    this.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${settings.stream}.*`, (data) => this.onMaxDeliveries(parseAdvisory(data)));
    this.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${settings.stream}.*`, (data) => this.onTerminated(parseAdvisory(data)));
    // Every result of this run, from the first: an ordered consumer the client re-creates after a server restart.
    const consumer = await this.js.consumers.get(settings.result_stream, { filter_subjects: resultFilter(runId) });
    // Short pull requests: after a server restart the client notices the lost consumer within seconds and makes it again.
    this.results = await consumer.consume({
      expires: RESULTS_EXPIRES_MS,
      callback: (msg) => {
        try {
          this.onResult(decode(workResult, msg.data, 'result'));
        } catch (error) {
          this.refuse(error);
        }
      },
    });
    void this.watchConnection();
    this.timer = setInterval(() => this.checkLiveness(), LIVENESS_TICK_MS);
    this.timer.unref();
    this.o.signal?.addEventListener('abort', () => this.abortAll(), { once: true });
  }

  private subscribe(subject: string, handle: (data: Uint8Array) => void): void {
    const sub = this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) return;
        try {
          handle(msg.data);
        } catch (e) {
          this.refuse(e);
        }
      },
    });
    this.subscriptions.push(sub);
  }

  /** A malformed message fails only itself. */
  private refuse(error: unknown): void {
    this.stats.refused++;
    if (this.stats.refused <= 10) this.log('warn', `pull mode: ignored a malformed message (${error instanceof Error ? error.message : String(error)})`);
  }

  private async watchConnection(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        this.log('warn', 'pull mode: lost the connection to NATS; waiting for it to come back (work items and results are kept on its disk)');
      } else if (status.type === 'reconnect') {
        this.connected = true;
        // Heartbeats could not arrive meanwhile: every worker gets a fresh grace period.
        const now = Date.now();
        for (const w of this.workers.values()) w.lastSeen = now;
        this.log('info', 'pull mode: connected to NATS again');
      }
    }
  }

  /** Stores `chunk` on each of `targets` by way of their workers; resolves once each has answered or is lost. */
  async transfer(chunk: PlannedChunk, targets: readonly string[], attempt: number, options: PullTransferOptions = {}): Promise<PullOutcome> {
    const outcome: PullOutcome = { stored: new Map(), nodeErrors: new Map() };
    await Promise.all(
      targets.map(async (nodeId, i) => {
        const answer = await this.transferOne(chunk, nodeId, attempt, options, i === 0);
        if ('stored' in answer) outcome.stored.set(nodeId, answer.stored);
        else if ('nodeError' in answer) outcome.nodeErrors.set(nodeId, answer.nodeError);
        else outcome.sourceError = answer.sourceError;
      }),
    );
    this.o.signal?.throwIfAborted();
    return outcome;
  }

  private transferOne(chunk: PlannedChunk, nodeId: string, attempt: number, options: PullTransferOptions, reportsBytes: boolean): Promise<{ stored: StoredChunk } | { nodeError: unknown } | { sourceError: unknown }> {
    const worker = this.workers.get(nodeId);
    if (!worker) return Promise.resolve({ nodeError: new NodeError(nodeId, 'unreachable', `node ${nodeId} is not one of this run's pull workers`) });
    if (!worker.alive) return Promise.resolve({ nodeError: this.lostError(nodeId) });
    const key = pendingKey(chunk.id, nodeId);
    // One transfer of a chunk to a node at a time (the run never asks twice at once); a stale one is answered first.
    this.pending.get(key)?.settle({ nodeError: new NodeError(nodeId, 'io', `${chunk.id}: superseded by attempt ${attempt}`) });
    return new Promise((resolve) => {
      const entry: Pending = {
        chunk,
        nodeId,
        reportsBytes,
        options,
        delivery: 0,
        bytes: 0,
        sending: false,
        settle: (answer) => {
          if (this.pending.get(key) === entry) this.pending.delete(key);
          if (entry.seq !== undefined) this.bySeq.delete(entry.seq);
          resolve(answer);
        },
      };
      this.pending.set(key, entry);
      void this.publish(entry, attempt).catch((error: unknown) => entry.settle({ nodeError: new NodeError(nodeId, 'unreachable', `could not queue ${chunk.id} for ${nodeId}: ${errorText(error)}`) }));
    });
  }

  private itemFor(entry: Pending): WorkItem {
    const { chunk, nodeId } = entry;
    return {
      v: CONTRACT_VERSION,
      runId: this.o.runId,
      chunkId: chunk.id,
      key: chunk.object.key,
      index: chunk.index,
      offset: chunk.offset,
      size: chunk.size,
      objectSize: chunk.object.size,
      ...(chunk.object.etag ? { etag: chunk.object.etag } : {}),
      nodeId,
      targets: [nodeId],
      checksum: this.o.checksum,
      ...(entry.options.crc ? { crc: entry.options.crc } : {}),
      store: this.o.store,
    };
  }

  /** Publishes the item, again and again while the server is away; the message id makes a re-send no second item. */
  private async publish(entry: Pending, attempt: number): Promise<void> {
    const item = this.itemFor(entry);
    const body = encode(workItem, item, 'work item');
    const msgID = workMessageId(item, `${this.session}.${++this.publishes}.${attempt}`);
    for (let tries = 0; ; tries++) {
      if (this.closed || this.pending.get(pendingKey(item.chunkId, item.nodeId)) !== entry) return;
      try {
        const ack = await this.js.publish(workSubject(item.runId, item.nodeId), body, { msgID, timeout: 5_000 });
        entry.seq = ack.seq;
        this.bySeq.set(ack.seq, pendingKey(item.chunkId, item.nodeId));
        this.stats.published++;
        return;
      } catch (error) {
        if (this.o.signal?.aborted) throw error;
        this.stats.republished++;
        await sleep(Math.min(2000, 100 * 2 ** Math.min(tries, 5)));
      }
    }
  }

  private onResult(result: WorkResult): void {
    this.stats.results++;
    const entry = result.runId === this.o.runId ? this.pending.get(pendingKey(result.chunkId, result.nodeId)) : undefined;
    if (!entry) {
      this.stats.staleResults++;
      return;
    }
    if (result.status === 'failed') {
      entry.settle(this.failureAnswer(entry, result.code, result.reason));
      return;
    }
    const { chunk } = entry;
    if (result.size !== chunk.size || result.checksum.algorithm !== this.o.checksum) {
      entry.settle({ nodeError: new NodeError(entry.nodeId, 'io', `${chunk.id}: worker ${entry.nodeId} reports ${result.size} bytes in ${result.checksum.algorithm}, expected ${chunk.size} in ${this.o.checksum}`) });
      return;
    }
    if (!entry.sending) this.markSending(entry);
    if (entry.reportsBytes && result.status === 'stored' && chunk.size > entry.bytes) entry.options.onBytes?.(chunk.size - entry.bytes);
    entry.settle({
      stored: {
        id: chunk.id,
        file: chunk.object.key,
        index: chunk.index,
        offset: chunk.offset,
        size: chunk.size,
        ...(chunk.object.etag ? { sourceEtag: chunk.object.etag } : {}),
        checksum: result.checksum,
        ...(result.crc ? { crc: result.crc } : {}),
        location: result.location,
      },
    });
  }

  /** A worker's permanent failure: the source's (the object changed, is gone, refuses us) or the node's. */
  private failureAnswer(entry: Pending, code: string, reason: string): { nodeError: unknown } | { sourceError: unknown } {
    const { store } = this.o;
    if (SOURCE_CODES.has(code)) {
      const bucket = store.kind === 'local' ? store.path : store.kind === 'azure' ? store.container : store.bucket;
      return { sourceError: new StorageError({ code: code as StorageErrorCode, store: store.kind, bucket, key: entry.chunk.object.key, message: `worker ${entry.nodeId}: ${reason}`, hint: `as worker ${entry.nodeId} saw it` }) };
    }
    return { nodeError: new NodeError(entry.nodeId, NODE_CODES[code] ?? 'io', `worker ${entry.nodeId} gave up ${entry.chunk.id}: ${reason}`) };
  }

  private onProgress(note: { runId: string; chunkId: string; nodeId: string; delivery: number; bytes: number }): void {
    const entry = this.pending.get(pendingKey(note.chunkId, note.nodeId));
    if (!entry) return;
    if (note.delivery < entry.delivery) return;
    if (note.delivery > entry.delivery) {
      if (entry.delivery > 0) this.emitChunk(entry, 'retried', note.delivery, `delivery ${note.delivery} of the work item`);
      entry.delivery = note.delivery;
      entry.bytes = 0;
    }
    if (!entry.sending) this.markSending(entry);
    if (note.bytes > entry.bytes) {
      if (entry.reportsBytes) entry.options.onBytes?.(note.bytes - entry.bytes);
      entry.bytes = note.bytes;
    }
  }

  private markSending(entry: Pending): void {
    entry.sending = true;
    if (entry.reportsBytes) entry.options.onSending?.();
  }

  private onHeartbeat(beat: WorkerHeartbeat): void {
    const worker = this.workers.get(beat.nodeId);
    if (!worker) return;
    worker.lastSeen = Date.now();
    worker.heartbeat = beat;
    if (!worker.alive) {
      worker.alive = true;
      this.log('info', `pull mode: worker ${beat.nodeId} is back; it takes new work again`);
    }
  }

  private checkLiveness(): void {
    if (!this.connected || this.closed) return;
    const timeoutMs = this.o.settings.worker_timeout_seconds * 1000;
    const now = Date.now();
    for (const [nodeId, worker] of this.workers) {
      if (worker.alive && now - worker.lastSeen > timeoutMs) this.workerLost(nodeId);
    }
  }

  private lostError(nodeId: string): NodeError {
    return new NodeError(nodeId, 'unreachable', `worker ${nodeId} sent no heartbeat for ${this.o.settings.worker_timeout_seconds} s (is its agent running with --nats and --id ${nodeId}?)`);
  }

  /** The worker is gone: its queued items of this run are purged, and everything waiting on it fails over. */
  private workerLost(nodeId: string): void {
    const worker = this.workers.get(nodeId)!;
    worker.alive = false;
    this.stats.workersLost++;
    const error = this.lostError(nodeId);
    this.log('warn', `pull mode: ${error.message}; its chunks go to other nodes`);
    void this.purge(workSubject(this.o.runId, nodeId));
    for (const entry of [...this.pending.values()]) if (entry.nodeId === nodeId) entry.settle({ nodeError: error });
    this.o.onWorkerLost?.(nodeId, error);
  }

  /** The node is down as the run sees it (its probes fail): fail over now rather than wait for the heartbeat timeout. */
  nodeDown(nodeId: string): void {
    if (this.workers.get(nodeId)?.alive) this.workerLost(nodeId);
  }

  private onMaxDeliveries(advisory: Advisory | undefined): void {
    const entry = this.entryForAdvisory(advisory);
    if (!entry || !advisory) return;
    this.stats.maxDeliveries++;
    const error = new NodeError(entry.nodeId, 'timeout', `worker ${entry.nodeId} did not finish ${entry.chunk.id} in ${advisory.deliveries ?? this.o.settings.max_deliver} deliveries (cluster.max_deliver)`);
    this.log('error', `pull mode: ${error.message}`);
    entry.settle({ nodeError: error });
    // The queue keeps an item past its deliveries; nobody will take it again.
    void this.jsm.streams.deleteMessage(this.o.settings.stream, advisory.stream_seq, false).catch(() => undefined);
  }

  private onTerminated(advisory: Advisory | undefined): void {
    const entry = this.entryForAdvisory(advisory);
    if (!entry) return;
    const seq = entry.seq;
    // The worker records why before it terminates; give that result a moment to arrive before assuming the worst.
    setTimeout(() => {
      if (entry.seq === seq && this.pending.get(pendingKey(entry.chunk.id, entry.nodeId)) === entry) {
        entry.settle({ nodeError: new NodeError(entry.nodeId, 'io', `worker ${entry.nodeId} terminated ${entry.chunk.id}${advisory?.reason ? `: ${advisory.reason}` : ''}`) });
      }
    }, TERMINATED_GRACE_MS).unref();
  }

  private entryForAdvisory(advisory: Advisory | undefined): Pending | undefined {
    if (!advisory || advisory.stream !== this.o.settings.stream) return undefined;
    const key = this.bySeq.get(advisory.stream_seq);
    const entry = key === undefined ? undefined : this.pending.get(key);
    return entry?.seq === advisory.stream_seq ? entry : undefined;
  }

  private async purge(subject: string): Promise<void> {
    for (let tries = 0; tries < 20 && !this.closed; tries++) {
      try {
        await this.jsm.streams.purge(this.o.settings.stream, { filter: subject });
        return;
      } catch {
        await sleep(500);
      }
    }
  }

  private abortAll(): void {
    const reason = this.o.signal?.reason ?? new Error('cancelled');
    for (const entry of [...this.pending.values()]) entry.settle({ nodeError: reason });
  }

  /** Every worker as last heard from (the app's per-worker view). */
  workerViews(): WorkerView[] {
    const now = Date.now();
    return [...this.workers].map(([nodeId, w]) => ({ nodeId, alive: w.alive, silentMs: now - w.lastSeen, ...(w.heartbeat ? { lastHeartbeat: w.heartbeat } : {}) }));
  }

  /** Stops listening; this run's items still queued (a cancelled or failed run) are purged; results stay for a resume. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.abortAll();
    const leftovers = `${SUBJECT_ROOT}.work.${subjectToken(this.o.runId)}.*`;
    await this.jsm.streams.purge(this.o.settings.stream, { filter: leftovers }).catch(() => undefined);
    this.closed = true;
    this.results?.stop();
    for (const sub of this.subscriptions) sub.unsubscribe();
    await this.nc.drain().catch(() => undefined);
  }

  private emitChunk(entry: Pending, state: 'retried', attempt: number, error: string): void {
    const { chunk } = entry;
    this.emit({ type: 'chunk', id: chunk.id, file: chunk.object.key, index: chunk.index, size: chunk.size, state, attempt, nodeId: entry.nodeId, error });
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.emit({ type: 'log', level, message });
  }
}

/** Worker failure codes that are the source's: retrying on another node would meet the same. */
const SOURCE_CODES = new Set(['not_found', 'bucket_not_found', 'permission_denied', 'unauthenticated', 'precondition_failed', 'invalid_argument']);
const NODE_CODES: Record<string, NodeErrorCode> = { store_full: 'full', conflict: 'conflict', unauthorized: 'unauthorized', refused: 'refused', deliveries_exhausted: 'io', misrouted: 'io', invalid_item: 'refused' };

interface Advisory {
  stream: string;
  stream_seq: number;
  deliveries?: number;
  reason?: string;
}

function parseAdvisory(data: Uint8Array): Advisory | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new ContractError('advisory: not JSON');
  }
  const a = parsed as Partial<Advisory>;
  if (typeof a.stream !== 'string' || typeof a.stream_seq !== 'number') throw new ContractError('advisory: no stream or stream_seq');
  return { stream: a.stream, stream_seq: a.stream_seq, ...(typeof a.deliveries === 'number' ? { deliveries: a.deliveries } : {}), ...(typeof a.reason === 'string' ? { reason: a.reason.slice(0, 500) } : {}) };
}

function pendingKey(chunkId: string, nodeId: string): string {
  return `${nodeId}\n${chunkId}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
