// Repair: check every copy a manifest names, restore each missing or damaged one (from a good copy on another
// node, else from the source at the same version: a changed source is reported, never stitched in), give chunks
// short of `replicas` their missing copies, and write the manifest's next version. Every action is journaled;
// running repair again after an interruption restores only what is still wrong.
import type { Readable } from 'node:stream';
import type { Manifest, ManifestChunk, RepairAction, RepairEvent, RepairReport, VerifyProblem } from '../../shared/types.ts';
import { Placer } from '../../shared/placement.ts';
import type { LoadedConfig } from './config.ts';
import { errorText } from './delivery.ts';
import { sharedHashPool } from './hash/pool.ts';
import type { FileCopyError, HashPool } from './hash/pool.ts';
import { JournalWriter } from './journal.ts';
import { forEachLimited, Slots } from './limit.ts';
import { nextManifestPath, readManifest, writeJsonAtomic } from './manifest.ts';
import { nodesForManifest } from './nodes/for-manifest.ts';
import { shardFromStore, shardMembers } from './pack/member.ts';
import { ShardSource } from './pack/source.ts';
import type { ChunkMeta, NodeTarget } from './nodes/node.ts';
import { Nodes } from './nodes/nodes.ts';
import type { ChunkSource } from './nodes/nodes.ts';
import type { Bucket } from './storage/bucket.ts';
import type { ObjectInfo } from './storage/driver.ts';
import { openSource } from './storage/open.ts';
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

/** A chunk that needs copies: the good ones it has, and the nodes whose copies are bad. */
interface Needy {
  chunk: ManifestChunk;
  good: string[];
  bad: VerifyProblem[];
}

export async function repairRun(options: RepairOptions): Promise<RepairReport> {
  const manifest = await readManifest(options.manifestPath);
  const scope = chunksInScope(manifest, options);
  const pool = options.pool ?? sharedHashPool();
  const nodes = new Nodes(options.nodes ?? [...nodesForManifest(options.loaded, manifest.nodes).values()], pool, { probeIntervalMs: 0 });
  const repair = new Repair(options, manifest, nodes, pool);
  try {
    return await repair.run(scope);
  } finally {
    await repair.close();
  }
}

function chunksInScope(manifest: Manifest, o: RepairOptions): ManifestChunk[] {
  if (!o.chunkIds && !o.files) return manifest.chunks;
  const ids = new Set(o.chunkIds ?? []);
  const files = new Set(o.files ?? []);
  const scope = manifest.chunks.filter((c) => ids.has(c.id) || files.has(c.file));
  const unknown = [...ids].filter((id) => !manifest.chunks.some((c) => c.id === id));
  if (unknown.length > 0) throw new RepairError(`${o.manifestPath} has no chunk ${JSON.stringify(unknown[0])}. Fix: pass chunk ids from that manifest (see \`cloud-ingest verify\`).`);
  return scope;
}

class Repair {
  private readonly o: RepairOptions;
  private readonly manifest: Manifest;
  private readonly nodes: Nodes;
  private readonly pool: HashPool;
  private readonly replicas: number;
  private readonly placer = new Placer('balanced');
  private readonly readSlots: Slots;
  private bucket: Promise<Bucket> | undefined;
  private journal: JournalWriter | undefined;
  private readonly changedSources = new Set<string>();
  private readonly actions: RepairAction[] = [];
  /** Each shard's packed files, once a shard needs its source. */
  private packed: Map<string, Manifest['files']> | undefined;
  /** Per chunk in scope: the nodes holding a good copy (checked, or restored). */
  private readonly good = new Map<string, Set<string>>();

  constructor(o: RepairOptions, manifest: Manifest, nodes: Nodes, pool: HashPool) {
    this.o = o;
    this.manifest = manifest;
    this.nodes = nodes;
    this.pool = pool;
    this.replicas = manifest.config.ingestion.replicas;
    this.readSlots = new Slots(manifest.config.ingestion.max_concurrent_chunks);
    for (const chunk of manifest.chunks) for (const copy of chunk.copies) this.placer.record(copy.nodeId, chunk.size);
  }

