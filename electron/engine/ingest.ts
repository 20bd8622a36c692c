// The ingest run: list the source, plan chunks, stream each chunk once (read → hash → node), place it on
// healthy nodes, retry transient failures, move chunks off nodes that fail, and write the manifest.
import type { Readable } from 'node:stream';
import { chunkSizeBytes } from '../../shared/config/types.ts';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import { fileChecksum, planChunks } from './chunks.ts';
import type { PlannedChunk } from './chunks.ts';
import { tee } from './streams.ts';
import { Placer } from '../../shared/placement.ts';
import type { ChunkCopy, ChunkCrc, DetectionResult, IngestEvent, Manifest, ManifestChunk, ManifestFile, NodeStatus, NodeSummary } from '../../shared/types.ts';
import type { LoadedConfig } from './config.ts';
import { FileCopyError, sharedHashPool } from './hash/pool.ts';
import type { HashPool } from './hash/pool.ts';
import { JournalWriter, journalPath, readJournal, ResumeError } from './journal.ts';
import type { JournalState } from './journal.ts';
import { forEachLimited, Slots } from './limit.ts';
import { manifestDir, newRunId, writeManifest } from './manifest.ts';
import { mkdir } from 'node:fs/promises';
import { NodeError } from './nodes/node.ts';
import type { ChunkMeta, NodeTarget, StoredChunk } from './nodes/node.ts';
import { openNodes } from './nodes/open.ts';
import { NodeRegistry } from './nodes/registry.ts';
import { backoffDelayMs, retryPolicyFromConfig, sleep } from './retry.ts';
import type { RetryPolicy } from './retry.ts';
import type { Bucket } from './storage/bucket.ts';
import { StorageError } from './storage/driver.ts';
import type { ObjectInfo } from './storage/driver.ts';
import { openSource, sourceConfigFor } from './storage/open.ts';
import { SourceChecks } from './source-checks.ts';

export interface IngestOptions {
  loaded: LoadedConfig;
  detection: DetectionResult;
  pattern?: string;
  signal?: AbortSignal;
  onEvent?: (event: IngestEvent) => void;
  /** Continue this run from its journal: chunks it already delivered are neither read nor sent again. */
  resume?: string;
  /** The id of a new run (default: a fresh one), for callers that announce it before the run starts. */
  runId?: string;
  /** Overrides for tests and embedding; normally built from the config. */
  nodes?: NodeTarget[];
  hashPool?: HashPool;
}

export interface IngestResult {
  manifest: Manifest;
  manifestPath: string;
}

export class NoHealthyNodeError extends Error {
  readonly statuses: NodeStatus[];

  constructor(statuses: NodeStatus[], context: string) {
    const lines = statuses.map((s) => `  ${s.id} (${s.location}): ${s.state}${s.error ? ` — ${s.error}` : ''}`).join('\n');
    super(`No healthy node ${context}.\n${lines}\nFix: check the nodes above (folders writable, agents running, tokens set), or add nodes to the config.`);
    this.name = 'NoHealthyNodeError';
    this.statuses = statuses;
  }
}

interface AttemptOutcome {
  stored: Map<string, StoredChunk>;
  nodeErrors: Map<string, unknown>;
  sourceError?: unknown;
}

const MOVE_AT_ONCE = new Set(['unauthorized', 'full', 'conflict']);
const PROGRESS_STEP_BYTES = 256 * 1024;
/** A chunk read in order is read as ranged reads of this size (the size the big stores advise for throughput)… */
const READ_PART_BYTES = 8 * 1024 * 1024;
/** …this many at once (measured best on the emulators: fewer leave bandwidth unused, more only add sockets). */
const READ_PARTS_AHEAD = 4;

export async function runIngest(options: IngestOptions): Promise<IngestResult> {
  const run = new IngestRun(options);
  return run.execute();
}

