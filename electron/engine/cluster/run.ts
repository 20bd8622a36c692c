// What the ingest run needs to switch to pull mode: a coordinator for this run, set up from the config (the
// cluster section, NATS_URL, the source as the workers open it). The run then hands it each transfer.
import type { ChecksumAlgorithm, CloudName } from '../../../shared/config/types.ts';
import type { IngestEvent } from '../../../shared/types.ts';
import type { ObjectInfo, SourceInfo } from '../storage/driver.ts';
import { chunkCount } from '../chunks.ts';
import { chooseSourceCheck } from '../storage/source-checksum.ts';
import type { LoadedConfig } from '../config.ts';
import type { NodeError } from '../nodes/node.ts';
import type { PullCoordinator } from './coordinator.ts';
import { describeSource } from './store.ts';

export type { PullCoordinator } from './coordinator.ts';

export function isPullMode(loaded: LoadedConfig): boolean {
  return loaded.config.ingestion.mode === 'pull';
}

export async function openPullCoordinator(o: {
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
  // Loaded only in pull mode: the NATS client costs a run that does not use it ~20 MB of memory.
  const [{ clusterSettings }, { PullCoordinator }] = await Promise.all([import('./nats.ts'), import('./coordinator.ts')]);
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

/**
 * The objects whose store checksum pull mode checks: those a chunk's own checksum or the workers' chunk CRCs
 * settle. A file whose store keeps only an MD5 of the whole object (more than one chunk) could be checked only by
 * hashing all its bytes again in order on this machine, reading them back from the nodes: the very traffic pull
 * mode takes off the coordinator. Those are left out, and the run says so; every chunk is still verified by its
 * checksum where it is stored.
 */
type PullCheckOptions = { store: SourceInfo['kind']; chunkSize: number; algorithm: ChecksumAlgorithm };

/** Whether pull mode leaves this file's store check out: its whole-object MD5 would read it back through this machine. */
export function uncheckedInPull(object: ObjectInfo, o: PullCheckOptions): boolean {
  return chooseSourceCheck(object, o.store, chunkCount(object.size, o.chunkSize), o.algorithm)?.mode === 'follow';
}

export function checkableInPull(objects: ObjectInfo[], o: PullCheckOptions): ObjectInfo[] {
  return objects.filter((object) => !uncheckedInPull(object, o));
}

export function pullUncheckedNotice(count: number): IngestEvent {
  return { type: 'log', level: 'info', message: `pull mode: ${count} file(s) are not checked against the store's whole-object MD5 (that would read them back through this machine); their chunks are checked where they are stored` };
}
