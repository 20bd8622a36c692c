// The store a work item names, both ways: the coordinator describes the source it listed (no credentials, paths
// made absolute), and a worker opens the same store from that description through the same drivers, the portable
// Bucket wrapper and its own SDK credential chain and env conventions (AWS_*, STORAGE_EMULATOR_HOST, AZURE_*).
import type { CloudName, DataSourceConfig } from '../../../shared/config/types.ts';
import type { StoreDescriptor } from '../../../shared/cluster/contract.ts';
import type { LoadedConfig } from '../config.ts';
import type { RetryPolicy } from '../retry.ts';
import { Bucket } from '../storage/bucket.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { LocalDriver } from '../storage/local.ts';
import { sourceConfigFor } from '../storage/open.ts';

/** What a worker needs to open the source `run` reads for `cloud`. */
export function describeSource(loaded: LoadedConfig, cloud: CloudName): StoreDescriptor {
  const source = sourceConfigFor(loaded, cloud);
  if (source.type === 'local') return { kind: 'local', path: loaded.resolve(source.path ?? '.') };
  if (loaded.config.use_local_simulation && source.local_simulation) return { kind: 'local', path: loaded.resolve(source.local_simulation) };
  const endpoint = source.endpoint ? { endpoint: source.endpoint } : {};
  switch (source.type) {
    case 's3':
      return { kind: 's3', bucket: source.bucket!, ...(source.region ? { region: source.region } : {}), ...endpoint };
    case 'gcs':
      return { kind: 'gcs', bucket: source.bucket!, ...endpoint };
    case 'blob':
      return { kind: 'azure', container: source.container!, ...endpoint };
  }
}

function sourceConfig(store: Exclude<StoreDescriptor, { kind: 'local' }>): DataSourceConfig {
  const endpoint = store.endpoint ? { endpoint: store.endpoint } : {};
  switch (store.kind) {
    case 's3':
      return { type: 's3', bucket: store.bucket, ...(store.region ? { region: store.region } : {}), ...endpoint };
    case 'gcs':
      return { type: 'gcs', bucket: store.bucket, ...endpoint };
    case 'azure':
      return { type: 'blob', container: store.container, ...endpoint };
  }
}

async function openDriver(store: StoreDescriptor): Promise<StorageDriver> {
  if (store.kind === 'local') return new LocalDriver(store.path);
  const source = sourceConfig(store);
  // Each SDK is loaded only when a work item needs its store.
  switch (store.kind) {
    case 's3':
      return new (await import('../storage/s3.ts')).S3Driver(source);
    case 'gcs':
      return new (await import('../storage/gcs.ts')).GcsDriver(source);
    case 'azure':
      return new (await import('../storage/azure.ts')).AzureBlobDriver(source);
  }
}

/** Open stores by description, one Bucket each, kept for the worker's life (their SDK clients pool connections). */
export class StoreCache {
  private readonly open = new Map<string, Promise<Bucket>>();
  private readonly retry: RetryPolicy;

  constructor(retry: RetryPolicy) {
    this.retry = retry;
  }

  get(store: StoreDescriptor): Promise<Bucket> {
    const key = JSON.stringify(store);
    let bucket = this.open.get(key);
    if (!bucket) {
      bucket = openDriver(store).then((driver) => new Bucket(driver, this.retry));
      // A store that failed to open (a bad descriptor, an SDK that will not load) is tried afresh next time.
      bucket.catch(() => this.open.delete(key));
      this.open.set(key, bucket);
    }
    return bucket;
  }

  async close(): Promise<void> {
    const buckets = await Promise.allSettled(this.open.values());
    this.open.clear();
    for (const b of buckets) if (b.status === 'fulfilled') await b.value.close().catch(() => undefined);
  }
}
