// Rebuilds a source file from its chunks, on whichever nodes hold a good copy, and checks it.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Manifest, ManifestChunk, ReassembleReport } from '../../shared/types.ts';
import type { LoadedConfig } from './config.ts';
import { sharedHashPool } from './hash/pool.ts';
import type { HashPool } from './hash/pool.ts';
import { fileChecksum } from './chunks.ts';
import { readManifest } from './manifest.ts';
import type { NodeTarget } from './nodes/node.ts';
import { nodesForManifest } from './nodes/for-manifest.ts';
import { hashStream } from './verify.ts';

export type { ReassembleReport } from '../../shared/types.ts';

export class ReassembleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReassembleError';
  }
}

export async function reassembleFile(options: { loaded: LoadedConfig; manifestPath: string; key: string; outPath: string; signal?: AbortSignal; pool?: HashPool }): Promise<ReassembleReport> {
  const manifest = await readManifest(options.manifestPath);
  const file = manifest.files.find((f) => f.key === options.key);
  if (!file) {
    const known = manifest.files.slice(0, 10).map((f) => f.key).join(', ');
    throw new ReassembleError(`${options.key} is not in manifest ${options.manifestPath}. Fix: use one of its files: ${known}${manifest.files.length > 10 ? ', ...' : ''}.`);
  }
  const chunks = manifest.chunks.filter((c) => c.file === file.key).sort((a, b) => a.index - b.index);
  if (chunks.length !== file.chunkCount) {
    throw new ReassembleError(`${file.key} has ${chunks.length} of its ${file.chunkCount} chunks in the manifest (the run was ${manifest.status}). Fix: run the ingest again for this file.`);
  }
  const pool = options.pool ?? sharedHashPool();
  const nodes = nodesForManifest(options.loaded, manifest);
  const outPath = resolve(options.outPath);
  await mkdir(dirname(outPath), { recursive: true });
  const temp = join(dirname(outPath), `.${basename(outPath)}.${randomBytes(4).toString('hex')}.part`);
  const handle = await open(temp, 'w');
  try {
    const digests: string[] = [];
    for (const chunk of chunks) digests.push(await writeChunk(handle, chunk, manifest, nodes, pool, options.signal));
    await handle.close();
    const actual = fileChecksum(manifest.checksumAlgorithm, digests);
    const md5Hex = (await hashStream(pool, 'md5', createReadStream(temp), options.signal)).hex;
    await rename(temp, outPath);
    return { key: file.key, outPath, bytes: file.size, expected: file.checksum, actual, matched: actual === file.checksum, md5Hex };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  } finally {
    await Promise.all([...nodes.values()].map((n) => n.close()));
  }
}

/** Writes the chunk at its offset from the first copy whose bytes hash to the manifest's checksum. */
async function writeChunk(handle: FileHandle, chunk: ManifestChunk, manifest: Manifest, nodes: Map<string, NodeTarget>, pool: HashPool, signal?: AbortSignal): Promise<string> {
  const failures: string[] = [];
  for (const copy of chunk.copies) {
    const node = nodes.get(copy.nodeId);
    if (!node) {
      failures.push(`${copy.nodeId}: not configured`);
      continue;
    }
    try {
      // Open the copy before claiming a hashing thread: a tap that never runs would keep the process alive.
      const source = await node.read(chunk.id, signal);
      const tap = pool.tap(manifest.checksumAlgorithm);
      const out = positionalWriter(handle, chunk.offset, chunk.size);
      await pipeline(source, tap, out, signal ? { signal } : {});
      const { hex } = await tap.digest;
      if (hex === chunk.checksum && tap.bytes === chunk.size) return hex;
      failures.push(`${copy.nodeId}: checksum ${hex} (${tap.bytes} bytes) instead of ${chunk.checksum}`);
    } catch (error) {
      if (signal?.aborted) throw error;
      failures.push(`${copy.nodeId}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new ReassembleError(`No good copy of ${chunk.id}: ${failures.join('; ')}. Fix: run verify to see which nodes lost data, then ingest again.`);
}

/**
 * Writes a stream into an open file at `offset`, at most `length` bytes, leaving the handle open for the next chunk.
 * A bad copy longer than its chunk (it is hashed whole, and rejected) must not spill past the chunk's end: past the
 * last chunk nothing would overwrite it.
 */
function positionalWriter(handle: FileHandle, offset: number, length: number): Writable {
  let position = offset;
  const end = offset + length;
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(data: Buffer, _encoding, done) {
      const bytes = data.subarray(0, Math.max(0, end - position));
      writeAll(handle, bytes, position).then(() => {
        position += bytes.length;
        done();
      }, done);
    },
  });
}

async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let written = 0; written < bytes.length; ) written += (await handle.write(bytes, written, bytes.length - written, position + written)).bytesWritten;
}
