// The configuration as the engine uses it, after validation and defaults.
// Pure types: shared by the engine, the CLI and the renderer.

export const CLOUDS = ['aws', 'gcp', 'azure', 'local'] as const;
export type CloudName = (typeof CLOUDS)[number];

export const SOURCE_TYPES = ['s3', 'gcs', 'blob', 'local'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

export const CHECKSUM_ALGORITHMS = ['md5', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export const PLACEMENT_STRATEGIES = ['balanced', 'round_robin'] as const;
export type PlacementStrategy = (typeof PLACEMENT_STRATEGIES)[number];

export interface DataSourceConfig {
  type: SourceType;
  /** S3 and GCS. */
  bucket?: string;
  /** Azure Blob. */
  container?: string;
  region?: string;
  /** Folder that stands in for the bucket when `use_local_simulation` is true. */
  local_simulation?: string;
  /** Folder for `type: local`. */
  path?: string;
  /** Only keys under this prefix are ingested. */
  prefix?: string;
  /** S3-compatible stores, emulators, sovereign clouds. */
  endpoint?: string;
}

export interface NodeConfig {
  id: string;
  cloud?: CloudName;
  /** Local folder node. */
  path?: string;
  /** Remote node agent, `http://host:port`. */
  url?: string;
  /** Name of the environment variable holding the agent's bearer token. */
  token_env?: string;
}

export interface IngestionConfig {
  chunk_size_mb: number;
  max_concurrent_chunks: number;
  retry_attempts: number;
  retry_delay_seconds: number;
  checksum: ChecksumAlgorithm;
  placement: PlacementStrategy;
  file_pattern: string;
  replicas: number;
  /** Where run manifests are written. */
  manifest_dir: string;
}

export interface IngestConfig {
  data_sources: Partial<Record<CloudName, DataSourceConfig>>;
  ingestion: IngestionConfig;
  use_local_simulation: boolean;
  /** Absent: one folder node per configured cloud under ./received_chunks/. */
  nodes?: NodeConfig[];
}

export const INGESTION_DEFAULTS: IngestionConfig = {
  chunk_size_mb: 100,
  max_concurrent_chunks: 10,
  retry_attempts: 3,
  retry_delay_seconds: 5,
  checksum: 'md5',
  placement: 'balanced',
  file_pattern: '**',
  replicas: 1,
  manifest_dir: './received_chunks/manifests',
};

export const MIB = 1024 * 1024;

export function chunkSizeBytes(ingestion: Pick<IngestionConfig, 'chunk_size_mb'>): number {
  return Math.round(ingestion.chunk_size_mb * MIB);
}
