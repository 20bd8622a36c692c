// ingestion.checksum: crc32c — chunks, packed files and whole files checksummed with CRC-32C (the CPU's CRC
// instructions through @node-rs/crc32), through a folder node and a real node agent; verify catches a damaged copy,
// reassemble rebuilds files exactly; against the GCS emulator the store's own CRC32C is checked (one chunk, several
// chunks combined, and a packed file) without a second pass.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32cImplementation, crc32cUpdateJs } from '../../electron/engine/hash/crc32c.js';
import { runIngest } from '../../electron/engine/ingest.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import { cleanupAgents, spawnAgent } from '../helpers/agents.ts';
import { startStore } from '../storage/stores.ts';
import { detection, MIB, tempProject, writeConfig } from './fixtures.ts';

afterAll(cleanupAgents);

/** The reference: the JavaScript CRC-32C (not the native one the engine uses), as 8 hex digits. */
function crc32cHex(bytes: Buffer): string {
  return crc32cUpdateJs(0, bytes).toString(16).padStart(8, '0');
}

describe('ingestion.checksum: crc32c', () => {
  it('runs on the native CRC-32C here', () => {
    expect(crc32cImplementation()).toBe('native');
  });

  it('checksums chunks and packed files with CRC-32C on a folder node and an agent; verify and reassemble work', { timeout: 60_000 }, async () => {
    const root = await tempProject();
    const agent = await spawnAgent();
    process.env[agent.tokenEnv] = agent.token;
    const yaml = [
      'data_sources:',
      '  local: { type: local, path: ./data }',
      'ingestion: { chunk_size_mb: 1, checksum: crc32c, replicas: 2, pack_below_mb: 0.01, retry_attempts: 1, retry_delay_seconds: 0.05 }',
      'nodes:',
      '  - { id: folder-1, path: ./nodes/folder-1 }',
      `  - { id: agent-1, url: "${agent.url}", token_env: ${agent.tokenEnv} }`,
      '',
    ].join('\n');
    const loaded = await writeConfig(root, yaml);
    await ensureDataFile(join(root, 'data', 'big.bin'), 3.5 * MIB, 'big');
    await writeFile(join(root, 'data', 'small.txt'), 'a small file, packed');
    const source = await readFile(join(root, 'data', 'big.bin'));

    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.status).toBe('complete');
    expect(manifest.checksumAlgorithm).toBe('crc32c');
    const big = manifest.chunks.filter((c) => c.file === 'big.bin');
    expect(big).toHaveLength(4);
    for (const chunk of big) {
      expect(chunk.checksum).toBe(crc32cHex(source.subarray(chunk.offset, chunk.offset + chunk.size)));
      expect(chunk.copies.map((c) => c.nodeId).sort()).toEqual(['agent-1', 'folder-1']);
    }
    expect(manifest.files.find((f) => f.key === 'small.txt')).toMatchObject({ checksum: crc32cHex(Buffer.from('a small file, packed')), packed: expect.anything() });
    expect((await verifyRun({ loaded, manifestPath })).problems).toEqual([]);

    const rebuilt = await reassembleFile({ loaded, manifestPath, key: 'big.bin', outPath: join(root, 'out', 'big.bin') });
    expect(rebuilt).toMatchObject({ matched: true, bytes: source.length, md5Hex: createHash('md5').update(source).digest('hex') });
    const small = await reassembleFile({ loaded, manifestPath, key: 'small.txt', outPath: join(root, 'out', 'small.txt') });
    expect(small.matched).toBe(true);

    const copy = big[1]!.copies.find((c) => c.nodeId === 'folder-1')!.location;
    const bytes = await readFile(copy);
    bytes[10]! ^= 1;
    await writeFile(copy, bytes);
    const report = await verifyRun({ loaded, manifestPath });
    expect(report.problems).toEqual([expect.objectContaining({ chunkId: big[1]!.id, nodeId: 'folder-1', reason: 'checksum_mismatch', found: crc32cHex(bytes) })]);
  });

  it("checks the GCS store's own CRC32C for one-chunk, several-chunk and packed files", { timeout: 120_000 }, async () => {
    const store = await startStore('gcs', 'crc-bucket');
    try {
      const root = await tempProject();
      const objects: Record<string, Buffer> = { 'one.bin': Buffer.alloc(300 * 1024, 3), 'three.bin': Buffer.alloc(2.5 * MIB, 5), 'tiny.json': Buffer.from('{"label": 7}') };
      for (const [i, byte] of [...objects['three.bin']!.entries()].slice(0, 4096)) objects['three.bin']![i] = (byte + i) & 0xff;
      for (const [key, body] of Object.entries(objects)) await store.put(key, body);
      const yaml = [
        'data_sources:',
        `  gcp: { type: gcs, bucket: crc-bucket }`,
        'ingestion: { chunk_size_mb: 1, checksum: crc32c, pack_below_mb: 0.1, retry_attempts: 1, retry_delay_seconds: 0.05 }',
        'use_local_simulation: false',
        'nodes:',
        '  - { id: n1, path: ./nodes/n1 }',
        '',
      ].join('\n');
      const loaded = await writeConfig(root, yaml);
      const { manifest } = await runIngest({ loaded, detection: detection('gcp') });
      expect(manifest.status).toBe('complete');
      for (const key of Object.keys(objects)) {
        const file = manifest.files.find((f) => f.key === key)!;
        expect([key, file.sourceChecksum]).toEqual([key, expect.objectContaining({ kind: 'gcs-crc32c', matched: true })]);
      }
      expect(manifest.files.find((f) => f.key === 'three.bin')!.chunkCount).toBe(3);
      expect(manifest.files.find((f) => f.key === 'tiny.json')!.packed).toBeDefined();
    } finally {
      await store.stop();
    }
  });
});
