// Repair: check every copy a manifest names, restore each missing or damaged one (from a good copy on another
// node, else from the source at the same version: a changed source is reported, never stitched in), give chunks
// short of `replicas` their missing copies, and write the manifest's next version. Every action is journaled;
// running repair again after an interruption restores only what is still wrong.
import type { Readable } from 'node:stream';
import type { ChunkShortfall, Manifest, ManifestChunk, ManifestFile, RepairAction, RepairEvent, RepairReport, VerifyProblem } from '../../shared/types.ts';
import { Placer } from '../../shared/placement.ts';
import type { LoadedConfig } from './config.ts';
import { errorText } from './delivery.ts';
import { sharedHashPool } from './hash/pool.ts';
import type { FileCopyError, HashPool } from './hash/pool.ts';
import { JournalWriter } from './journal.ts';
import { forEachLimited, forEachStreamed, Slots } from './limit.ts';
import { nextManifestPath, StreamedArray, writeJsonAtomic } from './manifest.ts';
import { chunkEntryProblem, chunkIdOf, chunkLines, whereInManifest } from './manifest-check.ts';
import type { RawJson } from './manifest.ts';
import { ManifestReader } from './manifest-reader.ts';
import { nodesForManifest } from './nodes/for-manifest.ts';
import { shardFromStore } from './pack/member.ts';
import { ShardSource } from './pack/source.ts';
import type { ChunkMeta, NodeTarget } from './nodes/node.ts';
import { Nodes } from './nodes/nodes.ts';
import type { ChunkSource } from './nodes/nodes.ts';
import type { Bucket } from './storage/bucket.ts';
import type { ObjectInfo } from './storage/driver.ts';
import { openSource } from './storage/open.ts';
import { KeyIndex } from './spill.ts';
import { verifyCopy } from './verify.ts';

export interface RepairOptions {
  loaded: LoadedConfig;
  manifestPath: string;
  /** Limit repair to these chunks, or to these files' chunks; all when both are absent. */
  chunkIds?: string[];
  files?: string[];
  signal?: AbortSignal;
  onEvent?: (event: RepairEvent) => void;
  pool?: HashPool;
  /** Overrides for tests; normally the manifest's nodes opened from the config. */
  nodes?: NodeTarget[];
}

export class RepairError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepairError';
  }
}

/** A chunk that needs copies: the good ones it has, and the nodes whose copies are bad; `at`: its place in the manifest. */
interface Needy {
  chunk: ManifestChunk;
  at: number;
  good: string[];
  bad: VerifyProblem[];
}

/**
 * The manifest is streamed, never held: a pass to survey its chunks, a pass to check the copies in scope, a pass
 * for the files of the chunks that need their source (if any), and the next version written from the old one line
 * by line, only the chunks repaired written anew. Held: the chunks that need repair, and the problems found.
 */
export async function repairRun(options: RepairOptions): Promise<RepairReport> {
  const manifest = await ManifestReader.open(options.manifestPath);
  const pool = options.pool ?? sharedHashPool();
  const nodes = new Nodes(options.nodes ?? [...nodesForManifest(options.loaded, manifest.tail.nodes).values()], pool, { probeIntervalMs: 0 });
  const repair = new Repair(options, manifest, nodes, pool);
  try {
    return await repair.run();
  } finally {
    await repair.close();
  }
}

/** The chunks repair looks at: every chunk, or those named by id or by their file (--chunk, --file). */
class Scope {
  private readonly ids: Set<string> | undefined;
  private readonly files: Set<string> | undefined;

  constructor(o: RepairOptions) {
    this.ids = o.chunkIds || o.files ? new Set(o.chunkIds ?? []) : undefined;
    this.files = o.chunkIds || o.files ? new Set(o.files ?? []) : undefined;
  }

  has(chunk: Pick<ManifestChunk, 'id' | 'file'>): boolean {
    return !this.ids || this.ids.has(chunk.id) || this.files!.has(chunk.file);
  }

  /** The chunk ids asked for that are not among `seen`. */
  unknown(seen: ReadonlySet<string>): string[] {
    return [...(this.ids ?? [])].filter((id) => !seen.has(id));
  }
}

