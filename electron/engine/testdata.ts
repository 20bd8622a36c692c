// Deterministic test data: an AES-CTR keystream seeded by the file name, so every machine makes the same bytes
// at several hundred MB/s without holding a file in memory.
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const BLOCK = 1024 * 1024;

export function deterministicStream(seed: string, size: number): Readable {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(BLOCK);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(BLOCK, left);
      left -= n;
      this.push(cipher.update(n === BLOCK ? zeros : zeros.subarray(0, n)));
    },
  });
}

/** Writes `size` deterministic bytes to `path` (temp name, then rename); keeps an existing file of the right size. */
export async function ensureDataFile(path: string, size: number, seed: string = path): Promise<boolean> {
  try {
    if ((await stat(path)).size === size) return false;
  } catch {
    // absent: make it
  }
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.part`;
  await pipeline(deterministicStream(seed, size), createWriteStream(temp));
  await rename(temp, path);
  return true;
}

const MIB = 1024 * 1024;

/** The original design's test files: its names and sizes, per simulated cloud. */
export const ORIGINAL_TEST_FILES: { folder: string; name: string; mib: number }[] = [
  { folder: 'aws_s3_simulation', name: 'training_batch_1.dat', mib: 500 },
  { folder: 'aws_s3_simulation', name: 'training_batch_2.dat', mib: 300 },
  { folder: 'aws_s3_simulation', name: 'validation_data.dat', mib: 100 },
  { folder: 'gcp_gcs_simulation', name: 'training_batch_3.dat', mib: 600 },
  { folder: 'gcp_gcs_simulation', name: 'training_batch_4.dat', mib: 400 },
  { folder: 'azure_blob_simulation', name: 'training_batch_5.dat', mib: 200 },
];

/** What make-test-data named these files before it kept the original design's names: reported, never deleted. */
export const EARLIER_TEST_FILES = ORIGINAL_TEST_FILES.map((file) => ({ folder: file.folder, name: `training_data_${file.mib}mb.bin` }));

export function testFileBytes(mib: number, scale: number): number {
  return Math.max(1, Math.round(mib * MIB * scale));
}
