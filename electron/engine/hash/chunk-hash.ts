// A chunk checksum on the calling thread, for the few places that hash small inputs there (composite file
// checksums, an agent hashing the bytes it receives): md5 and sha256 from node:crypto, crc32c from crc32c.js
// (native CPU instructions when available). Bulk hashing belongs on the hashing pool.
import { createHash } from 'node:crypto';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import { crc32cUpdate } from './crc32c.js';

export interface ChunkHash {
  update(bytes: Uint8Array): ChunkHash;
  digest(encoding: 'hex'): string;
}

export function createChunkHash(algorithm: ChecksumAlgorithm): ChunkHash {
  if (algorithm !== 'crc32c') return createHash(algorithm);
  let value = 0;
  const hash: ChunkHash = {
    update(bytes) {
      value = crc32cUpdate(value, bytes);
      return hash;
    },
    digest: () => value.toString(16).padStart(8, '0'),
  };
  return hash;
}