class Repair {
  private readonly o: RepairOptions;
  private readonly manifest: ManifestReader;
  private readonly head: ManifestReader['head'];
  private readonly scope: Scope;
  private readonly nodes: Nodes;
  private readonly pool: HashPool;
  private readonly replicas: number;
  private readonly width: number;
  private readonly placer = new Placer('balanced');
  private readonly readSlots: Slots;
  private bucket: Promise<Bucket> | undefined;
  private journal: JournalWriter | undefined;
  private readonly changedSources = new Set<string>();
  private readonly actions: RepairAction[] = [];
  /** The files of the chunks that need repair, and each such shard's packed files (filesOf). */
  private files = new Map<string, ManifestFile>();
  private packed = new Map<string, ManifestFile[]>();
  /** Per chunk that needs repair: the nodes holding a good copy (checked, or restored). */
  private readonly good = new Map<string, Set<string>>();
  /** Where the chunks of the manifest's shortfall are in it (survey), to keep the shortfall in manifest order. */
  private readonly shortAt = new Map<string, number>();
  /**
   * Chunk entries repair must not act on, by their place among the chunks, with why (naming the manifest's line):
   * damaged entries, and entries that share their id with another (a copy restored under that id would overwrite
   * the other chunk's copy on the node). Their lines are kept as they are and they stay in the shortfall.
   */
  private readonly refused = new Map<number, { chunkId: string; file: string; why: string }>();

  constructor(o: RepairOptions, manifest: ManifestReader, nodes: Nodes, pool: HashPool) {
    this.o = o;
    this.manifest = manifest;
    this.head = manifest.head;
    this.scope = new Scope(o);
    this.nodes = nodes;
    this.pool = pool;
    this.replicas = this.head.config.ingestion.replicas;
    this.width = this.head.config.ingestion.max_concurrent_chunks;
    this.readSlots = new Slots(this.width);
  }

  async run(): Promise<RepairReport> {
    const copies = await this.survey();
    await this.nodes.registry.recheck(this.o.signal);
    const { problems, needy } = await this.check(copies);
    if (needy.length > 0) await this.filesOf(needy);
    this.journal = await JournalWriter.open(`${this.o.manifestPath.replace(/\.json$/, '')}.repair.jsonl`);
    let done = 0;
    const total = needy.length;
    const width = this.width;
    await forEachLimited(needy, width, async (item) => {
      for (const action of await this.restore(item)) {
        this.actions.push(action);
        this.journal?.append({ type: 'repair', at: new Date().toISOString(), action });
        this.emit({ type: 'repair-action', action, done, total });
      }
      done++;
    }, () => this.o.signal?.aborted === true);
    await this.journal.close();
    this.journal = undefined;
    const { manifestPath, status } = await this.writeNextManifest(needy);
    const report: RepairReport = {
      previousManifestPath: this.o.manifestPath,
      manifestPath,
      checked: copies,
      problems,
      actions: this.actions,
      changedSources: [...this.changedSources],
      status,
    };
    this.emit({ type: 'repair-finished', report });
    return report;
  }

  async close(): Promise<void> {
    await this.journal?.close().catch(() => undefined);
    await this.nodes.close();
    await (await this.bucket?.catch(() => undefined))?.close();
  }

  private emit(event: RepairEvent): void {
    this.o.onEvent?.(event);
  }

  /**
   * The first pass: every copy counted where it is (placement of restored copies keeps the nodes even), the copies in
   * scope counted (for progress), chunk ids asked for that the manifest lacks refused.
   */
  private async survey(): Promise<number> {
    const seen = new Set<string>();
    const short = new Set((this.head.shortfall ?? []).map((s) => s.chunkId));
    let inScope = 0;
    let at = 0;
    const ids = new KeyIndex();
    const twins = new Set<string>(); // ids whose hash was seen before: the same id, or (rarely) one of the same hash
    const damaged = new Map<number, { chunk: unknown; why: string }>();
    for await (const chunk of this.manifest.chunks()) {
      const why = chunkEntryProblem(chunk);
      if (why) {
        damaged.set(at++, { chunk, why });
        continue;
      }
      if (!ids.candidates(chunk.id).next().done) twins.add(chunk.id);
      ids.add(chunk.id, at);
      for (const copy of chunk.copies) this.placer.record(copy.nodeId, chunk.size);
      if (this.scope.has(chunk)) {
        inScope += chunk.copies.length;
        if (this.o.chunkIds) seen.add(chunk.id);
      }
      if (short.has(chunk.id)) this.shortAt.set(chunk.id, at);
      at++;
    }
    const unknown = this.scope.unknown(seen);
    if (unknown.length > 0) throw new RepairError(`${this.o.manifestPath} has no chunk ${JSON.stringify(unknown[0])}. Fix: pass chunk ids from that manifest (see \`cloud-ingest verify\`).`);
    await this.refuse(damaged, twins.size > 0 ? await this.sharedIds(twins) : new Map());
    return inScope;
  }

