// Re-hashes every received chunk copy against the manifest.
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { ManifestChunk, ManifestFile, VerifyProblem, VerifyReport } from '../../shared/types.ts';
import type { LoadedConfig } from './config.ts';
import { sharedHashPool } from './hash/pool.ts';
import type { HashPool } from './hash/pool.ts';
import { forEachStreamed } from './limit.ts';
import { chunkEntryProblem, chunkIdOf, chunkLines, whereInManifest } from './manifest-check.ts';
import { ManifestReader } from './manifest-reader.ts';
import { NodeError } from './nodes/node.ts';
import type { NodeTarget } from './nodes/node.ts';
import { nodesForManifest } from './nodes/for-manifest.ts';
import { damagedMembers } from './pack/member.ts';

export type { VerifyProblem, VerifyReport } from '../../shared/types.ts';

export async function hashStream(pool: HashPool, algorithm: ChecksumAlgorithm, stream: NodeJS.ReadableStream, signal?: AbortSignal): Promise<{ hex: string; bytes: number }> {
  const tap = pool.tap(algorithm);
  await pipeline(stream, tap, new Writable({ write: (_c, _e, done) => done() }), signal ? { signal } : {});
  return { hex: (await tap.digest).hex, bytes: tap.bytes };
}

export async function verifyCopy(node: NodeTarget | undefined, chunk: ManifestChunk, algorithm: ChecksumAlgorithm, pool: HashPool, signal?: AbortSignal): Promise<VerifyProblem | undefined> {
  const where = { chunkId: chunk.id, file: chunk.file, index: chunk.index, offset: chunk.offset, size: chunk.size, expected: chunk.checksum };
  if (!node) return { ...where, nodeId: '?', reason: 'unreadable', detail: 'the node is not in the config any more' };
  const found = await storedChecksum(node, chunk.id, algorithm, pool, signal);
  if ('reason' in found) return { ...where, nodeId: node.id, ...found };
  const { hex, bytes } = found;
  if (hex === chunk.checksum && bytes === chunk.size) return undefined;
  return { ...where, found: hex, nodeId: node.id, reason: 'checksum_mismatch', detail: `expected ${chunk.checksum} (${chunk.size} bytes), found ${hex} (${bytes} bytes)` };
}

/** The node's copy hashed where it lies when the node can (a folder), else streamed here and hashed on a thread. */
async function storedChecksum(node: NodeTarget, chunkId: string, algorithm: ChecksumAlgorithm, pool: HashPool, signal?: AbortSignal): Promise<{ hex: string; bytes: number } | { reason: 'missing' | 'unreadable'; detail: string }> {
  const detail = (error: unknown): string => (error instanceof Error ? error.message : String(error));
  if (node.checksumStored) {
    try {
      return await node.checksumStored(chunkId, algorithm, pool, signal);
    } catch (error) {
      if (signal?.aborted) throw error;
      return { reason: error instanceof NodeError && error.code === 'not_found' ? 'missing' : 'unreadable', detail: detail(error) };
    }
  }
  let stream;
  try {
    stream = await node.read(chunkId, signal);
  } catch (error) {
    return { reason: 'missing', detail: detail(error) };
  }
  try {
    return await hashStream(pool, algorithm, stream, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    return { reason: 'unreadable', detail: detail(error) };
  }
}

export async function verifyRun(options: { loaded: LoadedConfig; manifestPath: string; signal?: AbortSignal; onProgress?: (done: number, total: number) => void; pool?: HashPool }): Promise<VerifyReport> {
  const manifest = await ManifestReader.open(options.manifestPath);
  const algorithm = manifest.head.checksumAlgorithm;
  const nodes = nodesForManifest(options.loaded, manifest.tail.nodes);
  const pool = options.pool ?? sharedHashPool();
  const problems: VerifyProblem[] = [];
  const bad = new Map<string, number>();
  const unrecoverable: string[] = [];
  const membersByShard = new Map<string, Promise<ManifestFile[]>>();
  const damaged: { at: number; problem: VerifyProblem }[] = [];
  const checkedPerNode: Record<string, number> = {};
  let done = 0;
  const check = async (item: CopyToCheck): Promise<void> => {
    if ('damaged' in item) {
      // An entry verify cannot use: one problem for it, named by its line once the check is done.
      problems.push({ chunkId: chunkIdOf(item.damaged), nodeId: '?', reason: 'unreadable', detail: item.why });
      damaged.push({ at: item.at, problem: problems.at(-1)! });
      unrecoverable.push(chunkIdOf(item.damaged));
      done++;
      return;
    }
    const { chunk, nodeId } = item;
    checkedPerNode[nodeId] = (checkedPerNode[nodeId] ?? 0) + 1;
    const problem = await verifyCopy(nodes.get(nodeId), chunk, algorithm, pool, options.signal);
    if (problem) {
      let members: Promise<ManifestFile[]> | undefined;
      if (problem.reason === 'checksum_mismatch') {
        members = membersByShard.get(chunk.id) ?? membersOf(manifest, chunk.id);
        membersByShard.set(chunk.id, members); // both copies of a shard damaged: one scan of the files
      }
      const damagedShardMembers = members ? await members : [];
      const damaged = damagedShardMembers.length > 0 ? await damagedMembers(nodes.get(nodeId)!, chunk, damagedShardMembers, algorithm, pool, options.signal) : undefined;
      problems.push({ ...problem, nodeId, ...(damaged ? { members: damaged, detail: `${problem.detail}; damaged packed files: ${damaged.join(', ') || 'none (only tar headers or padding)'}` } : {}) });
      const count = (bad.get(chunk.id) ?? 0) + 1;
      bad.set(chunk.id, count);
      if (count === chunk.copies.length) unrecoverable.push(chunk.id);
    }
    done++;
    options.onProgress?.(done, manifest.copies);
  };
  try {
    await forEachStreamed(copiesOf(manifest.chunks()), options.loaded.config.ingestion.max_concurrent_chunks, check);
  } finally {
    await Promise.all([...nodes.values()].map((n) => n.close()));
  }
  if (damaged.length > 0) {
    const lines = await chunkLines(options.manifestPath, damaged.map((d) => d.at));
    for (const { at, problem } of damaged) {
      problem.detail = `${whereInManifest(options.manifestPath, lines.get(at), at)}: the chunk entry is damaged (${problem.detail}). Fix: restore the manifest the run wrote (it is not meant to be edited), or ingest the file again.`;
    }
  }
  return { manifestPath: options.manifestPath, checked: done, ok: done - problems.length, checkedPerNode, problems, unrecoverable };
}

/** A copy to check, or a chunk entry too damaged to check (`at`: its place among the chunks). */
type CopyToCheck = { chunk: ManifestChunk; nodeId: string } | { damaged: unknown; why: string; at: number };

async function* copiesOf(chunks: AsyncIterable<ManifestChunk>): AsyncGenerator<CopyToCheck> {
  let at = 0;
  for await (const chunk of chunks) {
    const why = chunkEntryProblem(chunk);
    if (why) yield { damaged: chunk, why, at };
    else for (const copy of chunk.copies) yield { chunk, nodeId: copy.nodeId };
    at++;
  }
}

/**
 * A shard's packed files in shard order (none for a chunk of one file), read from the manifest when one of its
 * copies is found damaged: a scan of the files, rather than every packed file held for the whole check.
 */
async function membersOf(manifest: ManifestReader, shardId: string): Promise<ManifestFile[]> {
  return (await manifest.filesFor(new Set(), new Set([shardId]))).byShard.get(shardId) ?? [];
}
