// Issue 15: with `checksum: crc32c` on a store that keeps only a whole-object MD5 (S3's ETag, Azure's Content-MD5),
// the file's MD5 is taken in the same pass as each chunk's transfer, never by reading the chunks back from the
// nodes. Shown with real folder nodes and real hashing threads: the chunks are deleted from the node before the
// file's hash would read them, and the check still matches (a read-back would fail); a wrong MD5 still fails it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ManifestChunk, ManifestFile } from '../../shared/types.ts';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { Nodes } from '../../electron/engine/nodes/nodes.ts';
import type { ChunkSource } from '../../electron/engine/nodes/nodes.ts';
import { openNodes } from '../../electron/engine/nodes/open.ts';
import { SourceChecks } from '../../electron/engine/source-checks.ts';
import type { ObjectInfo } from '../../electron/engine/storage/driver.ts';
import { MIB, tempProject, writeConfig } from './fixtures.ts';

const CHUNK = MIB;

async function deliverAndCheck(md5Hex: string): Promise<{ file: ManifestFile; chunksOnNode: number }> {
  const root = await tempProject();
  const loaded = await writeConfig(root, `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, checksum: crc32c }\nnodes:\n  - { id: n1, path: ./nodes/n1 }\n`);
  const bytes = Buffer.alloc(3 * CHUNK + 12_345);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 11)) & 0xff;
  const path = join(root, 'big.bin');
  await writeFile(path, bytes);
  const object: ObjectInfo = { key: 'big.bin', size: bytes.length, etag: `"${md5Hex}"`, checksums: { md5Hex } };
  const pool = new HashPool(2);
  const nodes = new Nodes(openNodes(loaded), pool);
  try {
    await nodes.registry.probeAll();
    const checks = new SourceChecks({ store: 's3', algorithm: 'crc32c', chunkSize: CHUNK, pool, registry: nodes.registry });
    checks.start([object]);
    expect(checks.readsInOrder('big.bin')).toBe(true);
    const chunks: ManifestChunk[] = [];
    for (let index = 0; index * CHUNK < bytes.length; index++) {
      const offset = index * CHUNK;
      const size = Math.min(CHUNK, bytes.length - offset);
      const meta = { id: `big.bin_chunk_${index}`, file: 'big.bin', index, offset, size };
      // A stream, as a cloud store gives it (no local file for the node to copy from).
      const source: ChunkSource = { localRange: async () => undefined, open: async () => createReadStream(path, { start: offset, end: offset + size - 1 }), sourceError: (e) => e };
      const continueHash = await checks.continueHashFor('big.bin', index);
      const outcome = await nodes.store(meta, source, ['n1'], { algorithm: 'crc32c', ...(continueHash ? { continueHash } : {}) });
      const stored = outcome.stored.get('n1')!;
      const chunk: ManifestChunk = { ...meta, checksum: stored.checksum.hex, node: 'n1', path: stored.location, copies: [{ nodeId: 'n1', location: stored.location }], attempts: 1, movedFrom: [], skipped: false };
      chunks.push(chunk);
      // Nothing left on the node to read back: the check can only match from what the transfers fed it.
      await rm(stored.location);
      checks.delivered('big.bin', index, chunk);
    }
    const folder = join(root, 'nodes', 'n1');
    const file: ManifestFile = { key: 'big.bin', size: bytes.length, checksum: 'x', chunkCount: chunks.length, status: 'complete' };
    await checks.check(file, object, chunks);
    return { file, chunksOnNode: (await readdir(folder, { recursive: true })).filter((n) => n.endsWith('.chunk')).length };
  } finally {
    await nodes.close();
    await pool.close();
  }
}

describe('store MD5 with crc32c chunks (issue 15)', () => {
  it("takes the whole-file MD5 in the same pass as the chunks' transfers: it matches with the chunks gone from the node", async () => {
    const bytes = Buffer.alloc(3 * CHUNK + 12_345);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 11)) & 0xff;
    const md5 = createHash('md5').update(bytes).digest('hex');
    const { file, chunksOnNode } = await deliverAndCheck(md5);
    expect(chunksOnNode).toBe(0);
    expect(file.sourceChecksum).toEqual({ kind: 's3-etag-md5', value: md5, matched: true });
    expect(file.status).toBe('complete');
  });

  it('still fails the file when the MD5 the store keeps is not that of the bytes delivered', async () => {
    const { file } = await deliverAndCheck('0'.repeat(32));
    expect(file.sourceChecksum?.matched).toBe(false);
    expect(file.status).toBe('failed');
  });
});