  /** Where each of these ids is among the chunks, for those listed more than once (a second pass, only when the first saw one). */
  private async sharedIds(twins: ReadonlySet<string>): Promise<Map<string, number[]>> {
    const places = new Map<string, number[]>();
    let at = 0;
    for await (const chunk of this.manifest.chunks()) {
      if (!chunkEntryProblem(chunk) && twins.has(chunk.id)) places.set(chunk.id, [...(places.get(chunk.id) ?? []), at]);
      at++;
    }
    return new Map([...places].filter(([, list]) => list.length > 1));
  }

  /** Records the entries repair will not act on, each with why, naming its line. */
  private async refuse(damaged: ReadonlyMap<number, { chunk: unknown; why: string }>, shared: ReadonlyMap<string, number[]>): Promise<void> {
    if (damaged.size === 0 && shared.size === 0) return;
    const path = this.o.manifestPath;
    const lines = await chunkLines(path, [...damaged.keys(), ...[...shared.values()].flat()]);
    const fix = 'Fix: restore the manifest the run wrote (it is not meant to be edited), or ingest the file again.';
    for (const [at, { chunk, why }] of damaged) {
      const file = (chunk as { file?: unknown } | null)?.file;
      this.refused.set(at, { chunkId: chunkIdOf(chunk), file: typeof file === 'string' ? file : '?', why: `${whereInManifest(path, lines.get(at), at)}: the chunk entry is damaged (${why}); repair leaves it as it is. ${fix}` });
    }
    for (const [id, places] of shared) {
      const where = places.map((at) => lines.get(at)).every((line) => line !== undefined) ? `lines ${places.map((at) => lines.get(at)).join(', ')}` : `chunk entries ${places.map((at) => at + 1).join(', ')}`;
      for (const at of places) {
        this.refused.set(at, { chunkId: id, file: '?', why: `${path} lists chunk id ${JSON.stringify(id)} ${places.length} times (${where}): a copy restored under that id would overwrite another entry's copy, so repair leaves them as they are. ${fix}` });
      }
    }
  }

  /** Every copy in scope re-hashed; chunks with a bad copy, or fewer good copies on live nodes than `replicas`. */
  private async check(total: number): Promise<{ problems: VerifyProblem[]; needy: Needy[] }> {
    const problems: VerifyProblem[] = [];
    const needy: Needy[] = [];
    let done = 0;
    const inScope = async function* (this: Repair): AsyncGenerator<{ chunk: ManifestChunk; at: number }> {
      let at = 0;
      for await (const chunk of this.manifest.chunks()) {
        if (!this.refused.has(at) && this.scope.has(chunk)) yield { chunk, at };
        at++;
      }
    }.call(this);
    await forEachStreamed(inScope, this.width, async ({ chunk, at }) => {
      const bad: VerifyProblem[] = [];
      for (const { nodeId } of chunk.copies) {
        const problem = await verifyCopy(this.nodes.get(nodeId), chunk, this.head.checksumAlgorithm, this.pool, this.o.signal);
        if (problem) bad.push({ ...problem, nodeId });
        this.emit({ type: 'repair-checked', done: ++done, total });
      }
      problems.push(...bad);
      const good = chunk.copies.map((c) => c.nodeId).filter((id) => !bad.some((p) => p.nodeId === id) && this.nodes.registry.alive(id));
      if (bad.length === 0 && good.length >= this.replicas) return;
      this.good.set(chunk.id, new Set(good));
      needy.push({ chunk, at, good, bad });
    });
    needy.sort((a, b) => a.at - b.at);
    for (const { chunkId, why } of this.refusedInScope()) problems.push({ chunkId, nodeId: '?', reason: 'unreadable', detail: why });
    return { problems, needy };
  }

  /** The files the chunks needing repair belong to, and the packed files of the shards among them: one pass. */
  private async filesOf(needy: readonly Needy[]): Promise<void> {
    const { byKey, byShard } = await this.manifest.filesFor(new Set(needy.map((n) => n.chunk.file)), new Set(needy.map((n) => n.chunk.id)));
    this.files = byKey;
    this.packed = byShard;
  }