class IngestRun {
  private readonly o: IngestOptions;
  private readonly loaded: LoadedConfig;
  private runId = newRunId();
  private startedAt = new Date();
  private journal: JournalWriter | undefined;
  private resumed: JournalState | undefined;
  private readonly chunkSize: number;
  private readonly algorithm: ChecksumAlgorithm;
  private readonly replicas: number;
  private readonly retry: RetryPolicy;
  private readonly placer: Placer;
  private readonly pool: HashPool;
  private readonly emit: (event: IngestEvent) => void;
  private readonly registry: NodeRegistry;
  private readonly fileErrors = new Map<string, string>();
  private readonly changedFiles = new Set<string>();
  private readonly existing = new Map<string, { nodeId: string; stored: StoredChunk }[]>();
  /** Reads of a chunk (or of its parts) asked for again after a transient failure, by chunk id (Bucket.readInParts). */
  private readonly readRetries = new Map<string, number>();
  private checks: SourceChecks | undefined;
  private bucket: Bucket | undefined;
  /** Source reads open at once across the run: `max_concurrent_chunks`. */
  private readonly readSlots: Slots;
  private retries = 0;
  private replacements = 0;
  private fatal: Error | undefined;

  constructor(options: IngestOptions) {
    this.o = options;
    this.loaded = options.loaded;
    if (options.runId) this.runId = options.runId;
    const ingestion = options.loaded.config.ingestion;
    this.chunkSize = chunkSizeBytes(ingestion);
    this.algorithm = ingestion.checksum;
    this.replicas = ingestion.replicas;
    this.retry = retryPolicyFromConfig(ingestion);
    this.placer = new Placer(ingestion.placement);
    this.pool = options.hashPool ?? sharedHashPool();
    this.emit = options.onEvent ?? (() => undefined);
    this.registry = new NodeRegistry(options.nodes ?? openNodes(options.loaded));
    this.readSlots = new Slots(ingestion.max_concurrent_chunks);
    this.registry.on('change', (status) => this.emit({ type: 'node', status }));
  }

  async execute(): Promise<IngestResult> {
    try {
      return await this.executeInner();
    } finally {
      this.checks?.close();
      await this.journal?.close().catch(() => undefined);
      await this.registry.close();
      await this.bucket?.close();
    }
  }

  private async executeInner(): Promise<IngestResult> {
    const { detection, signal } = this.o;
    const source = sourceConfigFor(this.loaded, detection.cloud);
    this.bucket = await openSource(this.loaded, detection.cloud);
    await this.registry.probeAll(signal);
    if (this.registry.usable().length === 0) throw new NoHealthyNodeError(this.registry.statuses(), 'to deliver chunks to');
    if (this.registry.usable().length < this.replicas) {
      throw new NoHealthyNodeError(this.registry.statuses(), `for ${this.replicas} replicas (only ${this.registry.usable().length} healthy)`);
    }
    const pattern = await this.openJournal(this.o.pattern ?? this.loaded.config.ingestion.file_pattern);
    const listed = await this.bucket.list({ pattern, ...(source.prefix ? { prefix: source.prefix } : {}), ...(signal ? { signal } : {}) });
    const objects = await this.withStoreChecksums(listed);
    const plan = planChunks(objects, this.chunkSize);
    this.checks = new SourceChecks({ store: this.bucket.info.kind, algorithm: this.algorithm, chunkSize: this.chunkSize, pool: this.pool, registry: this.registry, ...(signal ? { signal } : {}) });
    this.checks.start(objects);
    await this.indexExistingChunks();
    this.emit({
      type: 'run-started',
      runId: this.runId,
      files: objects.length,
      chunks: plan.length,
      bytes: objects.reduce((sum, o) => sum + o.size, 0),
      nodes: this.registry.statuses(),
      source: this.bucket.info,
    });
    for (const chunk of plan) this.emitChunk(chunk, 'queued', 0);

    const delivered = await this.deliverAll(plan);
    const files = await this.summarizeFiles(objects, plan, delivered);
    const status: Manifest['status'] = signal?.aborted ? 'cancelled' : this.fatal ? 'failed' : files.some((f) => f.status === 'failed') ? 'partial' : 'complete';
    const manifest = this.buildManifest(status, files, delivered);
    const manifestPath = await writeManifest(this.loaded, manifest);
    this.journal?.append({ type: 'end', at: manifest.finishedAt, status });
    this.emit({ type: 'run-finished', runId: this.runId, status, manifestPath, elapsedMs: Date.now() - this.startedAt.getTime(), bytes: manifest.totals.bytes });
    if (this.fatal) throw this.fatal;
    return { manifest, manifestPath };
  }

