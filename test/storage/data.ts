// Test data made here, streamed to disk: random bytes with their MD5 known.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { crc32cUpdate, crcBase64 } from '../../electron/engine/hash/crc32c.js';

export const MiB = 1024 * 1024;

/** Writes `size` random bytes to `path` in 4 MiB blocks; returns their MD5 (hex). */
export async function makeRandomFile(path: string, size: number): Promise<string> {
  const md5 = createHash('md5');
  const out = createWriteStream(path);
  for (let written = 0; written < size; ) {
    const block = randomBytes(Math.min(4 * MiB, size - written));
    md5.update(block);
    written += block.length;
    if (!out.write(block)) await new Promise<void>((res) => out.once('drain', () => res()));
  }
  out.end();
  await finished(out);
  return md5.digest('hex');
}

/** Hashes a stream; returns md5 hex and the byte count. */
export async function md5OfStream(stream: Readable): Promise<{ md5: string; bytes: number }> {
  const h = createHash('md5');
  let bytes = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { md5: h.digest('hex'), bytes };
}

export function md5(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

/** MD5 of `length` bytes of a local file from `start`. */
export async function md5OfRange(path: string, start: number, length: number): Promise<string> {
  const h = createHash('md5');
  if (length > 0) for await (const part of createReadStream(path, { start, end: start + length - 1, highWaterMark: MiB })) h.update(part as Buffer);
  return h.digest('hex');
}

/** The CRC32C or CRC32 of a whole file, streamed, in base64 as stores give it. */
export async function crcOfFile(path: string, kind: 'crc32c' | 'crc32'): Promise<string> {
  let crc = 0;
  for await (const piece of createReadStream(path, { highWaterMark: MiB })) crc = kind === 'crc32c' ? crc32cUpdate(crc, piece as Buffer) : crc32(piece as Buffer, crc);
  return crcBase64(crc);
}

/** CRC-32C over a stream of updates: the reference the tests compare the engine's CRCs with. */
export class Crc32c {
  private crc = 0;

  update(data: Uint8Array): this {
    this.crc = crc32cUpdate(this.crc, data);
    return this;
  }

  /** The value as an unsigned 32-bit integer. */
  value(): number {
    return this.crc;
  }

  /** Big-endian, base64: the form GCS (crc32c) and S3 (ChecksumCRC32C) use. */
  base64(): string {
    return crcBase64(this.crc);
  }
}
