// `cloud-ingest agent ... --nats URL --id NODE_ID`: the agent also pulls its own work items (see worker.ts).
// The flags, their checks and the start-up live here so the agent command only wires them in.
import { CLUSTER_DEFAULTS } from '../../../shared/config/types.ts';
import type { AgentLogger } from '../agent/log.ts';
import type { RunningAgent } from '../agent/server.ts';
import { storeSink } from './sink.ts';
import type { RunningWorker } from './worker.ts';

export const WORKER_FLAGS = {
  nats: { type: 'string' },
  id: { type: 'string' },
  'pull-concurrency': { type: 'string' },
  'nats-stream': { type: 'string' },
  'nats-result-stream': { type: 'string' },
  'nats-consumer-prefix': { type: 'string' },
} as const;

export const WORKER_USAGE = `Cluster pull mode (ingestion.mode: pull):
  --nats URL            also pull this node's work items from NATS JetStream (nats://host:4222; NATS_URL works too)
  --id NODE_ID          this node's id, as the ingest config's nodes: list names it (required with --nats)
  --pull-concurrency N  work items read and stored at once (default 4)
  --nats-stream NAME, --nats-result-stream NAME, --nats-consumer-prefix NAME
                        as cluster.stream, cluster.result_stream, cluster.consumer_prefix (defaults ${CLUSTER_DEFAULTS.stream}, ${CLUSTER_DEFAULTS.result_stream}, ${CLUSTER_DEFAULTS.consumer_prefix})`;

export interface WorkerFlagValues {
  nats?: string | undefined;
  id?: string | undefined;
  'pull-concurrency'?: string | undefined;
  'nats-stream'?: string | undefined;
  'nats-result-stream'?: string | undefined;
  'nats-consumer-prefix'?: string | undefined;
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NATS_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** A usage error for bad worker flags, or undefined when they are fine (or absent). */
export function checkWorkerFlags(values: WorkerFlagValues): string | undefined {
  const cluster = values['nats-stream'] ?? values['nats-result-stream'] ?? values['nats-consumer-prefix'] ?? values['pull-concurrency'];
  if (values.nats === undefined) return values.id !== undefined || cluster !== undefined ? '--id and the other pull-mode flags need --nats URL' : undefined;
  if (!/^(nats|tls|ws|wss):\/\/\S+$/.test(values.nats)) return `--nats must be a NATS URL like nats://127.0.0.1:4222, got "${values.nats}"`;
  if (values.id === undefined) return '--nats needs --id NODE_ID: the id the ingest config gives this node';
  if (!NODE_ID.test(values.id)) return `--id must be letters, digits, ".", "_" and "-" (at most 64), got "${values.id}"`;
  for (const flag of ['nats-stream', 'nats-result-stream', 'nats-consumer-prefix'] as const) {
    const v = values[flag];
    if (v !== undefined && !NATS_NAME.test(v)) return `--${flag} must be letters, digits, "_" and "-", got "${v}"`;
  }
  const c = values['pull-concurrency'];
  if (c !== undefined && (!/^\d+$/.test(c) || Number(c) < 1 || Number(c) > 256)) return `--pull-concurrency must be a whole number from 1 to 256, got "${c}"`;
  return undefined;
}

/** Starts the worker inside a running agent: it keeps what it pulls straight in the agent's own store. */
export async function startAgentWorker(values: WorkerFlagValues & { nats: string; id: string }, agent: Pick<RunningAgent, 'store' | 'maxChunkBytes'>, log: AgentLogger): Promise<RunningWorker> {
  // Loaded only here: the NATS client costs every other command ~20 MB of memory it would never use.
  const { startWorker } = await import('./worker.ts');
  return startWorker({
    natsUrl: values.nats,
    nodeId: values.id,
    sink: storeSink(agent.store, { maxChunkBytes: agent.maxChunkBytes, log }),
    ...(values['pull-concurrency'] ? { concurrency: Number(values['pull-concurrency']) } : {}),
    ...(values['nats-stream'] ? { stream: values['nats-stream'] } : {}),
    ...(values['nats-result-stream'] ? { resultStream: values['nats-result-stream'] } : {}),
    ...(values['nats-consumer-prefix'] ? { consumerPrefix: values['nats-consumer-prefix'] } : {}),
    log,
  });
}