  /**
   * Objects of more than one chunk whose listing left out checksums the store keeps (S3 lists only their names)
   * are looked up, so the file can be checked against a checksum its chunks' CRCs combine into.
   */
  private async withStoreChecksums(objects: ObjectInfo[]): Promise<ObjectInfo[]> {
    const needed = objects.map((o, i) => (o.checksumsOnStat && o.size > this.chunkSize ? i : -1)).filter((i) => i >= 0);
    const out = [...objects];
    await forEachLimited(needed, 8, async (i) => {
      // A failed lookup leaves the listed entry: the file is then checked without that checksum, or fails on read.
      out[i] = await this.bucket!.stat(objects[i]!.key, this.o.signal).catch(() => objects[i]!);
    });
    return out;
  }

  /** Starts this run's journal, or reads the one being resumed; returns the file pattern the run uses. */
  private async openJournal(pattern: string): Promise<string> {
    await mkdir(manifestDir(this.loaded), { recursive: true });
    if (!this.o.resume) {
      this.journal = await JournalWriter.open(journalPath(this.loaded, this.runId));
      this.journal.append({ type: 'start', version: 1, runId: this.runId, startedAt: this.startedAt.toISOString(), cloud: this.o.detection.cloud, detection: this.o.detection, pattern, chunkSize: this.chunkSize, algorithm: this.algorithm, configPath: this.loaded.path });
      return pattern;
    }
    const state = await readJournal(journalPath(this.loaded, this.o.resume));
    const { start } = state;
    if (start.chunkSize !== this.chunkSize || start.algorithm !== this.algorithm) {
      throw new ResumeError(`Run ${start.runId} used ${start.chunkSize}-byte chunks and ${start.algorithm}; the config now says ${this.chunkSize} and ${this.algorithm}. Fix: resume with the config the run started with, or start a new run.`);
    }
    if (start.cloud !== this.o.detection.cloud) {
      throw new ResumeError(`Run ${start.runId} ingested from ${start.cloud}, but the cloud now is ${this.o.detection.cloud}. Fix: resume with CLOUD_PROVIDER=${start.cloud} or --cloud ${start.cloud}.`);
    }
    this.resumed = state;
    this.runId = start.runId;
    this.startedAt = new Date(start.startedAt);
    this.journal = await JournalWriter.open(journalPath(this.loaded, this.runId));
    this.journal.append({ type: 'resume', at: new Date().toISOString() });
    this.emit({ type: 'log', level: 'info', message: `resuming run ${start.runId}: ${state.chunks.size} chunk(s) already delivered` });
    return start.pattern;
  }

  /** A chunk the resumed run already delivered from the same source version, if any. */
  private journaled(chunk: PlannedChunk): ManifestChunk | undefined {
    const entry = this.resumed?.chunks.get(chunk.id);
    if (!entry) return undefined;
    const same = entry.etag === chunk.object.etag && entry.chunk.offset === chunk.offset && entry.chunk.size === chunk.size;
    if (!same) {
      if (!this.changedFiles.has(chunk.object.key)) {
        this.changedFiles.add(chunk.object.key);
        this.emit({ type: 'log', level: 'warn', message: `${chunk.object.key} changed since run ${this.runId} started (version ${entry.etag ?? '?'} → ${chunk.object.etag ?? '?'}); reading it again` });
      }
      return undefined;
    }
    const usable = new Set(this.registry.usable().map((n) => n.id));
    return entry.chunk.copies.every((c) => usable.has(c.nodeId)) ? entry.chunk : undefined;
  }

  private async indexExistingChunks(): Promise<void> {
    for (const node of this.registry.usable()) {
      for await (const stored of node.list(this.o.signal)) {
        const copies = this.existing.get(stored.id) ?? [];
        copies.push({ nodeId: node.id, stored });
        this.existing.set(stored.id, copies);
      }
    }
  }

  /** Runs chunk deliveries with bounded concurrency, in plan order. */
  private async deliverAll(plan: PlannedChunk[]): Promise<(ManifestChunk | undefined)[]> {
    const results: (ManifestChunk | undefined)[] = new Array(plan.length);
    const deliverOne = async (chunk: PlannedChunk, i: number): Promise<void> => {
      if (this.fileErrors.has(chunk.object.key)) return;
      try {
        const done = this.journaled(chunk);
        if (done) {
          for (const copy of done.copies) this.placer.record(copy.nodeId, chunk.size);
          this.emitChunk(chunk, 'skipped', 0, done.node);
          results[i] = done;
          this.checks?.delivered(chunk.object.key, chunk.index, done);
          return;
        }
        const delivered = await this.deliver(chunk);
        results[i] = delivered;
        this.journal?.append({ type: 'chunk', ...(chunk.object.etag ? { etag: chunk.object.etag } : {}), chunk: delivered });
        this.checks?.delivered(chunk.object.key, chunk.index, delivered);
      } catch (error) {
        this.onChunkFailed(chunk, error);
      }
    };
    const runs = this.deliveryRuns(plan);
    const deliverRun = async (run: number[]): Promise<void> => {
      for (const i of run) await deliverOne(plan[i]!, i);
    };
    await forEachLimited(runs, this.loaded.config.ingestion.max_concurrent_chunks, deliverRun, () => this.fatal !== undefined || this.o.signal?.aborted === true);
    return results;
  }

