// Small helpers for the agent tests: streamed random chunks with their checksum, and raw HTTP uploads.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { Checksum } from '../../shared/types.ts';

/** `size` random bytes as a stream, hashed as they are produced; `checksum` resolves after the last byte. */
export function randomChunk(size: number, algorithm: ChecksumAlgorithm = 'md5'): { data: Readable; checksum: Promise<Checksum> } {
  const hash = createHash(algorithm);
  let left = size;
  let resolveDigest!: (c: Checksum) => void;
  const checksum = new Promise<Checksum>((r) => (resolveDigest = r));
  const data = new Readable({
    read() {
      if (left === 0) {
        resolveDigest({ algorithm, hex: hash.digest('hex') });
        this.push(null);
        return;
      }
      const block = randomBytes(Math.min(left, 256 * 1024));
      left -= block.length;
      hash.update(block);
      this.push(block);
    },
  });
  return { data, checksum };
}

export function bufferChunk(bytes: Buffer, algorithm: ChecksumAlgorithm = 'md5'): { data: Readable; checksum: Promise<Checksum> } {
  return { data: Readable.from([bytes]), checksum: Promise.resolve({ algorithm, hex: createHash(algorithm).update(bytes).digest('hex') }) };
}

export async function hashStream(stream: Readable, algorithm: ChecksumAlgorithm = 'md5'): Promise<{ hex: string; bytes: number }> {
  const hash = createHash(algorithm);
  let bytes = 0;
  for await (const part of stream as AsyncIterable<Buffer>) {
    hash.update(part);
    bytes += part.length;
  }
  return { hex: hash.digest('hex'), bytes };
}

export interface RawResponse {
  status: number;
  body: string;
  json: { error?: { code: string; message: string }; status?: string } | undefined;
}

/**
 * A PUT written by hand: `parts` are sent as chunked body pieces; between them `between` runs (to hold an upload
 * open mid-body). The checksum goes in the trailer when given.
 */
export function rawPut(
  url: string,
  path: string,
  headers: Record<string, string>,
  parts: Buffer[],
  o: { trailerChecksum?: string; between?: (i: number) => Promise<void>; holdOpen?: boolean } = {},
): { response: Promise<RawResponse>; request: http.ClientRequest } {
  const u = new URL(url);
  const req = http.request({ hostname: u.hostname, port: u.port, path, method: 'PUT', headers: { ...headers, ...(o.trailerChecksum ? { trailer: 'x-chunk-checksum' } : {}) }, agent: false });
  const response = new Promise<RawResponse>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        let json: RawResponse['json'];
        try {
          json = JSON.parse(body) as RawResponse['json'];
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, json });
      });
    });
    req.on('error', reject);
  });
  void (async () => {
    for (let i = 0; i < parts.length; i++) {
      if (req.destroyed) return;
      req.write(parts[i]!);
      if (o.between) await o.between(i);
    }
    if (o.holdOpen || req.destroyed) return;
    if (o.trailerChecksum) req.addTrailers({ 'x-chunk-checksum': o.trailerChecksum });
    req.end();
  })();
  return { response, request: req };
}

export function md5(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
