// The pull-mode wire contract between the coordinator (`cloud-ingest run` with ingestion.mode: pull) and the
// workers (node agents started with --nats). Every message is one JSON object; `validators.ts` checks each one at
// the end that receives it, so a malformed message fails only itself. Nothing here carries a credential: a store
// descriptor names a bucket and an endpoint, and each worker reaches the store through its own SDK credential chain.
import type { ChecksumAlgorithm } from '../config/types.ts';
import type { Checksum, ChunkCrc } from '../types.ts';

export const CONTRACT_VERSION = 1;

/** Enough for a worker to open the same store the coordinator listed, through the same drivers. */
export type StoreDescriptor =
  | { kind: 'local'; /** Absolute folder path, the same on every worker (a shared mount). */ path: string }
  | { kind: 's3'; bucket: string; region?: string; endpoint?: string }
  | { kind: 'gcs'; bucket: string; endpoint?: string }
  | { kind: 'azure'; container: string; endpoint?: string };

/** One chunk for one node: read `[offset, offset + size)` of `key` at the pinned version, hash it, keep it. */
export interface WorkItem {
  v: typeof CONTRACT_VERSION;
  runId: string;
  /** The chunk id (`<key>_chunk_<index>`), the same as push mode's. */
  chunkId: string;
  key: string;
  index: number;
  offset: number;
  size: number;
  /** The object's size when listed; a read that finds another size is the source having changed. */
  objectSize: number;
  /** Version pinned at listing: ETag, GCS generation, or size+mtime for local files. */
  etag?: string;
  /** The node this item is for (its subject names it too). */
  nodeId: string;
  /** Every node the chunk is placed on (replicas), for the record. */
  targets: string[];
  checksum: ChecksumAlgorithm;
  /** Also take the bytes' CRC of this kind (the file is checked against a CRC the store keeps). */
  crc?: ChunkCrc['kind'];
  store: StoreDescriptor;
}

interface ResultBase {
  v: typeof CONTRACT_VERSION;
  runId: string;
  chunkId: string;
  nodeId: string;
  /** Which delivery of the work item this answers (JetStream's delivery count, from 1). */
  delivery: number;
  at: string;
}

/** stored: written now. exists: an identical copy of the same version and range was already there; nothing written. */
export interface StoredResult extends ResultBase {
  status: 'stored' | 'exists';
  size: number;
  checksum: Checksum;
  crc?: ChunkCrc;
  /** Where the agent serves it (`/v1/chunks/<id>`), as push mode records agent copies. */
  location: string;
  /** Source bytes this worker read for the item (0 for exists). */
  bytesRead: number;
  elapsedMs: number;
}

/** The worker gave the item up for good (and terminated it): retrying cannot help. */
export interface FailedResult extends ResultBase {
  status: 'failed';
  /** A portable code: a StorageErrorCode (`precondition_failed`, `not_found`, ...), `invalid_item`, `store_full`, `io`. */
  code: string;
  reason: string;
}

export type WorkResult = StoredResult | FailedResult;

/** A worker's periodic sign of life (core NATS, not stored). */
export interface WorkerHeartbeat {
  v: typeof CONTRACT_VERSION;
  nodeId: string;
  at: string;
  startedAt: string;
  /** Items being worked on now. */
  inFlight: number;
  /** Items finished since the worker started: stored, already there, failed. */
  stored: number;
  existed: number;
  failed: number;
  bytesRead: number;
  /** Chunks and bytes the agent holds, and what it still has room for. */
  chunkCount: number;
  bytesHeld: number;
  freeBytes: number;
}

/** Bytes of an item read so far (core NATS, not stored): progress bars between results. */
export interface WorkProgress {
  v: typeof CONTRACT_VERSION;
  runId: string;
  chunkId: string;
  nodeId: string;
  delivery: number;
  bytes: number;
}

// ---- subjects --------------------------------------------------------------------------------------------------
// Subject tokens cannot hold '.', '*', '>' or whitespace; run and node ids may hold dots, so tokens are encoded.

export const SUBJECT_ROOT = 'cloud-ingest';

/** A subject token for any text: letters, digits, '_' and '-' as they are, every other UTF-8 byte as %XX. */
export function subjectToken(text: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function workSubject(runId: string, nodeId: string): string {
  return `${SUBJECT_ROOT}.work.${subjectToken(runId)}.${subjectToken(nodeId)}`;
}

/** What one node's consumer takes: its items of every run. */
export function workFilter(nodeId: string): string {
  return `${SUBJECT_ROOT}.work.*.${subjectToken(nodeId)}`;
}

export function workStreamSubjects(): string[] {
  return [`${SUBJECT_ROOT}.work.>`];
}

export function resultSubject(runId: string, nodeId: string): string {
  return `${SUBJECT_ROOT}.result.${subjectToken(runId)}.${subjectToken(nodeId)}`;
}

export function resultFilter(runId: string): string {
  return `${SUBJECT_ROOT}.result.${subjectToken(runId)}.*`;
}

export function resultStreamSubjects(): string[] {
  return [`${SUBJECT_ROOT}.result.>`];
}

export function heartbeatSubject(nodeId: string): string {
  return `${SUBJECT_ROOT}.heartbeat.${subjectToken(nodeId)}`;
}

export const HEARTBEAT_FILTER = `${SUBJECT_ROOT}.heartbeat.*`;

export function progressSubject(runId: string, nodeId: string): string {
  return `${SUBJECT_ROOT}.progress.${subjectToken(runId)}.${subjectToken(nodeId)}`;
}

export function progressFilter(runId: string): string {
  return `${SUBJECT_ROOT}.progress.${subjectToken(runId)}.*`;
}

/** The durable pull consumer of one node: `<prefix>-<node id>`, every character but letters, digits and '-' as _XX (one id, one name). */
export function consumerName(prefix: string, nodeId: string): string {
  let token = '';
  for (const byte of new TextEncoder().encode(nodeId)) {
    const c = String.fromCharCode(byte);
    token += /[A-Za-z0-9-]/.test(c) ? c : `_${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `${prefix}-${token}`;
}

/**
 * The message id JetStream deduplicates work items by: the chunk id for the node it is placed on, within the run,
 * plus which publish it is (`publish`, unique per coordinator session and transfer), so re-sending one publish
 * whose acknowledgement was lost never makes a second item, while a later transfer of the same chunk is never
 * mistaken for it.
 */
export function workMessageId(item: Pick<WorkItem, 'runId' | 'chunkId' | 'nodeId'>, publish: string): string {
  return `${item.runId}|${item.nodeId}|${item.chunkId}|${publish}`;
}

export function resultMessageId(result: Pick<WorkResult, 'runId' | 'chunkId' | 'nodeId' | 'delivery'>): string {
  return `${result.runId}|${result.nodeId}|${result.chunkId}|${result.delivery}`;
}