  /**
   * The plan's chunks in runs delivered one after another: a file whose store check hashes its chunks in order
   * is one run (each chunk read in parallel parts instead), every other chunk a run of its own.
   */
  private deliveryRuns(plan: PlannedChunk[]): number[][] {
    const runs: number[][] = [];
    let current: number[] | undefined;
    plan.forEach((chunk, i) => {
      if (!this.checks?.readsInOrder(chunk.object.key)) {
        runs.push([i]);
        current = undefined;
        return;
      }
      if (chunk.index === 0 || !current) runs.push((current = []));
      current.push(i);
    });
    return runs;
  }

  private onChunkFailed(chunk: PlannedChunk, error: unknown): void {
    if (this.o.signal?.aborted) return;
    if (error instanceof NoHealthyNodeError) {
      this.fatal ??= error;
      return;
    }
    const message = error instanceof StorageError ? `${error.message} (${error.hint})` : error instanceof Error ? error.message : String(error);
    this.checks?.failed(chunk.object.key);
    if (!this.fileErrors.has(chunk.object.key)) {
      this.fileErrors.set(chunk.object.key, message);
      this.emit({ type: 'file', key: chunk.object.key, status: 'failed', error: message });
    }
    this.emitChunk(chunk, 'failed', 0, undefined, message);
  }

  private reusableCopies(chunk: PlannedChunk): (ChunkCopy & { sums: ChunkSums })[] {
    const usable = new Set(this.registry.usable().map((n) => n.id));
    const etag = chunk.object.etag;
    return (this.existing.get(chunk.id) ?? [])
      .filter(({ nodeId, stored: s }) => usable.has(nodeId) && etag !== undefined && s.sourceEtag === etag && s.size === chunk.size && s.offset === chunk.offset && s.checksum.algorithm === this.algorithm)
      .map(({ nodeId, stored }) => ({ nodeId, location: stored.location, sums: sumsOf(stored) }))
      .slice(0, this.replicas);
  }