  /** Restores one chunk's bad copies (on their own node when it is alive, else elsewhere) and tops it up to `replicas`. */
  private async restore({ chunk, good, bad }: Needy): Promise<RepairAction[]> {
    const registry = this.nodes.registry;
    const targets = bad.map((p) => p.nodeId).filter((id) => registry.alive(id));
    const taken = new Set([...good, ...targets]);
    const missing = this.replicas - good.length - targets.length;
    if (missing > 0) {
      const candidates = registry.usable().filter((n) => !taken.has(n.id) && !bad.some((p) => p.nodeId === n.id));
      targets.push(...this.placer.choose(chunk.size, candidates.map((n) => ({ id: n.id, weight: registry.weight(n.id) })), missing));
    }
    if (targets.length === 0) return [{ chunkId: chunk.id, file: chunk.file, nodeId: bad[0]?.nodeId ?? '?', from: 'source', outcome: 'failed', detail: 'no live node can take a copy' }];
    const from = good[0];
    const source = from ? this.fromCopy(chunk, from) : await this.fromSource(chunk);
    if (typeof source === 'string') return targets.map((nodeId) => ({ chunkId: chunk.id, file: chunk.file, nodeId, from: 'source', outcome: 'failed', detail: source }));
    const meta: ChunkMeta = { id: chunk.id, file: chunk.file, index: chunk.index, offset: chunk.offset, size: chunk.size, replace: true, ...(this.fileOf(chunk)?.etag ? { sourceEtag: this.fileOf(chunk)!.etag! } : {}) };
    const outcome = await this.nodes.store(meta, source, targets, { algorithm: this.head.checksumAlgorithm, ...(this.o.signal ? { signal: this.o.signal } : {}) });
    return targets.map((nodeId): RepairAction => {
      const base = { chunkId: chunk.id, file: chunk.file, nodeId, from: from ? ('copy' as const) : ('source' as const), ...(from ? { sourceNodeId: from } : {}) };
      const stored = outcome.stored.get(nodeId);
      if (stored && stored.checksum.hex === chunk.checksum) {
        this.place(chunk, nodeId, stored.location);
        this.good.get(chunk.id)?.add(nodeId);
        return { ...base, outcome: 'restored' };
      }
      const why = stored ? `the copy written hashes to ${stored.checksum.hex}, not ${chunk.checksum}` : errorText(outcome.nodeErrors.get(nodeId) ?? outcome.sourceError ?? 'not stored');
      return { ...base, outcome: 'failed', detail: why };
    });
  }

  /** Records a restored copy in the manifest chunk (replacing a copy on a node that is down, if it had one). */
  private place(chunk: ManifestChunk, nodeId: string, location: string): void {
    const registry = this.nodes.registry;
    if (chunk.copies.some((c) => c.nodeId === nodeId)) {
      chunk.copies = chunk.copies.map((c) => (c.nodeId === nodeId ? { nodeId, location } : c));
      return;
    }
    const down = chunk.copies.findIndex((c) => !registry.alive(c.nodeId));
    if (down >= 0) {
      chunk.movedFrom = [...chunk.movedFrom, chunk.copies[down]!.nodeId];
      chunk.copies = chunk.copies.filter((_, i) => i !== down);
    }
    chunk.copies = [...chunk.copies, { nodeId, location }];
    chunk.node = chunk.copies[0]!.nodeId;
    chunk.path = chunk.copies[0]!.location;
  }

  /** The refused entries this repair is about (all, or those named by --chunk/--file), with their places. */
  private refusedInScope(): { at: number; chunkId: string; file: string; why: string }[] {
    return [...this.refused].filter(([, r]) => this.scope.has({ id: r.chunkId, file: r.file })).map(([at, r]) => ({ at, ...r }));
  }

  private fileOf(chunk: ManifestChunk): ManifestFile | undefined {
    return this.files.get(chunk.file);
  }

  /**
   * A good copy on another node, read back (a folder node's file is copied on a hashing thread, from where the node
   * says it is now: the manifest's path may be of an older layout, or of the folder before it moved).
   */
  private fromCopy(chunk: ManifestChunk, nodeId: string): ChunkSource {
    const node = this.nodes.get(nodeId)!;
    return {
      // Where the node finds it, never the manifest's `location`: an edited manifest must not choose what is read.
      localRange: async () => {
        const found = node.kind === 'folder' ? await node.find(chunk.id) : undefined;
        return found ? { path: found.location, offset: 0, length: chunk.size } : undefined;
      },
      open: (): Promise<Readable> => node.read(chunk.id, this.o.signal),
      sourceError: (error: FileCopyError) => new Error(`reading the good copy on ${nodeId} failed: ${error.message}`),
    };
  }

