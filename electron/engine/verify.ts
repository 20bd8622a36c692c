// Re-hashes every received chunk copy against the manifest.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { ManifestChunk, VerifyProblem, VerifyReport } from '../../shared/types.ts';
import type { LoadedConfig } from './config.ts';
import { sharedHashPool } from './hash/pool.ts';
import type { HashPool } from './hash/pool.ts';
import { forEachLimited } from './limit.ts';
import { readManifest } from './manifest.ts';
import type { NodeTarget } from './nodes/node.ts';
import { nodesForManifest } from './nodes/for-manifest.ts';
import { damagedMembers, shardMembers } from './pack/member.ts';

export type { VerifyProblem, VerifyReport } from '../../shared/types.ts';

export async function hashStream(pool: HashPool, algorithm: ChecksumAlgorithm, stream: NodeJS.ReadableStream, signal?: AbortSignal): Promise<{ hex: string; bytes: number }> {
  const tap = pool.tap(algorithm);
  await pipeline(stream, tap, new Writable({ write: (_c, _e, done) => done() }), signal ? { signal } : {});
  return { hex: (await tap.digest).hex, bytes: tap.bytes };
}

export async function verifyCopy(node: NodeTarget | undefined, chunk: ManifestChunk, algorithm: ChecksumAlgorithm, pool: HashPool, signal?: AbortSignal): Promise<VerifyProblem | undefined> {
  const where = { chunkId: chunk.id, file: chunk.file, index: chunk.index, offset: chunk.offset, size: chunk.size, expected: chunk.checksum };
  if (!node) return { ...where, nodeId: '?', reason: 'unreadable', detail: 'the node is not in the config any more' };
  let stream;
  try {
    stream = await node.read(chunk.id, signal);
  } catch (error) {
    return { ...where, nodeId: node.id, reason: 'missing', detail: error instanceof Error ? error.message : String(error) };
  }
  try {
    const { hex, bytes } = await hashStream(pool, algorithm, stream, signal);
    if (hex === chunk.checksum && bytes === chunk.size) return undefined;
    return { ...where, found: hex, nodeId: node.id, reason: 'checksum_mismatch', detail: `expected ${chunk.checksum} (${chunk.size} bytes), found ${hex} (${bytes} bytes)` };
  } catch (error) {
    if (signal?.aborted) throw error;
    return { ...where, nodeId: node.id, reason: 'unreadable', detail: error instanceof Error ? error.message : String(error) };
  }
}

export async function verifyRun(options: { loaded: LoadedConfig; manifestPath: string; signal?: AbortSignal; onProgress?: (done: number, total: number) => void; pool?: HashPool }): Promise<VerifyReport> {
  const manifest = await readManifest(options.manifestPath);
  const nodes = nodesForManifest(options.loaded, manifest);
  const pool = options.pool ?? sharedHashPool();
  const copies = manifest.chunks.flatMap((chunk) => chunk.copies.map((copy) => ({ chunk, nodeId: copy.nodeId })));
  const problems: VerifyProblem[] = [];
  const bad = new Map<string, number>();
  const packed = shardMembers(manifest);
  let done = 0;
  const check = async ({ chunk, nodeId }: (typeof copies)[number]): Promise<void> => {
    const problem = await verifyCopy(nodes.get(nodeId), chunk, manifest.checksumAlgorithm, pool, options.signal);
    if (problem) {
      const members = packed.get(chunk.id);
      const damaged = members && problem.reason === 'checksum_mismatch' ? await damagedMembers(nodes.get(nodeId)!, chunk, members, manifest.checksumAlgorithm, pool, options.signal) : undefined;
      problems.push({ ...problem, nodeId, ...(damaged ? { members: damaged, detail: `${problem.detail}; damaged packed files: ${damaged.join(', ') || 'none (only tar headers or padding)'}` } : {}) });
      bad.set(chunk.id, (bad.get(chunk.id) ?? 0) + 1);
    }
    options.onProgress?.(++done, copies.length);
  };
  try {
    await forEachLimited(copies, options.loaded.config.ingestion.max_concurrent_chunks, check);
  } finally {
    await Promise.all([...nodes.values()].map((n) => n.close()));
  }
  const unrecoverable = manifest.chunks.filter((c) => (bad.get(c.id) ?? 0) >= c.copies.length).map((c) => c.id);
  return { manifestPath: options.manifestPath, checked: copies.length, ok: copies.length - problems.length, problems, unrecoverable };
}
