// The end of a run: each file's outcome from its delivered chunks (and the store's checksum), then the manifest,
// written from the run's spill (its files and chunks streamed, never all in memory).
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { ChunkShortfall, DetectionResult, IngestEvent, Manifest, ManifestChunk, ManifestFile, NodeStatus, NodeSummary, RunOrigin } from '../../shared/types.ts';
import { chunkCount, fileChecksum } from './chunks.ts';
import type { PlannedChunk } from './chunks.ts';
import type { LoadedConfig } from './config.ts';
import { Deferred, StreamedArray } from './manifest.ts';
import type { RawJson } from './manifest.ts';
import type { SourceChecks } from './source-checks.ts';
import { readFileSync } from 'node:fs';
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
    const wanted = chunkCount(object.size, input.chunkSize);
    const failedBefore = input.fileErrors.get(object.key);
    const error = failedBefore ?? (chunks.length < wanted ? 'not all chunks were delivered' : undefined);
    const file: ManifestFile = {
      key: object.key,
      size: object.size,
      ...(object.etag ? { etag: object.etag } : {}),
      checksum: fileChecksum(input.algorithm, chunks.map((c) => c.checksum)),
      chunkCount: wanted,
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
  fileCount: number;
  /** Read once each, as the manifest is written. */
  /** The files, as objects or already as JSON (RawJson, the spill's own lines). */
  files: () => Iterable<ManifestFile | RawJson> | AsyncIterable<ManifestFile | RawJson>;
  /** The chunks' manifest entries, as JSON; `totals` sums them (complete before they are read). */
  chunks: () => Iterable<RawJson>;
  totals: ManifestTotals;
  shortfall: ChunkShortfall[];
  nodes: NodeStatus[];
  counters: { retries: number; replacements: number };
}

/** Sums a manifest's totals and per-node holdings from its chunks. */
export class ManifestTotals {
  chunks = 0;
  bytes = 0;
  skipped = 0;
  readonly held = new Map<string, { chunks: number; bytes: number }>();

  add(chunk: ManifestChunk): void {
    this.count(chunk, 1);
  }

  /** Takes back what add(chunk) added (a chunk recorded again, as it now is, replaces its earlier record). */
  remove(chunk: ManifestChunk): void {
    this.count(chunk, -1);
  }

  private count(chunk: ManifestChunk, sign: 1 | -1): void {
    this.chunks += sign;
    this.bytes += sign * chunk.size;
    if (chunk.skipped) this.skipped += sign;
    for (const copy of chunk.copies) {
      const entry = this.held.get(copy.nodeId) ?? { chunks: 0, bytes: 0 };
      entry.chunks += sign;
      entry.bytes += sign * chunk.size;
      this.held.set(copy.nodeId, entry);
    }
  }
}

/** The manifest as written: every key of Manifest in order, its files and chunks streamed (writeManifest). */
export function streamedManifest(m: ManifestInput): { document: Pick<Manifest, 'runId'> & object; summary: () => Omit<Manifest, 'files' | 'chunks'> } {
  const totals = m.totals;
  const nodes = (): NodeSummary[] => m.nodes.map((s) => ({ id: s.id, kind: s.kind, location: s.location, chunks: totals.held.get(s.id)?.chunks ?? 0, bytes: totals.held.get(s.id)?.bytes ?? 0, healthy: s.state === 'healthy' }));
  const sums = (): Manifest['totals'] => ({ files: m.fileCount, chunks: totals.chunks, bytes: totals.bytes, retries: m.counters.retries, replacements: m.counters.replacements, skipped: totals.skipped });
  const head = {
    version: 1 as const,
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
  };
  const document = {
    ...head,
    files: new StreamedArray(m.files),
    chunks: new StreamedArray(m.chunks),
    nodes: new Deferred(nodes),
    totals: new Deferred(sums),
  };
  return { document, summary: () => ({ ...head, nodes: nodes(), totals: sums() }) };
}

/**
 * The manifest a run returns: its figures in memory, its files and chunks read back from the file it wrote on
 * first use (a run of a million files does not keep them; callers that want them read them then).
 */
export function manifestWithEntriesOnDisk(summary: Omit<Manifest, 'files' | 'chunks'>, path: string): Manifest {
  let entries: Pick<Manifest, 'files' | 'chunks'> | undefined;
  const load = (): Pick<Manifest, 'files' | 'chunks'> => (entries ??= JSON.parse(readFileSync(path, 'utf8')) as Manifest);
  const manifest = { ...summary } as Manifest;
  Object.defineProperty(manifest, 'files', { enumerable: true, get: () => load().files });
  Object.defineProperty(manifest, 'chunks', { enumerable: true, get: () => load().chunks });
  return manifest;
}

/** The run's outcome, in order of precedence. */
export function runStatus(s: { cancelled: boolean; fatal: boolean; failedFiles: number; shortfall: readonly ChunkShortfall[] }): Manifest['status'] {
  if (s.cancelled) return 'cancelled';
  if (s.fatal) return 'failed';
  if (s.failedFiles > 0) return 'partial';
  return s.shortfall.length > 0 ? 'degraded' : 'complete';
}
