// The configuration as the engine uses it, after validation and defaults.
// Pure types: shared by the engine, the CLI and the renderer.

export const CLOUDS = ['aws', 'gcp', 'azure', 'local'] as const;
export type CloudName = (typeof CLOUDS)[number];

export const SOURCE_TYPES = ['s3', 'gcs', 'blob', 'local'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/** crc32c: not cryptographic, on the CPU's CRC instructions: one cheap pass, leaving a store's MD5 check the only cryptographic one. */
export const CHECKSUM_ALGORITHMS = ['md5', 'sha256', 'crc32c'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export const PLACEMENT_STRATEGIES = ['balanced', 'round_robin', 'stable'] as const;
export type PlacementStrategy = (typeof PLACEMENT_STRATEGIES)[number];

/** push: this machine reads every chunk and sends it to the nodes. pull: the node agents read their own chunks (cluster). */
export const INGESTION_MODES = ['push', 'pull'] as const;
export type IngestionMode = (typeof INGESTION_MODES)[number];

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
  mode: IngestionMode;
  /** Files smaller than this many MiB are packed into chunk-sized POSIX tar shards (WebDataset layout); 0: off. */
  pack_below_mb: number;
}

export interface IngestConfig {
  data_sources: Partial<Record<CloudName, DataSourceConfig>>;
  ingestion: IngestionConfig;
  use_local_simulation: boolean;
  /** Absent: one folder node per configured cloud under ./received_chunks/. */
  nodes?: NodeConfig[];
  /** Pull mode's NATS JetStream settings; absent: the defaults (CLUSTER_DEFAULTS) and NATS_URL. */
  cluster?: ClusterConfig;
}

/** Where pull mode's work items and results live (NATS JetStream). */
export interface ClusterConfig {
  /** nats://host:port (a list separated by commas for a cluster); absent: the NATS_URL environment variable. */
  nats_url?: string;
  /** WorkQueue stream of work items (file storage). */
  stream: string;
  /** Stream the workers record their results in. */
  result_stream: string;
  /** Each worker's durable pull consumer is named `<consumer_prefix>-<node id>`. */
  consumer_prefix: string;
  /** A work item not acked (nor marked working) within this long is delivered again. */
  ack_wait_seconds: number;
  /** Deliveries of one work item before it is given up and reported. */
  max_deliver: number;
  /** A worker not heard from for this long is dead: the coordinator places its chunks on the others. */
  worker_timeout_seconds: number;
}

export const CLUSTER_DEFAULTS: ClusterConfig = {
  stream: 'CLOUD_INGEST_WORK',
  result_stream: 'CLOUD_INGEST_RESULTS',
  consumer_prefix: 'cloud-ingest-worker',
  ack_wait_seconds: 30,
  max_deliver: 5,
  worker_timeout_seconds: 10,
};

export const INGESTION_DEFAULTS: IngestionConfig = {
  chunk_size_mb: 100,
  max_concurrent_chunks: 10,
  retry_attempts: 3,
  retry_delay_seconds: 5,
  checksum: 'md5',
  placement: 'balanced',
  file_pattern: '**',
  replicas: 1,
  manifest_dir: './.cloud-ingest/runs',
  mode: 'push',
  pack_below_mb: 0,
};

export const MIB = 1024 * 1024;

export function chunkSizeBytes(ingestion: Pick<IngestionConfig, 'chunk_size_mb'>): number {
  return Math.round(ingestion.chunk_size_mb * MIB);
}