  async run(scope: ManifestChunk[]): Promise<RepairReport> {
    await this.nodes.registry.recheck(this.o.signal);
    const { problems, needy, checked } = await this.check(scope);
    this.journal = await JournalWriter.open(`${this.o.manifestPath.replace(/\.json$/, '')}.repair.jsonl`);
    let done = 0;
    const total = needy.length;
    const width = this.manifest.config.ingestion.max_concurrent_chunks;
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
    const manifestPath = await this.writeNextManifest();
    const report: RepairReport = {
      previousManifestPath: this.o.manifestPath,
      manifestPath,
      checked,
      problems,
      actions: this.actions,
      changedSources: [...this.changedSources],
      status: (await readManifest(manifestPath)).status,
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

  /** Every copy in scope re-hashed; chunks with a bad copy, or fewer good copies on live nodes than `replicas`. */
  private async check(scope: ManifestChunk[]): Promise<{ problems: VerifyProblem[]; needy: Needy[]; checked: number }> {
    const copies = scope.flatMap((chunk) => chunk.copies.map((copy) => ({ chunk, nodeId: copy.nodeId })));
    const bad = new Map<string, VerifyProblem[]>();
    const problems: VerifyProblem[] = [];
    let done = 0;
    await forEachLimited(copies, this.manifest.config.ingestion.max_concurrent_chunks, async ({ chunk, nodeId }) => {
      const problem = await verifyCopy(this.nodes.get(nodeId), chunk, this.manifest.checksumAlgorithm, this.pool, this.o.signal);
      if (problem) {
        const located: VerifyProblem = { ...problem, nodeId };
        problems.push(located);
        bad.set(chunk.id, [...(bad.get(chunk.id) ?? []), located]);
      }
      this.emit({ type: 'repair-checked', done: ++done, total: copies.length });
    });
    const needy: Needy[] = [];
    for (const chunk of scope) {
      const badHere = bad.get(chunk.id) ?? [];
      const good = chunk.copies.map((c) => c.nodeId).filter((id) => !badHere.some((p) => p.nodeId === id) && this.nodes.registry.alive(id));
      this.good.set(chunk.id, new Set(good));
      if (badHere.length > 0 || good.length < this.replicas) needy.push({ chunk, good, bad: badHere });
    }
    return { problems, needy, checked: copies.length };
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
    const outcome = await this.nodes.store(meta, source, targets, { algorithm: this.manifest.checksumAlgorithm, ...(this.o.signal ? { signal: this.o.signal } : {}) });
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

  private fileOf(chunk: ManifestChunk): Manifest['files'][number] | undefined {
    return this.manifest.files.find((f) => f.key === chunk.file);
  }

  /**
   * A good copy on another node, read back (a folder node's file is copied on a hashing thread, from where the node
   * says it is now: the manifest's path may be of an older layout, or of the folder before it moved).
   */
  private fromCopy(chunk: ManifestChunk, nodeId: string): ChunkSource {
    const node = this.nodes.get(nodeId)!;
    const location = chunk.copies.find((c) => c.nodeId === nodeId)!.location;
    return {
      localRange: async () => (node.kind === 'folder' ? { path: (await node.find(chunk.id))?.location ?? location, offset: 0, length: chunk.size } : undefined),
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
      this.bucket ??= openSource(this.o.loaded, this.manifest.cloud);
      bucket = await this.bucket;
      const members = (this.packed ??= shardMembers(this.manifest)).get(chunk.id);
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
  private async shardFromSource(bucket: Bucket, chunk: ManifestChunk, members: Manifest['files']): Promise<ChunkSource | string> {
    const shard = await shardFromStore(bucket, chunk, members, this.o.signal);
    if (typeof shard === 'string') return `no good copy on any node, and it cannot be packed again from the source: ${shard}; re-ingest its files`;
    return new ShardSource(shard, { bucket, pool: this.pool, algorithm: this.manifest.checksumAlgorithm, slots: this.readSlots, ...(this.o.signal ? { signal: this.o.signal } : {}) });
  }

  /** The manifest's next version: the same run, its copies as repaired, its status as the copies now stand. */
  private async writeNextManifest(): Promise<string> {
    const registry = this.nodes.registry;
    const before = new Map((this.manifest.shortfall ?? []).map((s) => [s.chunkId, s] as const));
    const shortfall = this.manifest.chunks.flatMap((chunk) => {
      const good = this.good.get(chunk.id);
      if (!good) return before.has(chunk.id) ? [before.get(chunk.id)!] : []; // not in scope: as it was
      if (good.size >= this.replicas) return [];
      const failed = this.actions.find((a) => a.chunkId === chunk.id && a.outcome === 'failed');
      return [{ chunkId: chunk.id, file: chunk.file, copies: good.size, wanted: this.replicas, reason: failed?.detail ?? 'no live node could take another copy' }];
    });
    const status: Manifest['status'] = this.manifest.status === 'degraded' || this.manifest.status === 'complete' ? (shortfall.length > 0 ? 'degraded' : 'complete') : this.manifest.status;
    const next: Manifest = { ...this.manifest, status, finishedAt: new Date().toISOString(), previous: this.o.manifestPath, nodes: this.manifest.nodes.map((n) => ({ ...n, healthy: registry.alive(n.id) })) };
    if (shortfall.length > 0) next.shortfall = shortfall;
    else delete next.shortfall;
    const path = await nextManifestPath(this.o.manifestPath);
    await writeJsonAtomic(path, next);
    return path;
  }
}
