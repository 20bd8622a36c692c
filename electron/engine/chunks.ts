// How files become chunks, and how a file's checksum follows from its chunks'. Pure functions of their inputs.
import { createChunkHash } from './hash/chunk-hash.ts';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { ShardLayout } from './pack/plan.ts';
import type { ObjectInfo } from './storage/driver.ts';

export interface PlannedChunk {
  id: string;
  object: ObjectInfo;
  index: number;
  offset: number;
  size: number;
  /** A shard of packed files (ingestion.pack_below_mb): `object` is the shard itself. */
  shard?: ShardLayout;
}

/** How many chunks a file of `size` bytes is cut into (a zero-byte file has none). */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Chunk i covers [i·size, min((i+1)·size, fileSize)). A zero-byte file has no chunks. */
export function planChunks(objects: readonly ObjectInfo[], chunkSize: number): PlannedChunk[] {
  const chunks: PlannedChunk[] = [];
  for (const object of objects) {
    const count = chunkCount(object.size, chunkSize);
    for (let index = 0; index < count; index++) {
      const offset = index * chunkSize;
      chunks.push({ id: `${object.key}_chunk_${index}`, object, index, offset, size: Math.min(chunkSize, object.size - offset) });
    }
  }
  return chunks;
}

const EMPTY_DIGEST: Record<ChecksumAlgorithm, string> = {
  md5: createChunkHash('md5').digest('hex'),
  sha256: createChunkHash('sha256').digest('hex'),
  crc32c: createChunkHash('crc32c').digest('hex'),
};

/** One chunk: its own checksum. More: hash of the concatenated chunk digests, suffixed with the count (S3 multipart style). */
export function fileChecksum(algorithm: ChecksumAlgorithm, chunkDigests: readonly string[]): string {
  if (chunkDigests.length === 0) return EMPTY_DIGEST[algorithm];
  if (chunkDigests.length === 1) return chunkDigests[0]!;
  const hash = createChunkHash(algorithm);
  for (const digest of chunkDigests) hash.update(Buffer.from(digest, 'hex'));
  return `${hash.digest('hex')}-${chunkDigests.length}`;
}