  private async deliver(chunk: PlannedChunk): Promise<ManifestChunk> {
    const reused = this.reusableCopies(chunk);
    const sumsOn = new Map<string, ChunkSums>();
    const copies: ChunkCopy[] = reused.map(({ nodeId, location, sums }) => {
      sumsOn.set(nodeId, sums);
      this.placer.record(nodeId, chunk.size);
      return { nodeId, location };
    });
    const skipped = copies.length >= this.replicas;
    let attempts = 0;
    const movedFrom: string[] = [];
    const nodeFailures = new Map<string, number>();
    let sourceFailures = 0;

    let targets = skipped ? [] : this.choose(chunk, copies.map((c) => c.nodeId), this.replicas - copies.length);
    while (targets.length > 0) {
      attempts++;
      const outcome = await this.attempt(chunk, targets, attempts);
      const nextTargets: string[] = [];
      let mustWait = false;
      for (const nodeId of targets) {
        const stored = outcome.stored.get(nodeId);
        if (stored) {
          copies.push({ nodeId, location: stored.location });
          sumsOn.set(nodeId, sumsOf(stored));
          continue;
        }
        const nodeError = outcome.nodeErrors.get(nodeId);
        if (!nodeError) {
          nextTargets.push(nodeId); // the source failed; same node next time
          continue;
        }
        const failures = (nodeFailures.get(nodeId) ?? 0) + 1;
        nodeFailures.set(nodeId, failures);
        const code = nodeError instanceof NodeError ? nodeError.code : 'io';
        if (failures <= this.retry.retries && !MOVE_AT_ONCE.has(code)) {
          this.retries++;
          mustWait = true;
          this.emitChunk(chunk, 'retried', attempts, nodeId, errorText(nodeError));
          nextTargets.push(nodeId);
          continue;
        }
        this.placer.release(nodeId, chunk.size);
        this.registry.markFailed(nodeId, nodeError);
        movedFrom.push(nodeId);
        this.replacements++;
        this.emit({ type: 'log', level: 'warn', message: `node ${nodeId} failed (${errorText(nodeError)}); moving its chunks to other nodes` });
        const replacement = this.choose(chunk, [...copies.map((c) => c.nodeId), ...nextTargets, ...movedFrom], 1);
        this.emitChunk(chunk, 'moved', attempts, replacement[0], errorText(nodeError));
        nextTargets.push(...replacement);
      }
      if (outcome.sourceError) {
        sourceFailures++;
        const retryable = outcome.sourceError instanceof StorageError && outcome.sourceError.retryable;
        if (!retryable || sourceFailures > this.retry.retries) {
          for (const nodeId of nextTargets) this.placer.release(nodeId, chunk.size);
          throw outcome.sourceError;
        }
        this.retries++;
        mustWait = true;
        this.emitChunk(chunk, 'retried', attempts, undefined, errorText(outcome.sourceError));
      }
      if (mustWait) await sleep(backoffDelayMs(this.retry, Math.max(sourceFailures, ...nodeFailures.values(), 1)), this.o.signal);
      targets = nextTargets;
    }

    const { checksum } = sumsOn.get(copies[0]!.nodeId)!;
    const crc = copies.map((c) => sumsOn.get(c.nodeId)?.crc).find((found) => found !== undefined);
    this.emitChunk(chunk, skipped ? 'skipped' : 'verified', attempts, copies[0]!.nodeId);
    return {
      id: chunk.id,
      file: chunk.object.key,
      index: chunk.index,
      offset: chunk.offset,
      size: chunk.size,
      checksum,
      ...(crc ? { crc } : {}),
      node: copies[0]!.nodeId,
      path: copies[0]!.location,
      // Exact size: an array grown by push keeps room for 17 entries, ~130 bytes more per chunk held all run.
      copies: copies.slice(),
      attempts,
      ...(this.readRetries.has(chunk.id) ? { readRetries: this.readRetries.get(chunk.id)! } : {}),
      movedFrom,
      skipped,
    };
  }

  private choose(chunk: PlannedChunk, exclude: string[], count: number): string[] {
    const excluded = new Set(exclude);
    const candidates = this.registry.usable().filter((n) => !excluded.has(n.id));
    if (candidates.length === 0) throw new NoHealthyNodeError(this.registry.statuses(), `left for chunk ${chunk.id}`);
    return this.placer.choose(chunk.size, candidates.map((n) => ({ id: n.id, weight: this.registry.weight(n.id) })), count);
  }

  /** One read of the chunk, hashed once and streamed to every target at the same time. */
  private async attempt(chunk: PlannedChunk, targets: string[], attempt: number): Promise<AttemptOutcome> {
    const stored = new Map<string, StoredChunk>();
    const nodeErrors = new Map<string, unknown>();
    const signal = this.o.signal;
    this.emitChunk(chunk, 'reading', attempt, targets[0]);
    if (targets.length === 1) {
      const copied = await this.attemptLocalCopy(chunk, targets[0]!, attempt);
      if (copied) return copied;
    }
    let source: Readable;
    try {
      source = await this.readChunk(chunk, attempt);
    } catch (error) {
      if (signal?.aborted) throw error;
      return { stored, nodeErrors, sourceError: error };
    }
    const first = this.registry.get(targets[0]!)!;
    if (targets.length === 1 && first.writeHashing) return this.attemptHashingWrite(chunk, first, source, attempt);
    const meta = chunkMeta(chunk);
    const progress = this.progressFor(chunk, targets);
    const crc = this.checks?.crcWanted(chunk.object.key);
    const tap = this.pool.tap(this.algorithm, crc ? { crc } : {});
    tap.onBytes = progress.add;
    tap.once('end', progress.flush);
    source.on('error', (error) => tap.destroy(error));
    tap.once('close', () => source.destroyed || source.destroy()); // a failed node write must not leave the source open
    source.pipe(tap);
    this.emitChunk(chunk, 'sending', attempt, targets[0]);
    const branches = targets.length === 1 ? [tap] : tee(tap, targets.length);
    let sourceError: unknown;
    await Promise.all(
      targets.map(async (nodeId, i) => {
        const node = this.registry.get(nodeId)!;
        try {
          const written = await node.write(meta, branches[i]!, tap.digest, signal);
          stored.set(nodeId, tap.crc ? { ...written, crc: tap.crc } : written);
        } catch (error) {
          if (signal?.aborted) return;
          if (error instanceof StorageError) sourceError = error;
          else nodeErrors.set(nodeId, error);
        }
      }),
    );
    if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
    return { stored, nodeErrors, ...(sourceError ? { sourceError } : {}) };
  }