  /** The chunk's range from the store, pinned to the version the run read; a message when that version is gone. */
  private async fromSource(chunk: ManifestChunk): Promise<ChunkSource | string> {
    const file = this.fileOf(chunk);
    let bucket: Bucket;
    let object: ObjectInfo;
    try {
      this.bucket ??= openSource(this.o.loaded, this.head.cloud);
      bucket = await this.bucket;
      const members = this.packed.get(chunk.id);
      if (members) return await this.shardFromSource(bucket, chunk, members);
      object = await bucket.stat(chunk.file, this.o.signal);
    } catch (error) {
      return `no good copy on any node, and the source could not be read: ${errorText(error)}`;
    }
    if (file?.etag !== undefined && object.etag !== file.etag) {
      this.changedSources.add(chunk.file);
      return `no good copy on any node, and ${chunk.file} changed at the source since the run (version ${file.etag} → ${object.etag ?? '?'}); re-ingest it`;
    }
    return {
      localRange: async () => {
        const file = await bucket.localFile(object);
        return file ? { ...file, offset: chunk.offset, length: chunk.size, ...(object.etag ? { etag: object.etag } : {}) } : undefined;
      },
      open: () => bucket.readInParts(object, { offset: chunk.offset, length: chunk.size }, { partSize: chunk.size, ahead: 1, slots: this.readSlots, ...(this.o.signal ? { signal: this.o.signal } : {}) }),
      sourceError: (error: FileCopyError) => bucket.copyError(error, chunk.file),
    };
  }

  /** A shard packed again from its files at the versions the run packed (ingestion.pack_below_mb). */
  private async shardFromSource(bucket: Bucket, chunk: ManifestChunk, members: ManifestFile[]): Promise<ChunkSource | string> {
    const shard = await shardFromStore(bucket, chunk, members, this.o.signal);
    if (typeof shard === 'string') return `no good copy on any node, and it cannot be packed again from the source: ${shard}; re-ingest its files`;
    return new ShardSource(shard, { bucket, pool: this.pool, algorithm: this.head.checksumAlgorithm, slots: this.readSlots, ...(this.o.signal ? { signal: this.o.signal } : {}) });
  }

  /**
   * The manifest's next version: the same run, its copies as repaired, its status as the copies now stand. Written
   * from the old one line by line: its files as they were, its chunks as they were but for those repaired.
   */
  private async writeNextManifest(needy: readonly Needy[]): Promise<{ manifestPath: string; status: Manifest['status'] }> {
    const registry = this.nodes.registry;
    const kept = (this.head.shortfall ?? []).filter((s) => !this.scope.has({ id: s.chunkId, file: s.file })).map((s) => ({ s, at: this.shortAt.get(s.chunkId) ?? -1 }));
    const found = needy.flatMap(({ chunk, at }) => {
      const good = this.good.get(chunk.id)!;
      if (good.size >= this.replicas) return [];
      const failed = this.actions.find((a) => a.chunkId === chunk.id && a.outcome === 'failed');
      const s: ChunkShortfall = { chunkId: chunk.id, file: chunk.file, copies: good.size, wanted: this.replicas, reason: failed?.detail ?? 'no live node could take another copy' };
      return [{ s, at }];
    });
    const refused = this.refusedInScope().map(({ at, chunkId, file, why }) => ({ s: { chunkId, file, copies: 0, wanted: this.replicas, reason: why }, at }));
    const shortfall = [...kept, ...found, ...refused].sort((a, b) => a.at - b.at).map(({ s }) => s);
    const was = this.head.status;
    const status: Manifest['status'] = was === 'degraded' || was === 'complete' ? (shortfall.length > 0 ? 'degraded' : 'complete') : was;
    const repaired = new Map(needy.map(({ chunk, at }) => [at, chunk]));
    const { shortfall: _before, previous: _previous, ...head } = this.head;
    const next = {
      ...head,
      status,
      finishedAt: new Date().toISOString(),
      previous: this.o.manifestPath,
      ...(shortfall.length > 0 ? { shortfall } : {}),
      files: new StreamedArray(() => this.manifest.rawEntries('files')),
      chunks: new StreamedArray(() => this.nextChunks(repaired)),
      nodes: this.manifest.tail.nodes.map((n) => ({ ...n, healthy: registry.alive(n.id) })),
      totals: this.manifest.tail.totals,
    };
    const manifestPath = await nextManifestPath(this.o.manifestPath);
    await writeJsonAtomic(manifestPath, next);
    return { manifestPath, status };
  }

  /** The chunks as written before, but for those repaired (their copies as they now are), by their place. */
  private async *nextChunks(repaired: ReadonlyMap<number, ManifestChunk>): AsyncGenerator<RawJson | ManifestChunk> {
    let at = 0;
    for await (const raw of this.manifest.rawEntries('chunks')) yield repaired.get(at++) ?? raw;
  }
}
