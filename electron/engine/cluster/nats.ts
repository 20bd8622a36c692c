// The NATS side both ends share: connecting (reconnecting for ever, so a server restart is a pause, not an end),
// and the two streams and each node's consumer, created where missing with the settings pull mode relies on.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { CLUSTER_DEFAULTS } from '../../../shared/config/types.ts';
import type { ClusterConfig } from '../../../shared/config/types.ts';
import { SUBJECT_ROOT, consumerName, resultStreamSubjects, subjectToken, workFilter, workStreamSubjects } from '../../../shared/cluster/contract.ts';

/** Stream and consumer settings, with the URL resolved (config, else NATS_URL). */
export interface ClusterSettings extends ClusterConfig {
  nats_url: string;
}

export class ClusterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterConfigError';
  }
}

/** The config's cluster section (or the defaults) with the NATS URL from it or from NATS_URL. */
export function clusterSettings(cluster: ClusterConfig | undefined, env: NodeJS.ProcessEnv = process.env): ClusterSettings {
  const settings = { ...CLUSTER_DEFAULTS, ...cluster };
  const url = settings.nats_url ?? env.NATS_URL;
  if (!url) {
    throw new ClusterConfigError('Pull mode needs a NATS server: neither cluster.nats_url in the config nor the NATS_URL environment variable is set. Fix: export NATS_URL=nats://host:4222 (start one with `nats-server -js -sd /var/lib/nats`), or set ingestion.mode: push.');
  }
  return { ...settings, nats_url: url };
}

const NANOS_PER_MS = 1_000_000;
/** Results are kept this long: a resumed or restarted coordinator reads a run's results back from the stream. */
const RESULT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** Work item ids are remembered this long: a re-publish within it is dropped as a duplicate. */
const DUPLICATE_WINDOW_MS = 10 * 60 * 1000;

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: url.split(',').map((u) => u.trim()),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 5_000,
    maxPingOut: 3,
  });
}

/** Creates the work stream (WorkQueue, file storage) and the result stream where they do not exist yet. */
export async function ensureStreams(jsm: JetStreamManager, settings: Pick<ClusterConfig, 'stream' | 'result_stream'>): Promise<void> {
  await ensureStream(jsm, settings.stream, () =>
    jsm.streams.add({
      name: settings.stream,
      subjects: workStreamSubjects(),
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      duplicate_window: DUPLICATE_WINDOW_MS * NANOS_PER_MS,
    }),
  );
  await ensureStream(jsm, settings.result_stream, () =>
    jsm.streams.add({
      name: settings.result_stream,
      subjects: resultStreamSubjects(),
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: RESULT_MAX_AGE_MS * NANOS_PER_MS,
      duplicate_window: DUPLICATE_WINDOW_MS * NANOS_PER_MS,
    }),
  );
}

async function ensureStream(jsm: JetStreamManager, name: string, create: () => Promise<unknown>): Promise<void> {
  try {
    await jsm.streams.info(name);
    return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  try {
    await create();
  } catch (error) {
    // Another worker or the coordinator made it meanwhile.
    if (!/already in use/i.test(String((error as Error).message))) throw error;
  }
}

/**
 * One node's durable pull consumer (explicit acks, only that node's subjects), created where missing. The
 * coordinator sets `ack_wait` and `max_deliver` from its config (`delivery`); the worker sets `max_ack_pending`
 * (its concurrency, `maxAckPending`). Each leaves the other's settings as they are.
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  settings: Pick<ClusterConfig, 'stream' | 'consumer_prefix'>,
  nodeId: string,
  set: { delivery?: Pick<ClusterConfig, 'ack_wait_seconds' | 'max_deliver'>; maxAckPending?: number },
): Promise<string> {
  const name = consumerName(settings.consumer_prefix, nodeId);
  const delivery = set.delivery ?? CLUSTER_DEFAULTS;
  const wanted: { ack_wait?: number; max_deliver?: number; max_ack_pending?: number } = {
    ...(set.delivery ? { ack_wait: Math.round(delivery.ack_wait_seconds * 1000) * NANOS_PER_MS, max_deliver: delivery.max_deliver } : {}),
    ...(set.maxAckPending ? { max_ack_pending: set.maxAckPending } : {}),
  };
  let info;
  try {
    info = await jsm.consumers.info(settings.stream, name);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  if (!info) {
    try {
      await jsm.consumers.add(settings.stream, {
        durable_name: name,
        filter_subject: workFilter(nodeId),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: Math.round(delivery.ack_wait_seconds * 1000) * NANOS_PER_MS,
        max_deliver: delivery.max_deliver,
        max_ack_pending: set.maxAckPending ?? DEFAULT_MAX_ACK_PENDING,
      });
      return name;
    } catch (error) {
      if (!/already in use|already exists/i.test(String((error as Error).message))) throw error;
      info = await jsm.consumers.info(settings.stream, name);
    }
  }
  const c = info.config;
  const changed = (Object.keys(wanted) as (keyof typeof wanted)[]).some((k) => c[k] !== wanted[k]);
  if (changed) await jsm.consumers.update(settings.stream, name, wanted);
  return name;
}

/**
 * Where a node's worker hears that its consumer's delivery settings (ack wait, max deliver) may have changed: a
 * worker that started before the coordinator set a shorter ack wait would otherwise say `working` too seldom and
 * see its long items handed out again. Core NATS, no body: the worker reads its consumer's settings again.
 */
export function deliveryNoticeSubject(nodeId: string): string {
  return `${SUBJECT_ROOT}.control.${subjectToken(nodeId)}.delivery`;
}

/** Tells each node's worker to read its consumer's delivery settings again (after ensureConsumer set them). */
export async function announceDelivery(nc: NatsConnection, nodes: readonly string[]): Promise<void> {
  for (const nodeId of nodes) nc.publish(deliveryNoticeSubject(nodeId));
  await nc.flush();
}

/** Items a worker holds at once when it has not said (the consumer's max_ack_pending). */
export const DEFAULT_MAX_ACK_PENDING = 4;

export function isNotFound(error: unknown): boolean {
  const e = error as { code?: unknown; api_error?: { err_code?: number }; message?: string } | undefined;
  const code = e?.api_error?.err_code;
  // 10059 stream not found, 10014 consumer not found.
  return code === 10059 || code === 10014 || /not found/i.test(String(e?.message ?? ''));
}

export async function manager(nc: NatsConnection): Promise<JetStreamManager> {
  return jetstreamManager(nc, { timeout: 10_000 });
}
