// Chunk sources for the node tests: bytes streamed in odd-sized pieces with their checksum resolving after the last
// byte (as the engine's hashing tap does), and sources that fail before their first byte or part way through.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Checksum } from '../../shared/types.ts';

export const KiB = 1024;
export const MiB = 1024 * KiB;

export interface ChunkSource {
  data: Readable;
  /** Resolves once the last byte has been read; rejects with the source's error if it fails first. */
  checksum: Promise<Checksum>;
}

/** Flips the first byte of a file in place (a bit rot the size of a byte). */
export async function flipFirstByte(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const first = Buffer.alloc(1);
    await handle.read(first, 0, 1, 0);
    await handle.write(Buffer.from([first[0]! ^ 0xff]), 0, 1, 0);
  } finally {
    await handle.close();
  }
}

export function md5(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

export function md5Checksum(bytes: Buffer): Checksum {
  return { algorithm: 'md5', hex: md5(bytes) };
}

/** Deterministic bytes for a label, so a test can tell whose bytes a node gave back. */
export function bytesFor(label: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(label).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at, 0, Math.min(block.length, size - at));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Bytes of their own for `id` (100 B–1 KiB), the same whoever asks: a test can tell whose bytes a node gave back. */
export function bytesOfId(id: string): Buffer {
  return bytesFor(id, 100 + (Number.parseInt(md5(Buffer.from(id)).slice(0, 6), 16) % 925));
}

/**
 * A source of `bytes` in pieces of `pieceSize`, hashed as they are read. With `failWith`, it gives the first
 * `failAfter` bytes and then fails with that error (with `failAfter` 0, before its first byte, after `delayMs`).
 * With `stallAfter`, it gives that many bytes and then nothing more, without ending; `onStall` is called once then.
 */
export function streamOf(
  bytes: Buffer,
  o: { pieceSize?: number; failWith?: Error; failAfter?: number; delayMs?: number; stallAfter?: number; onStall?: () => void } = {},
): ChunkSource {
  const pieceSize = o.pieceSize ?? 64 * KiB + 7;
  const hash = createHash('md5');
  let settle!: { resolve: (c: Checksum) => void; reject: (e: unknown) => void };
  const checksum = new Promise<Checksum>((resolve, reject) => (settle = { resolve, reject }));
  const limit = o.failWith ? Math.min(o.failAfter ?? 0, bytes.length) : bytes.length;
  let at = 0;
  let stalled = false;
  const fail = (stream: Readable): void => {
    settle.reject(o.failWith);
    stream.destroy(o.failWith);
  };
  const data = new Readable({
    read() {
      if (o.stallAfter !== undefined && at >= o.stallAfter) {
        if (!stalled) o.onStall?.();
        stalled = true;
        return;
      }
      if (at >= limit) {
        if (!o.failWith) {
          settle.resolve({ algorithm: 'md5', hex: hash.digest('hex') });
          this.push(null);
        } else if (limit > 0) fail(this);
        return;
      }
      const piece = bytes.subarray(at, Math.min(limit, at + pieceSize));
      at += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
  // A source that fails before its first byte does so on its own clock, whether or not anyone reads it yet.
  if (o.failWith && limit === 0) setTimeout(() => fail(data), o.delayMs ?? 0);
  return { data, checksum };
}

export function sourceError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}

/** Rejects after `ms` naming `what`, so a hang shows as a failure rather than a test timeout. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
