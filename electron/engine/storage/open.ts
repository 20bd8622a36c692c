// Picks the store for the detected cloud from the config: a local folder (simulation or `local`), or the real store.
import type { CloudName, DataSourceConfig } from '../../../shared/config/types.ts';
import type { LoadedConfig } from '../config.ts';
import { retryPolicyFromConfig } from '../retry.ts';
import { Bucket } from './bucket.ts';
import type { StorageDriver } from './driver.ts';
import { LocalDriver } from './local.ts';
import type { LocalDriverOptions } from './local.ts';
import { DriverConditionError } from './cloud-common.ts';

export class SourceSelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceSelectionError';
  }
}

export function sourceConfigFor(loaded: LoadedConfig, cloud: CloudName): DataSourceConfig {
  const source = loaded.config.data_sources[cloud];
  if (source) return source;
  const configured = Object.keys(loaded.config.data_sources);
  throw new SourceSelectionError(
    `The detected cloud is ${cloud}, but ${loaded.path} has no data_sources.${cloud} entry (configured: ${configured.join(', ') || 'none'}).` +
      ` Fix: choose one with CLOUD_PROVIDER=<cloud> or --cloud <cloud>` +
      (cloud === 'local' ? ', or add data_sources.local: { type: "local", path: "./test_data/local_sample" }.' : `, or add a data_sources.${cloud} entry.`),
  );
}

/** How a local folder store is read: see LocalDriverOptions. */
export type LocalOptions = Pick<LocalDriverOptions, 'statFiles'>;

export async function openDriver(loaded: LoadedConfig, cloud: CloudName, local: LocalOptions = {}): Promise<StorageDriver> {
  const source = sourceConfigFor(loaded, cloud);
  if (source.type === 'local') return new LocalDriver(loaded.resolve(source.path ?? '.'), local);
  if (loaded.config.use_local_simulation) {
    if (!source.local_simulation) {
      throw new SourceSelectionError(`use_local_simulation is true but data_sources.${cloud} has no local_simulation folder in ${loaded.path}. Fix: add local_simulation: "./test_data/${cloud}_simulation", or set use_local_simulation: false to read the real store.`);
    }
    return new LocalDriver(loaded.resolve(source.local_simulation), local);
  }
  return openCloudDriver(cloud, source);
}

/** Each SDK is loaded only when its store is used: together they cost seconds and ~100 MB at start-up. */
async function openCloudDriver(cloud: CloudName, source: DataSourceConfig): Promise<StorageDriver> {
  // Credentials come from each SDK's own chain (env, profiles, identities), never from the YAML.
  try {
    switch (source.type) {
      case 's3':
        return new (await import('./s3.ts')).S3Driver(source);
      case 'gcs':
        return new (await import('./gcs.ts')).GcsDriver(source);
      case 'blob':
        return new (await import('./azure.ts')).AzureBlobDriver(source);
      default:
        throw new SourceSelectionError(`data_sources.${cloud} has type ${source.type}, which has no cloud store. Fix: use s3, gcs or blob, or set use_local_simulation: true.`);
    }
  } catch (error) {
    if (error instanceof DriverConditionError) throw new SourceSelectionError(`data_sources.${cloud}: ${error.message}`);
    throw error;
  }
}

export async function openSource(loaded: LoadedConfig, cloud: CloudName, local: LocalOptions = {}): Promise<Bucket> {
  return new Bucket(await openDriver(loaded, cloud, local), retryPolicyFromConfig(loaded.config.ingestion));
}
