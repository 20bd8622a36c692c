// What the ingest run needs to switch to pull mode: a coordinator for this run, set up from the config (the
// cluster section, NATS_URL, the source as the workers open it). The run then hands it each transfer.
import type { CloudName } from '../../../shared/config/types.ts';
import type { IngestEvent } from '../../../shared/types.ts';
import type { LoadedConfig } from '../config.ts';
import type { NodeError } from '../nodes/node.ts';
import { PullCoordinator } from './coordinator.ts';
import { clusterSettings } from './nats.ts';
import { describeSource } from './store.ts';

export { PullCoordinator } from './coordinator.ts';

export function isPullMode(loaded: LoadedConfig): boolean {
  return loaded.config.ingestion.mode === 'pull';
}

export function openPullCoordinator(o: {
  loaded: LoadedConfig;
  cloud: CloudName;
  runId: string;
  /** The run's node ids: each must have a worker pulling (an agent started with --nats and --id). */
  nodes: readonly string[];
  emit: (event: IngestEvent) => void;
  /** A worker went silent: the run marks its node down (and sends its chunks elsewhere). */
  onWorkerLost: (nodeId: string, error: NodeError) => void;
  signal?: AbortSignal;
}): Promise<PullCoordinator> {
  const settings = clusterSettings(o.loaded.config.cluster);
  o.emit({ type: 'log', level: 'info', message: `pull mode: ${o.nodes.length} worker(s) read their own chunks; work items go to ${settings.stream} on ${settings.nats_url.replace(/\/\/[^@/,]*@/g, '//')}` });
  return PullCoordinator.open({
    settings,
    runId: o.runId,
    store: describeSource(o.loaded, o.cloud),
    checksum: o.loaded.config.ingestion.checksum,
    nodes: o.nodes,
    onEvent: o.emit,
    onWorkerLost: o.onWorkerLost,
    ...(o.signal ? { signal: o.signal } : {}),
  });
}
