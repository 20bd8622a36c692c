// The portable wrapper over node targets, as Bucket is for stores: the run says "store this chunk on these
// nodes" and this picks the transfer path each node supports (a local file copied on a hashing thread, a stream
// hashed and written on one, or one hashed stream teed to every target), so the run never asks a node what it
// can do. Health lives in the NodeRegistry it wraps.
import type { Readable } from 'node:stream';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { ChunkCrc } from '../../../shared/types.ts';
import { FileCopyError } from '../hash/pool.ts';
import type { HashPool, SequentialHash } from '../hash/pool.ts';
import { StorageError } from '../storage/driver.ts';
import { tee } from '../streams.ts';
import type { ChunkMeta, LocalRange, NodeTarget, StoredChunk } from './node.ts';
import { NodeRegistry } from './registry.ts';
import type { RegistryOptions } from './registry.ts';

/** Where a chunk's bytes come from, as the transfer paths need them. */
export interface ChunkSource {
  /** The bytes as a range of a file on this machine, when the source is local (the fastest path); else undefined. */
  localRange(): Promise<LocalRange | undefined>;
  /** The bytes as a stream (one read of the store). */
  open(): Promise<Readable>;
  /** A local copy's source-side failure, as the store's own error. */
  sourceError(error: FileCopyError): unknown;
}

export interface TransferOptions {
  algorithm: ChecksumAlgorithm;
  /** Also take the bytes' CRC of this kind. */
  crc?: ChunkCrc['kind'];
  /** For a file's first chunk stored on one node: receives the hash of its bytes, to carry on over the file. */
  keepHash?: (hash: SequentialHash) => void;
  /** A whole-file hash of the chunks before this one, fed this chunk's bytes in the same pass (HashingWriteOptions.continueHash). */
  continueHash?: SequentialHash;
  signal?: AbortSignal;
  /** The bytes are about to move (after the source opened). */
  onSending?: () => void;
  /** Bytes sent (to every target at once). */
  onBytes?: (bytes: number) => void;
}

/** What one transfer did: the copies stored, each failing node's error, or the source's error. */
export interface TransferOutcome {
  stored: Map<string, StoredChunk>;
  nodeErrors: Map<string, unknown>;
  sourceError?: unknown;
}

export class Nodes {
  readonly registry: NodeRegistry;
  private readonly pool: HashPool;

  constructor(targets: NodeTarget[], pool: HashPool, options: RegistryOptions = {}) {
    this.registry = new NodeRegistry(targets, options);
    this.pool = pool;
  }

  get(id: string): NodeTarget | undefined {
    return this.registry.get(id);
  }

  close(): Promise<void> {
    return this.registry.close();
  }

  /** One read of the chunk, hashed once, stored on every target. Aborting rejects with the signal's reason. */
  async store(meta: ChunkMeta, source: ChunkSource, targets: string[], options: TransferOptions): Promise<TransferOutcome> {
    const nodes = targets.map((id) => this.target(id));
    if (nodes.length === 1) {
      const copied = await this.copyLocal(meta, source, nodes[0]!, options);
      if (copied) return copied;
    }
    let data: Readable;
    try {
      data = await source.open();
    } catch (error) {
      throwIfAborted(options.signal);
      return outcome({ sourceError: error });
    }
    if (nodes.length === 1 && nodes[0]!.writeHashing) return this.writeHashing(meta, data, nodes[0]!, options);
    return this.writeTeed(meta, data, nodes, options);
  }

  /**
   * Whole local files, each a chunk, onto node `nodeId` in one job on a hashing thread (NodeTarget.writeFilesFromDisk):
   * per item its stored copy, or undefined where it failed (the caller sends that one again the usual way, which
   * tells the source's failure from the node's and retries). Undefined for a node that cannot.
   */
  async storeFiles(nodeId: string, items: readonly { meta: ChunkMeta; file: LocalRange }[], options: { algorithm: ChecksumAlgorithm; signal?: AbortSignal }): Promise<(StoredChunk | undefined)[] | undefined> {
    const node = this.target(nodeId);
    if (!node.writeFilesFromDisk) return undefined;
    const results = await node.writeFilesFromDisk(items, { pool: this.pool, algorithm: options.algorithm, ...pick(options, 'signal') });
    return results.map((r) => (r instanceof Error ? undefined : r));
  }

