// The end of a run: each file's outcome from its delivered chunks (and the store's checksum), then the manifest.
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { ChunkShortfall, DetectionResult, IngestEvent, Manifest, ManifestChunk, ManifestFile, NodeStatus, NodeSummary, RunOrigin } from '../../shared/types.ts';
import { fileChecksum } from './chunks.ts';
import type { PlannedChunk } from './chunks.ts';
import type { LoadedConfig } from './config.ts';
import type { SourceChecks } from './source-checks.ts';
import type { ObjectInfo } from './storage/driver.ts';

export interface FileSummaryInput {
  objects: readonly ObjectInfo[];
  plan: readonly PlannedChunk[];
  delivered: readonly (ManifestChunk | undefined)[];
  chunkSize: number;
  algorithm: ChecksumAlgorithm;
  fileErrors: ReadonlyMap<string, string>;
  checks: SourceChecks | undefined;
  signal?: AbortSignal;
  emit: (event: IngestEvent) => void;
  /** A packed file's entry (from its shard); undefined for a file that was chunked. */
  packedFile?: (object: ObjectInfo) => ManifestFile | undefined;
}

export async function summarizeFiles(input: FileSummaryInput): Promise<ManifestFile[]> {
  const { objects, plan, delivered, signal } = input;
  const cancelled = (): boolean => signal?.aborted === true;
  const files: ManifestFile[] = [];
  // The plan follows `objects`, each file's chunks together (planChunks): one pass, no per-file lists held at once.
  let next = 0;
  for (const object of objects) {
    const packed = input.packedFile?.(object);
    if (packed) {
      if (!cancelled()) input.emit({ type: 'file', key: object.key, status: packed.status, ...(packed.error ? { error: packed.error } : {}) });
      files.push(packed);
      continue;
    }
    const chunks: ManifestChunk[] = [];
    for (; next < plan.length && plan[next]!.object === object; next++) {
      const done = delivered[next];
      if (done) chunks.push(done);
    }
    const chunkCount = Math.ceil(object.size / input.chunkSize);
    const failedBefore = input.fileErrors.get(object.key);
    const error = failedBefore ?? (chunks.length < chunkCount ? 'not all chunks were delivered' : undefined);
    const file: ManifestFile = {
      key: object.key,
      size: object.size,
      ...(object.etag ? { etag: object.etag } : {}),
      checksum: fileChecksum(input.algorithm, chunks.map((c) => c.checksum)),
      chunkCount,
      status: error ? 'failed' : 'complete',
      ...(error ? { error } : {}),
    };
    if (!error && !cancelled()) await input.checks?.check(file, object, chunks);
    if (failedBefore === undefined && !cancelled()) input.emit({ type: 'file', key: object.key, status: file.status, ...(file.error ? { error: file.error } : {}) });
    files.push(file);
  }
  return files;
}

export interface ManifestInput {
  ranBy?: RunOrigin;
  loaded: LoadedConfig;
  runId: string;
  startedAt: Date;
  status: Manifest['status'];
  detection: DetectionResult;
  source: Manifest['source'];
  algorithm: ChecksumAlgorithm;
  chunkSize: number;
  files: ManifestFile[];
  chunks: ManifestChunk[];
  shortfall: ChunkShortfall[];
  nodes: NodeStatus[];
  counters: { retries: number; replacements: number };
}

export function buildManifest(m: ManifestInput): Manifest {
  const held = new Map<string, { chunks: number; bytes: number }>();
  for (const chunk of m.chunks) {
    for (const copy of chunk.copies) {
      const entry = held.get(copy.nodeId) ?? { chunks: 0, bytes: 0 };
      entry.chunks++;
      entry.bytes += chunk.size;
      held.set(copy.nodeId, entry);
    }
  }
  const nodes: NodeSummary[] = m.nodes.map((s) => ({ id: s.id, kind: s.kind, location: s.location, chunks: held.get(s.id)?.chunks ?? 0, bytes: held.get(s.id)?.bytes ?? 0, healthy: s.state === 'healthy' }));
  return {
    version: 1,
    runId: m.runId,
    startedAt: m.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    status: m.status,
    ...(m.shortfall.length > 0 ? { shortfall: m.shortfall } : {}),
    ...(m.ranBy ? { ranBy: m.ranBy } : {}),
    cloud: m.detection.cloud,
    detection: m.detection,
    source: m.source,
    checksumAlgorithm: m.algorithm,
    chunkSize: m.chunkSize,
    config: m.loaded.config,
    configPath: m.loaded.path,
    files: m.files,
    chunks: m.chunks,
    nodes,
    totals: {
      files: m.files.length,
      chunks: m.chunks.length,
      bytes: m.chunks.reduce((sum, c) => sum + c.size, 0),
      retries: m.counters.retries,
      replacements: m.counters.replacements,
      skipped: m.chunks.filter((c) => c.skipped).length,
    },
  };
}

/** The run's outcome, in order of precedence. */
export function runStatus(s: { cancelled: boolean; fatal: boolean; files: readonly ManifestFile[]; shortfall: readonly ChunkShortfall[] }): Manifest['status'] {
  if (s.cancelled) return 'cancelled';
  if (s.fatal) return 'failed';
  if (s.files.some((f) => f.status === 'failed')) return 'partial';
  return s.shortfall.length > 0 ? 'degraded' : 'complete';
}
