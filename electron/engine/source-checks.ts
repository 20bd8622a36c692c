// A run's checks of delivered files against the checksums their store keeps for whole objects, the cheapest
// way each file allows (chooseSourceCheck): a one-chunk file's own checksum; the store's CRC32C or CRC32 combined from
// the chunks' CRCs taken during delivery; or a second hash over the chunks in order as they arrive
// (SourceChecksumFollower). A file whose chunks lack what that needs is read back from its nodes at the end.
import type { Readable } from 'node:stream';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { ChunkCrc, ManifestChunk, ManifestFile } from '../../shared/types.ts';
import { chunkCount } from './chunks.ts';
import { isCrcKind } from './hash/pool.ts';
import type { HashPool, SequentialHash } from './hash/pool.ts';
import type { NodeRegistry } from './nodes/registry.ts';
import type { ObjectInfo, SourceInfo } from './storage/driver.ts';
import { checkSourceChecksum, chooseSourceCheck, combinedCrc, SourceChecksumFollower } from './storage/source-checksum.ts';
import type { ChunkBytes, SourceCheckChoice } from './storage/source-checksum.ts';

export interface SourceChecksOptions {
  store: SourceInfo['kind'];
  algorithm: ChecksumAlgorithm;
  chunkSize: number;
  pool: HashPool;
  registry: NodeRegistry;
  signal?: AbortSignal;
}

export class SourceChecks {
  private readonly o: SourceChecksOptions;
  /** How each file with a store checksum is checked. */
  private readonly choices = new Map<string, SourceCheckChoice>();
  /** Per file whose store checksum needs its bytes hashed again. */
  private readonly followers = new Map<string, SourceChecksumFollower>();

  constructor(options: SourceChecksOptions) {
    this.o = options;
  }

  /** Starts following every object given (a window of the listing) the store keeps a usable checksum for. */
  start(objects: readonly ObjectInfo[]): void {
    const { store, chunkSize, algorithm, pool, signal } = this.o;
    for (const object of objects) {
      const chunks = chunkCount(object.size, chunkSize);
      const choice = chooseSourceCheck(object, store, chunks, algorithm);
      if (!choice) continue;
      this.choices.set(object.key, choice);
      const follower = SourceChecksumFollower.for(choice, chunks, pool, signal);
      if (follower) this.followers.set(object.key, follower);
    }
  }

  /** The CRC this file's chunks should carry: its store's CRC is checked by combining them. */
  crcWanted(key: string): ChunkCrc['kind'] | undefined {
    const choice = this.choices.get(key);
    const algorithm = choice?.plan.algorithm;
    return choice?.mode === 'combine' && isCrcKind(algorithm) ? algorithm : undefined;
  }

  /** Whether this file's chunks are best read one after another, in order: its store check hashes them in order. */
  readsInOrder(key: string): boolean {
    return this.followers.has(key);
  }

  /**
   * For a chunk of a file checked in order: the whole-file hash its transfer feeds the chunk's bytes to in the same
   * pass, so no chunk is read back from its nodes for the store's checksum (undefined: the chunk is read back).
   */
  continueHashFor(key: string, index: number): Promise<SequentialHash | undefined> {
    return this.followers.get(key)?.continueFor(index) ?? Promise.resolve(undefined);
  }

  /** Chunk `index` of `key` is on its nodes (delivered now, or by the run being resumed). */
  delivered(key: string, index: number, chunk: ManifestChunk): void {
    this.followers.get(key)?.add(index, this.bytesOf(chunk));
  }

  /** The file failed: there is nothing left to check. */
  failed(key: string): void {
    this.followers.get(key)?.discard();
  }

  /** Records the store's checksum on `file` and fails the file when the delivered bytes do not match it. */
  async check(file: ManifestFile, object: ObjectInfo, chunks: ManifestChunk[]): Promise<void> {
    const choice = this.choices.get(object.key);
    if (!choice) return;
    try {
      const crc = this.crcWanted(object.key);
      const actual = crc ? combinedCrc(crc, chunks) : await this.followers.get(object.key)?.result();
      const result = await checkSourceChecksum(
        {
          object,
          chunks: chunks.map((c) => ({ id: c.id, checksum: c.checksum })),
          algorithm: this.o.algorithm,
          store: this.o.store,
          pool: this.o.pool,
          chunkBytes: (id) => this.bytesOf(chunks.find((c) => c.id === id)!),
          ...(this.o.signal ? { signal: this.o.signal } : {}),
        },
        { plan: choice.plan, ...(actual !== undefined ? { actual } : {}) },
      );
      if (!result) return;
      file.sourceChecksum = result;
      if (!result.matched) {
        file.status = 'failed';
        file.error = `the delivered bytes do not match the store's ${result.kind} checksum ${result.value}`;
      }
    } catch (error) {
      file.status = 'failed';
      file.error = `could not check the store's checksum: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** The file is summarized: forget it (a run of a million files keeps only the files of the window in flight). */
  done(key: string): void {
    this.followers.get(key)?.discard();
    this.followers.delete(key);
    this.choices.delete(key);
  }

  /** Releases every hash still open (a cancelled or failed run). */
  close(): void {
    for (const follower of this.followers.values()) follower.discard();
  }

  /** Where a delivered chunk can be read again: its file on a folder node if it has one, else any copy. */
  private bytesOf(chunk: ManifestChunk): ChunkBytes {
    const local = chunk.copies.find((c) => this.o.registry.get(c.nodeId)?.kind === 'folder')?.location;
    return local ? { file: local } : { stream: () => this.readAnyCopy(chunk) };
  }

  private async readAnyCopy(chunk: ManifestChunk): Promise<Readable> {
    let lastError: unknown;
    for (const copy of chunk.copies) {
      try {
        return await this.o.registry.get(copy.nodeId)!.read(chunk.id, this.o.signal);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError ?? new Error(`no copy of ${chunk.id}`);
  }
}