  private target(id: string): NodeTarget {
    const node = this.registry.get(id);
    if (!node) throw new Error(`no node ${id} in this run`);
    return node;
  }

  /** A local file to a node that copies local files on a hashing thread; undefined when that does not apply. */
  private async copyLocal(meta: ChunkMeta, source: ChunkSource, node: NodeTarget, o: TransferOptions): Promise<TransferOutcome | undefined> {
    if (!node.writeFromFile) return undefined;
    let range: LocalRange | undefined;
    try {
      range = await source.localRange();
    } catch (error) {
      return outcome({ sourceError: error });
    }
    if (!range) return undefined;
    o.onSending?.();
    try {
      const options = { pool: this.pool, algorithm: o.algorithm, ...pick(o, 'continueHash', 'signal', 'onBytes') };
      return outcome({ stored: [[node.id, await node.writeFromFile(meta, range, options)]] });
    } catch (error) {
      throwIfAborted(o.signal);
      if (error instanceof FileCopyError) return outcome({ sourceError: source.sourceError(error) });
      return outcome({ nodeErrors: [[node.id, error]] });
    }
  }

  /** One node that hashes and writes on a hashing thread (a folder node): the source goes straight to it. */
  private async writeHashing(meta: ChunkMeta, data: Readable, node: NodeTarget, o: TransferOptions): Promise<TransferOutcome> {
    o.onSending?.();
    try {
      const options = { pool: this.pool, algorithm: o.algorithm, ...pick(o, 'crc', 'keepHash', 'continueHash', 'signal', 'onBytes') };
      return outcome({ stored: [[node.id, await node.writeHashing!(meta, data, options)]] });
    } catch (error) {
      throwIfAborted(o.signal);
      if (isSourceError(error)) return outcome({ sourceError: error });
      return outcome({ nodeErrors: [[node.id, error]] });
    }
  }

  /** The stream hashed once on a hashing thread and teed to every node's plain write. */
  private async writeTeed(meta: ChunkMeta, data: Readable, nodes: NodeTarget[], o: TransferOptions): Promise<TransferOutcome> {
    const tap = this.pool.tap(o.algorithm, { ...(o.crc ? { crc: o.crc } : {}), ...(o.continueHash ? { continues: o.continueHash } : {}) });
    tap.onBytes = o.onBytes;
    data.on('error', (error) => tap.destroy(error));
    tap.once('close', () => data.destroyed || data.destroy()); // a failed node write must not leave the source open
    data.pipe(tap);
    o.onSending?.();
    const branches = nodes.length === 1 ? [tap] : tee(tap, nodes.length);
    const stored: [string, StoredChunk][] = [];
    const nodeErrors: [string, unknown][] = [];
    let sourceError: unknown;
    await Promise.all(
      nodes.map(async (node, i) => {
        try {
          const written = await node.write(meta, branches[i]!, tap.digest, o.signal);
          stored.push([node.id, tap.crc ? { ...written, crc: tap.crc } : written]);
        } catch (error) {
          if (o.signal?.aborted) return;
          if (isSourceError(error)) sourceError = error;
          else nodeErrors.push([node.id, error]);
        }
      }),
    );
    // The whole-file hash takes this chunk's bytes once a copy of them is stored (the tap has seen them all then).
    await tap.settleAlong(stored.length > 0 && sourceError === undefined);
    throwIfAborted(o.signal);
    return outcome({ stored, nodeErrors, sourceError });
  }
}

/** Errors a write rethrows from its source stream: the store's errors, never the node's. */
function isSourceError(error: unknown): boolean {
  return error instanceof StorageError;
}

function outcome(parts: { stored?: [string, StoredChunk][]; nodeErrors?: [string, unknown][]; sourceError?: unknown }): TransferOutcome {
  return { stored: new Map(parts.stored), nodeErrors: new Map(parts.nodeErrors), ...(parts.sourceError !== undefined ? { sourceError: parts.sourceError } : {}) };
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('cancelled');
}

function pick<T extends object, K extends keyof T>(o: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (o[key] !== undefined) out[key] = o[key];
  return out;
}