  /**
   * The chunk's bytes from the store (see Bucket.readInParts), each open ranged read holding one of the run's
   * read slots. A file checked in order is read in parts, several at once; any other chunk as one read. A read
   * that breaks goes on from where it stopped, counted as a retry of the chunk's.
   */
  private readChunk(chunk: PlannedChunk, attempt: number): Promise<Readable> {
    const onRetry = (error: StorageError): void => {
      this.retries++;
      this.readRetries.set(chunk.id, (this.readRetries.get(chunk.id) ?? 0) + 1);
      // Not a chunk state: the chunk goes on from where it was, only the broken read is asked for again.
      this.emit({ type: 'log', level: 'warn', message: `${chunk.id} (attempt ${attempt}): a read broke (${errorText(error)}); reading on from where it stopped` });
    };
    const parts = this.checks?.readsInOrder(chunk.object.key) ? { partSize: READ_PART_BYTES, ahead: READ_PARTS_AHEAD } : { partSize: chunk.size, ahead: 1 };
    const signal = this.o.signal;
    return this.bucket!.readInParts(chunk.object, { offset: chunk.offset, length: chunk.size }, { ...parts, slots: this.readSlots, onRetry, ...(signal ? { signal } : {}) });
  }

  /** One target that hashes and writes on a hashing thread (a folder node): the source goes straight to it. */
  private async attemptHashingWrite(chunk: PlannedChunk, node: NodeTarget, source: Readable, attempt: number): Promise<AttemptOutcome> {
    const stored = new Map<string, StoredChunk>();
    const nodeErrors = new Map<string, unknown>();
    const signal = this.o.signal;
    const progress = this.progressFor(chunk, [node.id]);
    this.emitChunk(chunk, 'sending', attempt, node.id);
    try {
      const crc = this.checks?.crcWanted(chunk.object.key);
      const keepHash = this.checks?.keepHashFor(chunk.object.key, chunk.index);
      const options = { pool: this.pool, algorithm: this.algorithm, onBytes: progress.add, ...(crc ? { crc } : {}), ...(keepHash ? { keepHash } : {}), ...(signal ? { signal } : {}) };
      stored.set(node.id, await node.writeHashing!(chunkMeta(chunk), source, options));
      progress.flush();
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
      if (error instanceof StorageError) return { stored, nodeErrors, sourceError: error };
      nodeErrors.set(node.id, error);
    }
    return { stored, nodeErrors };
  }

  /** Byte progress for one chunk attempt, reported to every target in steps of PROGRESS_STEP_BYTES. */
  private progressFor(chunk: PlannedChunk, targets: string[]): { add: (bytes: number) => void; flush: () => void } {
    let pending = 0;
    const flush = (): void => {
      if (pending > 0) for (const nodeId of targets) this.emit({ type: 'bytes', chunkId: chunk.id, nodeId, bytes: pending });
      pending = 0;
    };
    return {
      add: (bytes) => {
        pending += bytes;
        if (pending >= PROGRESS_STEP_BYTES) flush();
      },
      flush,
    };
  }

  /**
   * The fast path for a local file going to a node that can copy local files (a folder node on this machine):
   * read, hash and write happen on a hashing thread with one reused block. undefined when it does not apply.
   */
  private async attemptLocalCopy(chunk: PlannedChunk, nodeId: string, attempt: number): Promise<AttemptOutcome | undefined> {
    const node = this.registry.get(nodeId)!;
    if (!node.writeFromFile) return undefined;
    const stored = new Map<string, StoredChunk>();
    const nodeErrors = new Map<string, unknown>();
    const signal = this.o.signal;
    let path: string | undefined;
    try {
      path = await this.bucket!.localFile(chunk.object);
    } catch (error) {
      return { stored, nodeErrors, sourceError: error };
    }
    if (!path) return undefined;
    this.emitChunk(chunk, 'sending', attempt, nodeId);
    const meta = chunkMeta(chunk);
    const range = { path, offset: chunk.offset, length: chunk.size, ...(chunk.object.etag ? { etag: chunk.object.etag } : {}) };
    try {
      stored.set(nodeId, await node.writeFromFile(meta, range, { pool: this.pool, algorithm: this.algorithm, ...(signal ? { signal } : {}), onBytes: (bytes) => this.emit({ type: 'bytes', chunkId: chunk.id, nodeId, bytes }) }));
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
      if (error instanceof FileCopyError) return { stored, nodeErrors, sourceError: this.bucket!.copyError(error, chunk.object.key) };
      nodeErrors.set(nodeId, error);
    }
    return { stored, nodeErrors };
  }

