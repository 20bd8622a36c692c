// A place chunks are delivered to: a local folder, or a remote node agent over HTTP.
import type { Readable } from 'node:stream';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { Checksum, ChunkCrc } from '../../../shared/types.ts';
import type { HashPool, LocalShard, SequentialHash } from '../hash/pool.ts';

export interface ChunkMeta {
  id: string;
  file: string;
  index: number;
  offset: number;
  size: number;
  /** Source version marker (ETag / generation / size+mtime) the chunk was read from. */
  sourceEtag?: string;
  /** Overwrite whatever copy the node holds under this id, even one it believes identical (repair of damaged bytes). */
  replace?: boolean;
}

export interface StoredChunk extends ChunkMeta {
  checksum: Checksum;
  /** CRC of the bytes, when the writer was asked for one (HashingWriteOptions.crc). */
  crc?: ChunkCrc;
  /** Where the node keeps it: a file path for folder nodes, a URL path for agents. */
  location: string;
}

export interface LocalRange {
  path: string;
  /** The real path of a folder `path` must lie inside, checked where the file is opened (FileCopyJob.inside). */
  inside?: string;
  offset: number;
  length: number;
  etag?: string;
  /** A shard of packed files laid out from local files instead of one range (HashPool.copyFile). */
  pack?: LocalShard;
}

export interface HashingWriteOptions {
  pool: HashPool;
  algorithm: ChecksumAlgorithm;
  /** Also take the bytes' CRC of this kind (StoredChunk.crc). */
  crc?: ChunkCrc['kind'];
  signal?: AbortSignal;
  onBytes?: (bytes: number) => void;
  /**
   * Once the chunk is stored, called with a hash that has taken its bytes and can take more: the start of a
   * whole-file hash, when this is a file's first chunk. Writers that cannot keep one never call it.
   */
  keepHash?: (hash: SequentialHash) => void;
  /**
   * A whole-file hash that has taken the file's chunks before this one: the writer feeds it this chunk's bytes in
   * the same pass, on its hashing thread. It takes them (SequentialHash.inputs counts one more) only once all of
   * them reached the node; a write that fails before leaves it as it was, for the retry. Writers that cannot feed
   * it leave it as it was.
   */
  continueHash?: SequentialHash;
}

export interface NodeProbe {
  ok: boolean;
  latencyMs: number;
  full?: boolean;
  freeBytes?: number;
  chunkCount?: number;
  bytesHeld?: number;
  error?: string;
}

/**
 * Node-level codes (the node is down, full or refuses us) mark the node; `refused` is about one chunk only (the
 * node refused this chunk for its own sake, e.g. HTTP 400 for its metadata) and fails that chunk's file, not the node.
 */
export type NodeErrorCode = 'unreachable' | 'unauthorized' | 'full' | 'checksum_mismatch' | 'conflict' | 'timeout' | 'io' | 'not_found' | 'refused';

/** Errors about one chunk, not the node: retrying it elsewhere would fail the same way. */
const CHUNK_LEVEL_CODES: ReadonlySet<NodeErrorCode> = new Set(['refused']);

/** Whether a delivery error says something about the node (mark it) rather than about the chunk. */
export function isNodeLevelError(error: unknown): boolean {
  return !(error instanceof NodeError && CHUNK_LEVEL_CODES.has(error.code));
}

export class NodeError extends Error {
  readonly code: NodeErrorCode;
  readonly nodeId: string;

  constructor(nodeId: string, code: NodeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NodeError';
    this.nodeId = nodeId;
    this.code = code;
  }
}

export interface NodeTarget {
  readonly id: string;
  readonly kind: 'folder' | 'agent';
  /** Folder path or agent URL, for display. */
  readonly location: string;

  probe(signal?: AbortSignal): Promise<NodeProbe>;
  /** The stored chunk with this id, if the node holds a complete copy. */
  find(chunkId: string, signal?: AbortSignal): Promise<StoredChunk | undefined>;
  /**
   * Streams `data` to the node. `checksum` resolves when the sender has hashed the last byte; the node keeps
   * the chunk only if the bytes it received hash to it (temp name, then atomic rename). Same id and checksum
   * again is a success; same id with another checksum replaces the stale copy for folder nodes and is a
   * conflict for agents unless the sender says it replaces a changed source.
   */
  write(meta: ChunkMeta, data: Readable, checksum: Promise<Checksum>, signal?: AbortSignal): Promise<StoredChunk>;
  /**
   * Optional, for nodes on this machine: the stored copy's checksum (hex) and size, hashed on a hashing thread
   * (verify then reads no bytes on the calling thread). A missing copy rejects with NodeError 'not_found'.
   */
  checksumStored?(chunkId: string, algorithm: ChecksumAlgorithm, pool: HashPool, signal?: AbortSignal): Promise<{ hex: string; bytes: number }>;
  /**
   * Optional, with checksumStored: copies `range` of the stored copy into the existing file `into.path` at byte
   * `into.at`, hashing what it copies, on a hashing thread (reassemble then moves no bytes on the calling thread).
   * Gives that checksum and the stored copy's whole size; `onBytes` hears the bytes copied as they go. A missing copy rejects with NodeError 'not_found'; a copy
   * shorter than the range with FileCopyError side 'source'; a failed write with FileCopyError side 'target'.
   */
  copyStoredInto?(chunkId: string, range: { offset: number; length: number }, into: { path: string; at: number }, algorithm: ChecksumAlgorithm, pool: HashPool, options?: { signal?: AbortSignal; onBytes?: (bytes: number) => void }): Promise<{ hex: string; storedBytes: number }>;
  /**
   * Optional: store a byte range of a local file, copied and hashed on a hashing thread (see HashPool.copyFile).
   * Source-side failures reject with the pool's FileCopyError (side 'source'); the node's own with NodeError.
   */
  writeFromFile?(meta: ChunkMeta, file: LocalRange, options: HashingWriteOptions): Promise<StoredChunk>;
  /**
   * Optional, with writeFromFile: several whole local files, each a chunk, in one job on a hashing thread (see
   * HashPool.copyFiles). Each item is stored or fails on its own, as writeFromFile would store or fail it (its error
   * in its place); the node's failures are NodeErrors.
   */
  writeFilesFromDisk?(items: readonly { meta: ChunkMeta; file: LocalRange }[], options: HashingWriteOptions): Promise<(StoredChunk | Error)[]>;
  /**
   * Optional: store a stream, hashed and written on a hashing thread (see HashPool.fileSink), for nodes on this
   * machine. `data`'s own errors reject as they are; the node's with NodeError.
   */
  writeHashing?(meta: ChunkMeta, data: Readable, options: HashingWriteOptions): Promise<StoredChunk>;
  read(chunkId: string, signal?: AbortSignal): Promise<Readable>;
  list(signal?: AbortSignal): AsyncIterable<StoredChunk>;
  close(): Promise<void>;
}
