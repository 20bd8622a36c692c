// Domain models shared by the engine, the CLI and the renderer: detection, chunks, manifests, progress events.
import type { ChecksumAlgorithm, CloudName, IngestConfig } from './config/types.ts';

export type DetectionSignal = 'env' | 'flag' | 'dmi' | 'metadata' | 'default';

export interface ProbeOutcome {
  cloud: Exclude<CloudName, 'local'>;
  endpoint: string;
  ok: boolean;
  detail: string;
  elapsedMs: number;
}

export interface DetectionResult {
  cloud: CloudName;
  signal: DetectionSignal;
  /** Human-readable reason, e.g. "sys_vendor is 'Amazon EC2'". */
  detail: string;
  elapsedMs: number;
  probes: ProbeOutcome[];
}

export interface Checksum {
  algorithm: ChecksumAlgorithm;
  hex: string;
}

export type ChunkState = 'queued' | 'reading' | 'sending' | 'verified' | 'retried' | 'failed' | 'moved' | 'skipped';

export interface ChunkCopy {
  nodeId: string;
  /** Where the node keeps it: a file path for folder nodes, a URL path for agents. */
  location: string;
}

/** A CRC-32C or CRC-32 (IEEE) of some bytes, as an unsigned 32-bit integer. */
export interface ChunkCrc {
  kind: 'crc32c' | 'crc32';
  value: number;
}

export interface ManifestChunk {
  id: string;
  file: string;
  index: number;
  offset: number;
  size: number;
  checksum: string;
  /** CRC of the chunk's bytes, kept when its file is checked against the store's CRC (combined, not read again). */
  crc?: ChunkCrc;
  /** First copy's node; kept for readers of the original manifest shape. */
  node: string;
  path: string;
  copies: ChunkCopy[];
  attempts: number;
  /**
   * Cloud reads of this chunk (or of its parts) that broke and were asked for again from the first byte not yet
   * received, within its attempts: a transient fault that cost no attempt.
   */
  readRetries?: number;
  /** Nodes this chunk was moved away from after they failed. */
  movedFrom: string[];
  skipped: boolean;
  /**
   * A shard (ingestion.pack_below_mb): the files packed into it, in order. Kept in the run's journal; the
   * manifest lists them as files (ManifestFile.packed) instead.
   */
  members?: PackedMember[];
}

/** One copy of a chunk on a node: a row of that node's table in the app (a chunk with two copies there is two rows). */
export interface NodeChunkRow {
  chunk: ManifestChunk;
  location: string;
}

/** A file packed into a shard: a tar member whose data starts `offset` bytes into the shard. */
export interface PackedMember {
  key: string;
  size: number;
  etag?: string;
  offset: number;
  /** The file's own checksum (the run's algorithm). */
  checksum: string;
}

export interface ManifestFile {
  key: string;
  size: number;
  /** Source version marker (ETag, generation, or size+mtime for local files). */
  etag?: string;
  /**
   * Whole-file checksum. For a file of one chunk it is that chunk's checksum (a plain md5/sha256 of the file).
   * For more chunks it is the composite `hash(concat(chunk digests))-N`, as S3 does for multipart ETags.
   */
  checksum: string;
  chunkCount: number;
  status: 'complete' | 'failed';
  error?: string;
  /** Which store-provided checksum was checked, if any (e.g. "s3-etag-md5", "gcs-crc32c"). */
  sourceChecksum?: { kind: string; value: string; matched: boolean };
  /** Packed (ingestion.pack_below_mb): the file is a member of this shard (a chunk id), its data `offset` bytes in. chunkCount is 0. */
  packed?: { shard: string; offset: number };
}

export interface RunOrigin {
  tool: 'cli' | 'app';
  user?: string;
  host?: string;
}

export interface ChunkShortfall {
  chunkId: string;
  file: string;
  /** Verified copies on nodes healthy at the end of the run. */
  copies: number;
  wanted: number;
  reason: string;
}

export interface NodeSummary {
  id: string;
  kind: 'folder' | 'agent';
  location: string;
  chunks: number;
  bytes: number;
  healthy: boolean;
}

export interface Manifest {
  version: 1;
  runId: string;
  startedAt: string;
  finishedAt: string;
  /**
   * complete: every chunk has `replicas` verified copies on nodes healthy at the end. degraded: every file was
   * read, but some chunks have fewer good copies than that (see `shortfall`). partial: some files failed.
   */
  status: 'complete' | 'degraded' | 'partial' | 'failed' | 'cancelled';
  /** Chunks with fewer verified copies on healthy nodes than `replicas`, and why (a degraded run). */
  shortfall?: ChunkShortfall[];
  /** Which manifest this one follows (repair writes the next version of a run's manifest). */
  previous?: string;
  /** Who ran it, from where. */
  ranBy?: RunOrigin;
  cloud: CloudName;
  detection: DetectionResult;
  source: { kind: string; location: string; endpoint?: string };
  checksumAlgorithm: ChecksumAlgorithm;
  chunkSize: number;
  config: IngestConfig;
  configPath: string;
  files: ManifestFile[];
  chunks: ManifestChunk[];
  nodes: NodeSummary[];
  totals: { files: number; chunks: number; bytes: number; retries: number; replacements: number; skipped: number };
}

