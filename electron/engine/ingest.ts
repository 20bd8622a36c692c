// The ingest run, as its steps: detect the store and the nodes, list and plan, skip what is already delivered,
// deliver every chunk to `replicas` nodes (delivery.ts), send again what a node that died held, check each file,
// and record the manifest. Transfer paths live in nodes/nodes.ts, reuse in resume.ts, the summary in run-summary.ts.
import type { Readable } from 'node:stream';
import { chunkSizeBytes } from '../../shared/config/types.ts';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import { chunkCount } from './chunks.ts';
import type { PlannedChunk } from './chunks.ts';
import { Placer } from '../../shared/placement.ts';
import type { ChunkShortfall, DetectionResult, IngestEvent, Manifest, ManifestChunk, ManifestFile, RunOrigin } from '../../shared/types.ts';
import type { LoadedConfig } from './config.ts';
import { Delivery, errorText, heldCopy, NoHealthyNodeError } from './delivery.ts';
import type { ChunkEventState, DeliverOptions } from './delivery.ts';
import { sharedHashPool } from './hash/pool.ts';
import type { FileCopyError, HashPool } from './hash/pool.ts';
import { JournalWriter, journalPath, readJournal, ResumeError } from './journal.ts';
import type { JournalStart, JournalState } from './journal.ts';
import { forEachLimited, Slots } from './limit.ts';
import { manifestDir, newRunId, writeManifest } from './manifest.ts';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname, userInfo } from 'node:os';
import type { ChunkMeta, LocalRange, NodeTarget } from './nodes/node.ts';
import { Nodes } from './nodes/nodes.ts';
import type { ChunkSource, TransferOutcome } from './nodes/nodes.ts';
import { openNodes } from './nodes/open.ts';
import { isPackable, keptShards, Packer } from './pack/plan.ts';
import type { DeliveredShard, PlanItem, ShardLayout } from './pack/plan.ts';
import { deliveredShards, packBelowBytes, withMembers } from './pack/run.ts';
import { ShardSource } from './pack/source.ts';
import { retryPolicyFromConfig } from './retry.ts';
import type { RetryPolicy } from './retry.ts';
import { ResumeIndex } from './resume.ts';
import type { HeldCopy } from './resume.ts';
import { manifestWithEntriesOnDisk, runStatus, streamedManifest, summarizeFiles } from './run-summary.ts';
import { ListingProgress } from './listing-progress.ts';
import { RunSpill } from './run-spill.ts';
import { PlanWindow, planEntry } from './plan-window.ts';
import type { PlanEntry } from './plan-window.ts';
import type { Bucket } from './storage/bucket.ts';
import { StorageError } from './storage/driver.ts';
import type { ObjectInfo, SourceInfo } from './storage/driver.ts';
import { openSource, sourceConfigFor } from './storage/open.ts';
import { SourceChecks } from './source-checks.ts';
import { withRunHeapGrowth } from './heap-growth.ts';
import { checkableInPull, isPullMode, openPullCoordinator, pullUncheckedNotice, uncheckedInPull } from './cluster/run.ts';
import type { PullCoordinator } from './cluster/run.ts';

export { NoHealthyNodeError } from './delivery.ts';

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
  /** Who runs it (the CLI or the app), recorded in the manifest with this machine's user and host names. */
  tool?: RunOrigin['tool'];
  /** Overrides for tests and embedding; normally built from the config. */
  nodes?: NodeTarget[];
  hashPool?: HashPool;
}

export interface IngestResult {
  /** The manifest as written; its `files` and `chunks` are read back from `manifestPath` when first used. */
  manifest: Manifest;
  manifestPath: string;
  /** The files that failed: how many, and the first FAILED_FILES_SHOWN of them with why. */
  failedFiles: { count: number; shown: { key: string; error?: string }[] };
}

const FAILED_FILES_SHOWN = 1000;

export async function runIngest(options: IngestOptions): Promise<IngestResult> {
  const run = new IngestRun(options);
  return run.execute();
}

const PROGRESS_STEP_BYTES = 256 * 1024;
/** A chunk read in order is read as ranged reads of this size (the size the big stores advise for throughput)… */
const READ_PART_BYTES = 8 * 1024 * 1024;
/** …this many at once (measured best on the emulators: fewer leave bandwidth unused, more only add sockets). */
const READ_PARTS_AHEAD = 4;
/** Rounds of re-sending at the end of a run while nodes keep dying under the re-sends. */
const REFILL_ROUNDS = 3;
/**
 * At most this many of the plan's chunks (and files: a shard holds many) are in memory at once, however many
 * the run has: a window that slides along the plan as the files at its head are done.
 */
const WINDOW_CHUNKS = 4096;
const WINDOW_FILES = 16_384;
/** Whole files of one chunk copied in one job on a hashing thread (see IngestRun.fileBatchLanes). */
const FILE_BATCH = 32;
/** Batches of files queued per hashing thread at most: one being copied, one waiting, so a thread never runs dry. */
const FILE_BATCHES_PER_THREAD = 2;

/**
 * Work for the delivery lanes: a run of planned chunks, whole files of one chunk to copy in batches, or one
 * delivered chunk to send again (its node died).
 */