  private async summarizeFiles(objects: ObjectInfo[], plan: PlannedChunk[], delivered: (ManifestChunk | undefined)[]): Promise<ManifestFile[]> {
    const files: ManifestFile[] = [];
    // The plan follows `objects`, each file's chunks together (planChunks): one pass, no per-file lists held at once.
    let next = 0;
    for (const object of objects) {
      const chunks: ManifestChunk[] = [];
      for (; next < plan.length && plan[next]!.object === object; next++) {
        const done = delivered[next];
        if (done) chunks.push(done);
      }
      const chunkCount = Math.ceil(object.size / this.chunkSize);
      const error = this.fileErrors.get(object.key) ?? (chunks.length < chunkCount ? 'not all chunks were delivered' : undefined);
      const file: ManifestFile = {
        key: object.key,
        size: object.size,
        ...(object.etag ? { etag: object.etag } : {}),
        checksum: fileChecksum(this.algorithm, chunks.map((c) => c.checksum)),
        chunkCount,
        status: error ? 'failed' : 'complete',
        ...(error ? { error } : {}),
      };
      if (!error && !this.o.signal?.aborted) await this.checks?.check(file, object, chunks);
      if (!this.fileErrors.has(object.key) && !this.o.signal?.aborted) this.emit({ type: 'file', key: object.key, status: file.status, ...(file.error ? { error: file.error } : {}) });
      files.push(file);
    }
    return files;
  }

  private buildManifest(status: Manifest['status'], files: ManifestFile[], delivered: (ManifestChunk | undefined)[]): Manifest {
    const chunks = delivered.filter((c): c is ManifestChunk => c !== undefined);
    const nodes: NodeSummary[] = this.registry.statuses().map((s) => {
      const held = chunks.filter((c) => c.copies.some((copy) => copy.nodeId === s.id));
      return { id: s.id, kind: s.kind, location: s.location, chunks: held.length, bytes: held.reduce((sum, c) => sum + c.size, 0), healthy: s.state === 'healthy' };
    });
    return {
      version: 1,
      runId: this.runId,
      startedAt: this.startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      status,
      cloud: this.o.detection.cloud,
      detection: this.o.detection,
      source: this.bucket!.info,
      checksumAlgorithm: this.algorithm,
      chunkSize: this.chunkSize,
      config: this.loaded.config,
      configPath: this.loaded.path,
      files,
      chunks,
      nodes,
      totals: {
        files: files.length,
        chunks: chunks.length,
        bytes: chunks.reduce((sum, c) => sum + c.size, 0),
        retries: this.retries,
        replacements: this.replacements,
        skipped: chunks.filter((c) => c.skipped).length,
      },
    };
  }

  private emitChunk(chunk: PlannedChunk, state: Extract<IngestEvent, { type: 'chunk' }>['state'], attempt: number, nodeId?: string, error?: string): void {
    this.emit({ type: 'chunk', id: chunk.id, file: chunk.object.key, index: chunk.index, size: chunk.size, state, attempt, ...(nodeId ? { nodeId } : {}), ...(error ? { error } : {}) });
  }
}

/** What a copy's node says of its bytes. */
interface ChunkSums {
  checksum: string;
  crc?: ChunkCrc;
}

function sumsOf(stored: StoredChunk): ChunkSums {
  return { checksum: stored.checksum.hex, ...(stored.crc ? { crc: stored.crc } : {}) };
}

function chunkMeta(chunk: PlannedChunk): ChunkMeta {
  return { id: chunk.id, file: chunk.object.key, index: chunk.index, offset: chunk.offset, size: chunk.size, ...(chunk.object.etag ? { sourceEtag: chunk.object.etag } : {}) };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