export type NodeHealthState = 'healthy' | 'suspect' | 'unhealthy' | 'full';

export interface NodeStatus {
  id: string;
  kind: 'folder' | 'agent';
  location: string;
  state: NodeHealthState;
  latencyMs?: number;
  freeBytes?: number;
  chunkCount?: number;
  bytesHeld?: number;
  error?: string;
  checkedAt: string;
}

/** Events the engine emits while ingesting; the CLI and the app fold them into progress views. */
export type IngestEvent =
  | {
      type: 'run-started';
      runId: string;
      files: number;
      chunks: number;
      bytes: number;
      nodes: NodeStatus[];
      source: { kind: string; location: string; endpoint?: string };
    }
  /**
   * The listing so far: delivery starts while the store is still being listed, so a run's totals grow until an event
   * with `done` gives the final ones (run-started carries none yet: zeros).
   */
  | { type: 'listed'; files: number; chunks: number; bytes: number; done: boolean }
  | { type: 'chunk'; id: string; file: string; index: number; size: number; state: ChunkState; nodeId?: string; attempt: number; error?: string }
  | { type: 'bytes'; chunkId: string; nodeId: string; bytes: number }
  | { type: 'node'; status: NodeStatus }
  | { type: 'file'; key: string; status: 'complete' | 'failed'; error?: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'run-finished'; runId: string; status: Manifest['status']; manifestPath: string; elapsedMs: number; bytes: number };

export interface VerifyProblem {
  chunkId: string;
  nodeId: string;
  reason: 'missing' | 'checksum_mismatch' | 'unreadable';
  detail: string;
  /** Where the chunk belongs, so a problem can be shown without looking the chunk up. */
  file?: string;
  index?: number;
  offset?: number;
  size?: number;
  /** The manifest's checksum, and what the copy hashed to (checksum_mismatch only). */
  expected?: string;
  found?: string;
  /** A damaged copy of a shard: the packed files whose bytes in it are damaged. */
  members?: string[];
}

/** What repair did for one copy. */
export interface RepairAction {
  chunkId: string;
  file: string;
  nodeId: string;
  /** restored from another node's good copy, or read again from the source (same version). */
  from: 'copy' | 'source';
  /** The node the good copy came from (from: 'copy'). */
  sourceNodeId?: string;
  outcome: 'restored' | 'failed';
  detail?: string;
}

export interface RepairReport {
  /** The manifest repair read, and the next version it wrote. */
  previousManifestPath: string;
  manifestPath: string;
  /** Copies checked. */
  checked: number;
  /** Copies that were missing or damaged before repair. */
  problems: VerifyProblem[];
  actions: RepairAction[];
  /** Files whose source changed since the run (never stitched from two versions). */
  changedSources: string[];
  /** Status of the manifest repair wrote. */
  status: Manifest['status'];
}

/** Repair's progress: checking copies, then restoring them. */
export type RepairEvent =
  | { type: 'repair-checked'; done: number; total: number }
  | { type: 'repair-action'; action: RepairAction; done: number; total: number }
  | { type: 'repair-finished'; report: RepairReport };

export interface VerifyReport {
  manifestPath: string;
  checked: number;
  ok: number;
  /** Copies checked on each node, by node id. */
  checkedPerNode: Record<string, number>;
  problems: VerifyProblem[];
  /** Chunk ids with no good copy anywhere. */
  unrecoverable: string[];
}

export interface ReassembleReport {
  key: string;
  outPath: string;
  bytes: number;
  /** Whole-file checksum from the manifest. */
  expected: string;
  /** The same checksum computed from the bytes written. */
  actual: string;
  matched: boolean;
  /** Plain MD5 of the output, comparable with `md5sum`. */
  md5Hex: string;
}

/** A run that was cancelled or killed and can be continued (`run --resume RUN_ID`, Resume in the app). */
export interface ResumableRun {
  runId: string;
  startedAt: string;
  /** Chunks already on their nodes, per the run's journal. */
  chunksDone: number;
  /** The status of its last end line, if it ended (cancelled / partial / failed); absent when it was killed. */
  lastStatus?: string;
}