type Work = { kind: 'plan'; indices: number[] } | { kind: 'files'; indices: number[] } | { kind: 'refill'; index: number };

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
  private readonly nodes: Nodes;
  private readonly delivery: Delivery;
  private readonly fileErrors = new Map<string, string>();
  private readonly failedFiles: IngestResult['failedFiles'] = { count: 0, shown: [] };
  private index: ResumeIndex | undefined;
  /** Reads of a chunk (or of its parts) asked for again after a transient failure, by chunk id (Bucket.readInParts). */
  private readonly readRetries = new Map<string, number>();
  private checks: SourceChecks | undefined;
  private bucket: Bucket | undefined;
  /** Source reads open at once across the run: `max_concurrent_chunks`. */
  private readonly readSlots: Slots;
  private readonly counters = { retries: 0, replacements: 0 };
  private fatal: Error | undefined;
  /** The plan, the delivered chunks and the files' entries, on disk. */
  private spill: RunSpill | undefined;
  /** The window of the plan being delivered. */
  private window: PlanWindow | undefined;
  /** The delivery lanes' queue; re-sends are appended while it runs. */
  private work: Work[] = [];
  /** Delivered chunks queued to be sent again, so one is never queued twice at once. */
  private readonly refilling = new Set<number>();
  /** Each shard's member checksums from its last transfer that stored it. */
  private readonly memberChecksums = new Map<string, string[]>();
  /** For a file read in order, chunk by chunk: each chunk's next (readChunk reads it ahead). */
  private readonly nextInFile = new WeakMap<PlannedChunk, PlannedChunk>();
  /** The one chunk read ahead, waiting for its transfer. */
  private readAhead: { chunkId: string; stream: Promise<Readable> } | undefined;
  /** Pull mode (ingestion.mode: pull): the workers read their chunks; transfers go through this coordinator. */
  private pull: PullCoordinator | undefined;
  /** The listing, which writes the plan while deliverAll reads it. */
  private readonly listing = new ListingProgress((totals, done) => this.emit({ type: 'listed', ...totals, done }));

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
    this.nodes = new Nodes(options.nodes ?? openNodes(options.loaded), this.pool);
    this.readSlots = new Slots(ingestion.max_concurrent_chunks);
    const emitChunk = this.emitChunk.bind(this);
    this.delivery = new Delivery({ nodes: this.nodes, placer: this.placer, replicas: this.replicas, retry: this.retry, emit: this.emit, emitChunk, counters: this.counters, ...(options.signal ? { signal: options.signal } : {}) });
    this.nodes.registry.on('change', (status) => this.emit({ type: 'node', status }));
    this.nodes.registry.on('state', (status) => {
      if (status.state !== 'unhealthy') return;
      this.pull?.nodeDown(status.id);
      this.queueRefillsFrom(status.id);
    });
  }

  async execute(): Promise<IngestResult> {
    try {
      return await this.executeInner();
    } catch (error) {
      // A run that stopped before its manifest is not resumable as if it had been killed: say how it ended.
      this.journal?.append({ type: 'end', at: new Date().toISOString(), status: this.o.signal?.aborted ? 'cancelled' : 'failed' });
      throw error;
    } finally {
      this.dropReadAhead();
      this.checks?.close();
      this.resumed?.chunks.close();
      await this.closeJournal();
      await this.spill?.remove().catch(() => undefined);
      await this.pull?.close();
      await this.nodes.close();
      await this.bucket?.close();
    }
  }

  private async executeInner(): Promise<IngestResult> {
    // A local folder's listing stats its files on the hashing threads, a page at a time.
    const bucket = await openSource(this.loaded, this.o.detection.cloud, { statFiles: (paths) => this.pool.statFiles(paths) });
    this.bucket = bucket;
    return withRunHeapGrowth(this.movesBytesOffThread(), () => this.ingestFromSource(bucket));
  }

  /** Whether every byte of the run moves on the hashing threads: a local folder into folder nodes, pushed. */
  private movesBytesOffThread(): boolean {
    return this.bucket?.info.kind === 'local' && !isPullMode(this.loaded) && this.nodes.registry.nodes.every((n) => n.kind === 'folder');
  }

  private async ingestFromSource(bucket: Bucket): Promise<IngestResult> {
    const { detection, signal } = this.o;
    const source = sourceConfigFor(this.loaded, detection.cloud);
    await this.probeNodes();
    const pattern = await this.openJournal(this.o.pattern ?? this.loaded.config.ingestion.file_pattern);
    if (isPullMode(this.loaded)) {
      const onWorkerLost = (nodeId: string, error: unknown): void => this.nodes.registry.markFailed(nodeId, error);
      this.pull = await openPullCoordinator({ loaded: this.loaded, cloud: detection.cloud, runId: this.runId, nodes: this.nodes.registry.nodes.map((n) => n.id), emit: this.emit, onWorkerLost, ...(signal ? { signal } : {}) });
    }
    this.spill = await RunSpill.open(join(manifestDir(this.loaded), `${this.runId}.work`));
    this.checks = new SourceChecks({ store: bucket.info.kind, algorithm: this.algorithm, chunkSize: this.chunkSize, pool: this.pool, registry: this.nodes.registry, ...(signal ? { signal } : {}) });
    await this.indexHeldCopies();
    this.emit({ type: 'run-started', runId: this.runId, files: 0, chunks: 0, bytes: 0, nodes: this.nodes.registry.statuses(), source: bucket.info });

    // Delivery starts with the first files listed. A listing that fails fails the run (as when it came before
    // delivery); a cancelled one ends the run with what it had listed.
    const listing = this.listAndPlan(pattern, source.prefix).then(
      (totals) => (this.listing.end(), totals),
      (error: unknown) => {
        if (this.o.signal?.aborted) return (this.listing.end(), this.listing.totals);
        this.listing.end(error instanceof Error ? error : new Error(String(error)));
        throw error;
      },
    );
    listing.catch(() => undefined); // awaited below, once delivery has stopped
    await this.deliverAll();
    const listed = await listing;
    if (listed.files === 0) this.emit({ type: 'log', level: 'warn', message: `No files found matching ${pattern} in ${bucket.info.location}` });
    const shortfall = await this.ensureReplicas();
    await this.pool.renewGrownThreads();
    const status = runStatus({ cancelled: signal?.aborted === true, fatal: this.fatal !== undefined, failedFiles: this.failedFiles.count, shortfall });
    const spill = this.spill;
    const { document, summary } = streamedManifest({ ...(this.o.tool ? { ranBy: runOrigin(this.o.tool) } : {}), loaded: this.loaded, runId: this.runId, startedAt: this.startedAt, status, detection, source: bucket.info, algorithm: this.algorithm, chunkSize: this.chunkSize, fileCount: listed.files, files: () => spill.fileLines(), chunks: () => spill.manifestEntries(), totals: spill.totals, shortfall, nodes: this.nodes.registry.statuses(), counters: this.counters });
    const manifestPath = await writeManifest(this.loaded, document);
    const manifest = manifestWithEntriesOnDisk(summary(), manifestPath);
    this.journal?.append({ type: 'end', at: manifest.finishedAt, status });
    this.journal = await this.closeJournal();
    if (status === 'degraded') this.emit({ type: 'log', level: 'error', message: describeShortfall(shortfall, this.replicas) });
    this.emit({ type: 'run-finished', runId: this.runId, status, manifestPath, elapsedMs: Date.now() - this.startedAt.getTime(), bytes: manifest.totals.bytes });
    if (this.fatal) throw this.fatal;
    return { manifest, manifestPath, failedFiles: this.failedFiles };
  }

  /**
   * Lists the store page by page and writes the plan to the spill as it goes (packing files into shards in listing
   * order): nothing holds the whole listing. A resumed run that delivered shards lists twice: first to learn
   * which of those shards' members are still listed unchanged (the shards it keeps), then to plan.
   */
  private async listAndPlan(pattern: string, prefix: string | undefined): Promise<{ files: number; chunks: number; bytes: number }> {
    const spill = this.spill!;
    const packBelow = packBelowBytes(this.loaded.config.ingestion);
    const delivered = packBelow > 0 ? deliveredShards(this.resumed) : [];
    const kept = delivered.length > 0 ? keptShards(await this.listedMembers(delivered, pattern, prefix), delivered, packBelow) : undefined;
    const packer = new Packer({ chunkSize: this.chunkSize, packBelow, ...(kept ? { kept } : {}) });
    const totals = this.listing.totals;
    let uncheckedInPullMode = 0;
    const count = (items: PlanItem[]): PlanItem[] => {
      for (const item of items) {
        // What moves: a shard's bytes are its tar's (headers and padding too), as the manifest counts them.
        totals.chunks += item.shard ? 1 : chunkCount(item.object.size, this.chunkSize);
        totals.bytes += item.shard ? item.shard.size : item.object.size;
      }
      return items;
    };
    const add = (items: PlanItem[]): void => {
      for (const item of count(items)) spill.items.append(item);
    };
    for await (const page of this.listPages(pattern, prefix)) {
      if (this.stopped()) return totals;
      for (const object of page) {
        totals.files++;
        if (object.unreadable !== undefined) this.failUnreadable(object.key, object.unreadable);
        if (this.pull && !isPackable(object, packBelow) && uncheckedInPull(object, this.pullChecks())) uncheckedInPullMode++;
        add(packer.add(object));
      }
      this.listing.listed(false);
    }
    // The last shard counted, and the final totals said, before it is planned: whoever waits for the final totals
    // hears them before its delivery.
    const last = count(packer.finish());
    this.listing.listed(true);
    for (const item of last) spill.items.append(item);
    spill.items.flush();
    this.listing.grew();
    if (uncheckedInPullMode > 0) this.emit(pullUncheckedNotice(uncheckedInPullMode));
    return totals;
  }

  /** A listed object that cannot be read (ObjectInfo.unreadable): failed now, so none of its chunks is read. */
  private failUnreadable(key: string, why: string): void {
    if (this.fileErrors.has(key)) return;
    this.fileErrors.set(key, why);
    this.emit({ type: 'file', key, status: 'failed', error: why });
  }

  /** The listing, a page at a time, with the checksums S3 keeps only on stat looked up for multi-chunk objects. */
  private async *listPages(pattern: string, prefix: string | undefined): AsyncGenerator<ObjectInfo[]> {
    const signal = this.o.signal;
    for await (const page of this.bucket!.listPages({ pattern, ...(prefix ? { prefix } : {}), ...(signal ? { signal } : {}) })) yield await this.withStoreChecksums(page);
  }

  /** The listed objects that are members of shards a resumed run delivered, by key. */
  private async listedMembers(delivered: readonly DeliveredShard[], pattern: string, prefix: string | undefined): Promise<Map<string, ObjectInfo>> {
    const members = new Set(delivered.flatMap((shard) => shard.members.map((m) => m.key)));
    const listed = new Map<string, ObjectInfo>();
    for await (const page of this.listPages(pattern, prefix)) for (const object of page) if (members.has(object.key)) listed.set(object.key, object);
    return listed;
  }

  private async probeNodes(): Promise<void> {
    const registry = this.nodes.registry;
    await registry.probeAll(this.o.signal);
    const usable = registry.usable().length;
    if (usable === 0) throw new NoHealthyNodeError(registry.statuses(), 'to deliver chunks to');
    if (usable < this.replicas) throw new NoHealthyNodeError(registry.statuses(), `for ${this.replicas} replicas (only ${usable} healthy)`);
  }

  /** Closes the journal once; a write that failed is said, not swallowed (the run cannot be resumed from it). */
  private async closeJournal(): Promise<undefined> {
    const journal = this.journal;
    this.journal = undefined;
    try {
      await journal?.close();
    } catch (error) {
      this.emit({ type: 'log', level: 'error', message: `the run's journal could not be written (${errorText(error)}): this run cannot be resumed from where it stopped; its manifest is the record` });
    }
    return undefined;
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
      const start: JournalStart = { type: 'start', version: 1, runId: this.runId, startedAt: this.startedAt.toISOString(), cloud: this.o.detection.cloud, detection: this.o.detection, pattern, chunkSize: this.chunkSize, algorithm: this.algorithm, configPath: this.loaded.path };
      this.journal = await JournalWriter.create(journalPath(this.loaded, this.runId), start);
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

  private async indexHeldCopies(): Promise<void> {
    this.index = new ResumeIndex({
      algorithm: this.algorithm,
      ...(this.resumed ? { journal: this.resumed } : {}),
      ...(this.o.signal ? { signal: this.o.signal } : {}),
      onListFailed: (nodeId, error) => this.emit({ type: 'log', level: 'warn', message: `node ${nodeId}: listing its chunks failed (${errorText(error)}); chunks it may hold are sent again` }),
    });
    await this.index.indexNodes(this.nodes.registry.usable());
  }

  private usableIds(): Set<string> {
    return new Set(this.nodes.registry.usable().map((n) => n.id));
  }

  /**
   * Delivers the plan in order through a window that slides along it, with bounded concurrency; re-sends queued
   * meanwhile go first. A file is summarized (and checked against the store) as soon as it and every file before
   * it are done, and its entry goes to the spill; the window then takes the next items of the plan.
   */
  private async deliverAll(): Promise<void> {
    const items = this.spill!.items.follow();
    const window = (this.window = new PlanWindow({ maxChunks: WINDOW_CHUNKS, maxFiles: WINDOW_FILES }));
    const planWork: Work[] = [];
    let nextBase = 0;
    let exhausted = false;
    const admit = (): void => {
      const before = planWork.length;
      while (!exhausted && !window.full()) {
        const next = items.next();
        if (!next) {
          // Everything listed so far is in: the plan ends here only once the listing has ended.
          exhausted = this.listing.ended;
          break;
        }
        if (next.value) planWork.push(...this.admit(window, nextBase, next.value));
        nextBase = window.end;
      }
      // New work may be for a lane that is waiting: one that takes only whole-file copies leaves the rest to others.
      if (planWork.length > before) wake();
    };
    let retiring = Promise.resolve();
    const retire = (): void => {
      const done = window.takeDone();
      if (done.length > 0) retiring = retiring.then(() => this.summarize(done));
    };
    const waiting: (() => void)[] = [];
    function wake(): void {
      waiting.splice(0).forEach((resolve) => resolve());
    }
    this.listing.onGrew(wake);
    let busy = 0;
    const lanes = Math.max(1, this.loaded.config.ingestion.max_concurrent_chunks);
    const batchLanes = this.fileBatchLanes(lanes);
    // With batch lanes, whole files of one chunk are theirs; the other lanes take everything else.
    const take = (batches: boolean): Work | undefined => {
      if (!batches) {
        const next = planWork[0];
        return this.work.shift() ?? (next && !(batchLanes > 0 && this.isWholeFileCopy(next)) ? planWork.shift() : undefined);
      }
      if (this.work.length > 0) return undefined;
      const indices: number[] = [];
      for (let next = planWork[0]; indices.length < FILE_BATCH && next?.kind === 'plan' && this.isWholeFileCopy(next); next = planWork[0]) {
        planWork.shift();
        indices.push(...next.indices);
      }
      return indices.length > 0 ? { kind: 'files', indices } : undefined;
    };
    const lane = async (batches: boolean): Promise<void> => {
      while (!this.stopped()) {
        retire(); // first: the room it frees is what admit fills
        admit();
        const work = take(batches);
        // What this lane took may have uncovered work for lanes waiting on it.
        if (work && planWork.length > 0) wake();
        if (!work) {
          if (exhausted && busy === 0 && planWork.length === 0 && this.work.length === 0) return wake();
          await new Promise<void>((resolve) => waiting.push(resolve));
          continue;
        }
        busy++;
        try {
          await this.runWork(work);
        } finally {
          busy--;
          wake();
        }
      }
      wake();
    };
    await Promise.all([...Array.from({ length: lanes }, () => lane(false)), ...Array.from({ length: batchLanes }, () => lane(true))]);
    retire();
    await retiring;
    if (this.stopped() && !this.listing.failure) {
      await this.listing.untilEnded();
      await this.summarizeUndelivered(window, items, nextBase);
    }
  }

  /**
   * Lanes beyond `max_concurrent_chunks` that take only whole files of one chunk, FILE_BATCH at a time, copied from
   * a local folder to folder nodes in one job per node on a hashing thread (deliverFiles). Each thread copies one
   * file at a time, so no more files are read at once than there are threads (hence only when
   * `max_concurrent_chunks` allows that many). Handed over one by one, a small file cost the engine thread more
   * (a promise chain, a claim, a post) than its copy cost the hashing thread, and the threads sat idle ~40% of a
   * 100,000-file run waiting for the next; two batches queued per thread keep it busy. 100,000 small files, batches
   * of 8/16/32/64 files: 9.0-9.2, 8.8-9.2, 8.2-8.6, 8.1-8.6 s.
   */
  private fileBatchLanes(lanes: number): number {
    const threads = this.pool.size;
    const copiesOnThreads =
      this.movesBytesOffThread() && this.replicas === 1 && packBelowBytes(this.loaded.config.ingestion) === 0 && this.nodes.registry.nodes.every((n) => n.writeFilesFromDisk !== undefined);
    return copiesOnThreads && lanes >= threads ? FILE_BATCHES_PER_THREAD * threads : 0;
  }

  /** Work that is one chunk holding a whole file (what fileBatchLanes take). */
  private isWholeFileCopy(work: Work): boolean {
    if (work.kind !== 'plan' || work.indices.length !== 1) return false;
    const chunk = this.planned(work.indices[0]!);
    return !chunk.shard && chunk.offset === 0 && chunk.size === chunk.object.size;
  }

  /** Takes a plan item into the window: its chunks, its files' store checks, its queued events; returns its work. */
  private admit(window: PlanWindow, base: number, item: PlanItem): Work[] {
    const entry = planEntry(base, item, this.chunkSize);
    window.add(entry);
    const unpacked = item.object ? [item.object] : [];
    this.checks!.start(this.pull ? checkableInPull(unpacked, this.pullChecks()) : unpacked);
    for (const chunk of entry.chunks) this.emitChunk(chunk, 'queued', 0);
    const runs = this.deliveryRuns(entry.chunks);
    for (const run of runs) for (let k = 0; k + 1 < run.length; k++) this.nextInFile.set(entry.chunks[run[k]!]!, entry.chunks[run[k + 1]!]!);
    return runs.map((indices): Work => ({ kind: 'plan', indices: indices.map((i) => base + i) }));
  }

  private async runWork(work: Work): Promise<void> {
    if (work.kind === 'refill') return this.refill(work.index);
    if (work.kind === 'files') await this.deliverFiles(work.indices);
    for (const i of work.indices) {
      const chunk = this.planned(i);
      if (work.kind === 'plan') await this.deliverPlanned(i);
      this.dropReadAhead(chunk); // read ahead for it, but it was skipped or failed before its transfer took it
      this.window?.finished(i);
    }
  }

  /**
   * Whole files of one chunk (fileBatchLanes), onto the nodes placement picks, in one job per node on a hashing
   * thread (Nodes.storeFiles). A chunk that needs more than a plain copy (a run before may hold it, its store
   * check needs its bytes), or whose copy failed, goes the usual way (deliverPlanned), which retries and tells the
   * source's failures from the node's. The events and records are deliverPlanned's.
   */
  private async deliverFiles(indices: readonly number[]): Promise<void> {
    const alone: number[] = [];
    const chosen: { i: number; chunk: PlannedChunk; nodeId: string }[] = [];
    // Placed in plan order before anything is awaited, as the other lanes place theirs.
    for (const i of indices) {
      const chunk = this.planned(i);
      const key = chunk.object.key;
      if (this.fileErrors.has(key)) continue;
      if (this.index!.mayHold(chunk.id) || this.checks?.crcWanted(key) || this.checks?.readsInOrder(key)) {
        alone.push(i);
        continue;
      }
      try {
        chosen.push({ i, chunk, nodeId: this.delivery.chooseOne(chunk, i) });
      } catch (error) {
        this.onChunkFailed(chunk, error);
      }
    }
    // A path that cannot be had fails its chunk the usual way, which says why.
    const files = await Promise.all(chosen.map(({ chunk }) => this.localRange(chunk).catch(() => undefined)));
    const byNode = new Map<string, { i: number; chunk: PlannedChunk; file: LocalRange }[]>();
    chosen.forEach(({ i, chunk, nodeId }, k) => {
      const file = files[k];
      if (!file) {
        this.delivery.unchoose(chunk, nodeId);
        alone.push(i);
        return;
      }
      const group = byNode.get(nodeId) ?? [];
      if (group.push({ i, chunk, file }) === 1) byNode.set(nodeId, group);
    });
    await Promise.all([...byNode].map(([nodeId, group]) => this.storeFiles(nodeId, group, alone)));
    if (this.o.signal?.aborted) return;
    for (const i of alone) await this.deliverPlanned(i);
  }

  /** One node's part of deliverFiles: each chunk stored is recorded; each that is not is added to `alone`. */
  private async storeFiles(nodeId: string, group: readonly { i: number; chunk: PlannedChunk; file: LocalRange }[], alone: number[]): Promise<void> {
    for (const { chunk } of group) {
      this.emitChunk(chunk, 'reading', 1, nodeId);
      this.emitChunk(chunk, 'sending', 1, nodeId);
    }
    const items = group.map(({ chunk, file }) => ({ meta: chunkMeta(chunk), file }));
    const signal = this.o.signal;
    const results = await this.nodes.storeFiles(nodeId, items, { algorithm: this.algorithm, ...(signal ? { signal } : {}) }).catch(() => undefined);
    group.forEach(({ i, chunk }, k) => {
      const stored = results?.[k];
      if (!stored) {
        this.delivery.unchoose(chunk, nodeId);
        alone.push(i);
        return;
      }
      if (this.o.onEvent) this.emit({ type: 'bytes', chunkId: chunk.id, nodeId, bytes: chunk.size });
      const delivered = this.delivery.storedOnce(chunk, heldCopy(nodeId, stored));
      this.record(i, chunk, delivered);
      this.checks?.delivered(chunk.object.key, chunk.index, delivered);
    });
  }

  /** The chunk's bytes as a range of a file on this machine, pinned to its listed version; undefined if not local. */
  private async localRange(chunk: PlannedChunk): Promise<LocalRange | undefined> {
    const file = await this.bucket!.localFile(chunk.object);
    return file ? { ...file, offset: chunk.offset, length: chunk.size, ...(chunk.object.etag ? { etag: chunk.object.etag } : {}) } : undefined;
  }

  /** A run that stopped early still lists every file: those in the window and those never reached, as they stand. */
  private async summarizeUndelivered(window: PlanWindow, rest: { next(): { value: PlanItem | undefined } | undefined }, base: number): Promise<void> {
    await this.summarize(window.takeAll());
    let at = base;
    for (let next = rest.next(); next; next = rest.next()) {
      if (!next.value) continue;
      const entry = planEntry(at, next.value, this.chunkSize);
      at += entry.chunks.length;
      await this.summarize([entry]);
    }
  }

  private async summarize(entries: readonly PlanEntry[]): Promise<void> {
    const signal = this.o.signal;
    for (const entry of entries) {
      const packedFile = entry.packed ? this.packedFileOf(entry, this.bucket!.info.kind) : undefined;
      const files = await summarizeFiles({ objects: entry.objects, plan: entry.chunks, delivered: entry.delivered, chunkSize: this.chunkSize, algorithm: this.algorithm, fileErrors: this.fileErrors, checks: this.checks, emit: this.emit, ...(signal ? { signal } : {}), ...(packedFile ? { packedFile } : {}) });
      for (const file of files) this.addFile(file);
    }
  }

  private addFile(file: ManifestFile): void {
    this.spill!.addFile(file);
    this.checks!.done(file.key);
    if (file.status !== 'failed') return;
    this.failedFiles.count++;
    if (this.failedFiles.shown.length < FAILED_FILES_SHOWN) this.failedFiles.shown.push({ key: file.key, ...(file.error ? { error: file.error } : {}) });
  }

  private pullChecks(): { store: SourceInfo['kind']; chunkSize: number; algorithm: ChecksumAlgorithm } {
    return { store: this.bucket!.info.kind, chunkSize: this.chunkSize, algorithm: this.algorithm };
  }

  private async drainWork(): Promise<void> {
    const lane = async (work: Work): Promise<void> => {
      if (work.kind === 'refill') return this.refill(work.index);
      for (const i of work.indices) await this.deliverPlanned(i);
    };
    await forEachLimited(this.work, this.loaded.config.ingestion.max_concurrent_chunks, lane, () => this.stopped());
  }

  /** A chunk of the window in flight, by plan index. */
  private planned(i: number): PlannedChunk {
    const entry = this.window!.entryOf(i)!;
    return entry.chunks[i - entry.base]!;
  }

  private async deliverPlanned(i: number): Promise<void> {
    const chunk = this.planned(i);
    if (this.fileErrors.has(chunk.object.key)) return;
    try {
      const live = this.usableIds();
      const done = this.index!.journaled(chunk, live, (key, was) => {
        this.emit({ type: 'log', level: 'warn', message: `${key} changed since run ${this.runId} started (version ${was ?? '?'} → ${chunk.object.etag ?? '?'}); reading it again` });
      });
      if (done) {
        for (const copy of done.copies) this.placer.record(copy.nodeId, chunk.size);
        this.emitChunk(chunk, 'skipped', 0, done.node);
        this.record(i, chunk, done, { journal: false });
        this.checks?.delivered(chunk.object.key, chunk.index, done);
        return;
      }
      // A shard held on a node says nothing of its members' checksums: it is sent again unless journaled.
      const held = chunk.shard ? [] : await this.index!.heldCopies(chunk, live, this.replicas);
      const delivered = await this.deliver(chunk, { held, turn: i });
      this.record(i, chunk, delivered);
      this.checks?.delivered(chunk.object.key, chunk.index, delivered);
    } catch (error) {
      this.onChunkFailed(chunk, error);
    }
  }

  /** A chunk is on its nodes: kept in the window (for its file's summary), the spill and the journal. */
  private record(i: number, chunk: PlannedChunk, delivered: ManifestChunk, o: { journal: boolean } = { journal: true }): void {
    const entry = this.window?.entryOf(i);
    if (entry) entry.delivered[i - entry.base] = delivered;
    const entryJson = this.spill!.record(i, delivered, chunk);
    if (!o.journal || !this.journal) return;
    // The spill's entry is the chunk's JSON unless it is a shard's, which the journal keeps with its members.
    this.journal.appendChunk(Date.now() - this.startedAt.getTime(), chunk.object.etag || undefined, delivered.members ? JSON.stringify(delivered) : entryJson);
  }

  private deliver(chunk: PlannedChunk, options: Omit<DeliverOptions, 'readRetries'>, before?: ManifestChunk): Promise<ManifestChunk> {
    const transfer = (targets: string[], attempt: number): Promise<TransferOutcome> => this.transfer(chunk, targets, attempt);
    return this.delivery.deliver(chunk, transfer, options).then((done) => {
      const readRetries = this.readRetries.get(chunk.id);
      this.readRetries.delete(chunk.id);
      const delivered = readRetries ? { ...done, readRetries } : done;
      return chunk.shard ? this.withMemberChecksums(chunk, chunk.shard, delivered, before) : delivered;
    });
  }

  /** A delivered shard with its members' checksums: from the transfer that stored it, or as delivered before (a re-send). */
  private withMemberChecksums(chunk: PlannedChunk, shard: ShardLayout, done: ManifestChunk, before: ManifestChunk | undefined): ManifestChunk {
    const checksums = this.memberChecksums.get(chunk.id) ?? before?.members?.map((m) => m.checksum);
    this.memberChecksums.delete(chunk.id);
    if (!checksums) throw new Error(`shard ${chunk.id}: its members' checksums are unknown`);
    return withMembers(done, shard, checksums);
  }

  private packedFileOf(entry: PlanEntry, store: SourceInfo['kind']): (object: ObjectInfo) => ManifestFile | undefined {
    return (object) => entry.packed?.file(object, { delivered: entry.delivered, plan: entry.chunks, fileErrors: this.fileErrors, algorithm: this.algorithm, store });
  }

  /** A node went down: every chunk already delivered with a copy on it is queued to be sent again. */
  private queueRefillsFrom(nodeId: string): void {
    if (!this.spill) return;
    for (const index of this.spill.indicesWhere((ids) => ids.includes(nodeId))) {
      if (this.refilling.has(index)) continue;
      this.refilling.add(index);
      this.work.push({ kind: 'refill', index });
    }
  }

  /** Sends a delivered chunk again from the source (its pinned version) until it has its copies on live nodes. */
  private async refill(index: number): Promise<void> {
    this.refilling.delete(index);
    const done = this.spill!.chunk(index);
    const chunk = this.spill!.plannedChunk(index);
    if (!done || !chunk || this.fileErrors.has(chunk.object.key)) return;
    const registry = this.nodes.registry;
    const live = done.copies.filter((c) => registry.alive(c.nodeId));
    if (live.length >= this.replicas) return;
    const lost = done.copies.filter((c) => !live.includes(c)).map((c) => c.nodeId);
    const held: HeldCopy[] = live.map((c) => ({ nodeId: c.nodeId, location: c.location, checksum: done.checksum, ...(done.crc ? { crc: done.crc } : {}) }));
    const why = lost.length > 0 ? `its copy on ${lost.join(', ')} is not reachable` : `it has ${live.length} of ${this.replicas} copies`;
    this.emit({ type: 'log', level: 'warn', message: `${chunk.id}: ${why}; sending it again from the source` });
    try {
      const again = await this.deliver(chunk, { held, movedFrom: [...done.movedFrom, ...lost], attemptsBefore: done.attempts }, done);
      if (again.checksum !== done.checksum) throw new Error(`${chunk.id} read again does not hash as before (${again.checksum}, was ${done.checksum})`);
      this.record(index, chunk, { ...again, skipped: false });
    } catch (error) {
      if (this.o.signal?.aborted) return;
      // The chunk keeps what it has; the replication check names it.
      this.emit({ type: 'log', level: 'error', message: `${chunk.id}: sending it again failed (${errorText(error)})` });
    }
  }

  /**
   * Before the run ends: the nodes are probed afresh, and every chunk with fewer than `replicas` copies on live
   * nodes is sent again; what still falls short is the run's shortfall (a degraded run).
   */
  private async ensureReplicas(): Promise<ChunkShortfall[]> {
    const registry = this.nodes.registry;
    for (let round = 0; round < REFILL_ROUNDS && !this.stopped(); round++) {
      await registry.recheck(this.o.signal);
      const short = this.shortIndices();
      if (short.length === 0) break;
      this.work = short.map((index): Work => ({ kind: 'refill', index }));
      for (const index of short) this.refilling.add(index);
      await this.drainWork();
    }
    if (this.stopped()) return [];
    return this.shortIndices().map((i) => {
      const chunk = this.spill!.chunk(i)!;
      const live = chunk.copies.filter((c) => registry.alive(c.nodeId));
      const down = chunk.copies.filter((c) => !registry.alive(c.nodeId)).map((c) => c.nodeId);
      const reason = down.length > 0 ? `its copies on ${down.join(', ')} are on nodes that are down, and no other node took it` : `only ${live.length} node(s) could take it`;
      return { chunkId: chunk.id, file: chunk.file, copies: live.length, wanted: this.replicas, reason };
    });
  }

  /** Delivered chunks with fewer than `replicas` copies on live nodes (their files not failed). */
  private shortIndices(): number[] {
    const registry = this.nodes.registry;
    const short = [...this.spill!.indicesWhere((ids) => ids.filter((id) => registry.alive(id)).length < this.replicas)];
    if (this.fileErrors.size === 0) return short;
    return short.filter((i) => !this.fileErrors.has(this.spill!.chunk(i)!.file));
  }

  private stopped(): boolean {
    return this.fatal !== undefined || this.o.signal?.aborted === true || this.listing.failure !== undefined;
  }

  /**
   * A window's chunks (by their index in it) in runs delivered one after another: a file whose store check hashes
   * its chunks in order is one run (each chunk read in parallel parts instead), every other chunk a run of its own.
   */
  private deliveryRuns(chunks: readonly PlannedChunk[]): number[][] {
    const runs: number[][] = [];
    let current: number[] | undefined;
    chunks.forEach((chunk, i) => {
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
    const message = error instanceof StorageError ? `${error.message} (${error.hint})` : errorText(error);
    this.checks?.failed(chunk.object.key);
    if (!this.fileErrors.has(chunk.object.key)) {
      this.fileErrors.set(chunk.object.key, message);
      this.emit({ type: 'file', key: chunk.object.key, status: 'failed', error: message });
    }
    this.emitChunk(chunk, 'failed', 0, undefined, message);
  }

  /** One transfer attempt: the chunk's bytes from the store to these nodes, through the path each supports. */
  private async transfer(chunk: PlannedChunk, targets: string[], attempt: number): Promise<TransferOutcome> {
    this.emitChunk(chunk, 'reading', attempt, targets[0]);
    const progress = this.progressFor(chunk, targets);
    const crc = this.checks?.crcWanted(chunk.object.key);
    const continueHash = this.pull ? undefined : await this.checks?.continueHashFor(chunk.object.key, chunk.index);
    const signal = this.o.signal;
    const onSending = (): void => this.emitChunk(chunk, 'sending', attempt, targets[0]);
    if (this.pull) return this.pull.transfer(chunk, targets, attempt, { onBytes: progress.add, onSending, ...(crc ? { crc } : {}) }).finally(progress.flush);
    const source = this.sourceOf(chunk, attempt);
    return this.nodes
      .store(chunkMeta(chunk), source, targets, {
        algorithm: this.algorithm,
        onBytes: progress.add,
        onSending,
        ...(crc ? { crc } : {}),
        ...(continueHash ? { continueHash } : {}),
        ...(signal ? { signal } : {}),
      })
      .then(async (outcome) => {
        if (source instanceof ShardSource && outcome.stored.size > 0) this.memberChecksums.set(chunk.id, await source.memberChecksums());
        return outcome;
      })
      .finally(progress.flush);
  }

  private sourceOf(chunk: PlannedChunk, attempt: number): ChunkSource {
    const bucket = this.bucket!;
    if (chunk.shard) return new ShardSource(chunk.shard, { bucket, pool: this.pool, algorithm: this.algorithm, slots: this.readSlots, ...(this.o.signal ? { signal: this.o.signal } : {}) });
    return {
      localRange: () => this.localRange(chunk),
      open: () => this.readChunk(chunk, attempt),
      sourceError: (error: FileCopyError) => bucket.copyError(error, chunk.object.key),
    };
  }

  /**
   * The chunk's bytes from the store (see Bucket.readInParts), each open ranged read holding one of the run's
   * read slots. A file checked in order is read in parts, several at once, and the next chunk's first parts are
   * asked for while this one is sent (one chunk ahead across the run, so the reads never wait at a chunk's
   * boundary); any other chunk is one read. A read that breaks goes on from where it stopped, counted as a retry.
   */
  private readChunk(chunk: PlannedChunk, attempt: number): Promise<Readable> {
    const early = this.readAhead?.chunkId === chunk.id ? this.readAhead.stream : undefined;
    if (early) this.readAhead = undefined;
    const stream = early ?? this.openChunk(chunk, attempt);
    const next = this.nextInFile.get(chunk);
    if (next && !this.readAhead && this.loaded.config.ingestion.max_concurrent_chunks >= 2 * READ_PARTS_AHEAD) {
      const ahead = this.openChunk(next, 1);
      ahead.catch(() => undefined); // its own transfer sees the error
      this.readAhead = { chunkId: next.id, stream: ahead };
    }
    return stream;
  }

  /** Lets go of the chunk read ahead for `chunk` if its transfer did not take it (it was skipped, or failed). */
  private dropReadAhead(chunk?: PlannedChunk): void {
    const ahead = this.readAhead;
    if (!ahead || (chunk && ahead.chunkId !== chunk.id)) return;
    this.readAhead = undefined;
    void ahead.stream.then((stream) => stream.destroy(), () => undefined);
  }

  private openChunk(chunk: PlannedChunk, attempt: number): Promise<Readable> {
    const onRetry = (error: StorageError): void => {
      this.counters.retries++;
      this.readRetries.set(chunk.id, (this.readRetries.get(chunk.id) ?? 0) + 1);
      // Not a chunk state: the chunk goes on from where it was, only the broken read is asked for again.
      this.emit({ type: 'log', level: 'warn', message: `${chunk.id} (attempt ${attempt}): a read broke (${errorText(error)}); reading on from where it stopped` });
    };
    const parts = this.checks?.readsInOrder(chunk.object.key) ? { partSize: READ_PART_BYTES, ahead: READ_PARTS_AHEAD } : { partSize: chunk.size, ahead: 1 };
    const signal = this.o.signal;
    return this.bucket!.readInParts(chunk.object, { offset: chunk.offset, length: chunk.size }, { ...parts, slots: this.readSlots, onRetry, ...(signal ? { signal } : {}) });
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

  private emitChunk(chunk: PlannedChunk, state: ChunkEventState, attempt: number, nodeId?: string, error?: string): void {
    if (!this.o.onEvent) return; // nobody listens (the CLI's --json): a million files made ~5 million events for nothing
    this.emit({ type: 'chunk', id: chunk.id, file: chunk.object.key, index: chunk.index, size: chunk.size, state, attempt, ...(nodeId ? { nodeId } : {}), ...(error ? { error } : {}) });
  }
}

function runOrigin(tool: RunOrigin['tool']): RunOrigin {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER; // no passwd entry (a container's arbitrary uid)
  }
  return { tool, ...(user ? { user } : {}), host: hostname() };
}

function chunkMeta(chunk: PlannedChunk): ChunkMeta {
  return { id: chunk.id, file: chunk.object.key, index: chunk.index, offset: chunk.offset, size: chunk.size, ...(chunk.object.etag ? { sourceEtag: chunk.object.etag } : {}) };
}

function describeShortfall(shortfall: readonly ChunkShortfall[], replicas: number): string {
  const shown = shortfall.slice(0, 10).map((s) => `  ${s.chunkId}: ${s.copies} of ${replicas} copies — ${s.reason}`);
  const more = shortfall.length > shown.length ? `\n  … and ${shortfall.length - shown.length} more (see the manifest's shortfall)` : '';
  return `degraded: ${shortfall.length} chunk(s) have fewer than ${replicas} verified copies on live nodes:\n${shown.join('\n')}${more}\nFix: bring the nodes back or add nodes, then run \`cloud-ingest repair\`.`;
}
