// Manifests are written piece by piece, but must read exactly as JSON.stringify(value, null, 2) wrote them.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prettyJsonPieces, writeJsonAtomic } from '../../electron/engine/manifest.ts';

const sample = {
  version: 1,
  runId: 'r-1',
  skipped: undefined,
  status: 'complete',
  empty: [],
  nothing: {},
  detection: { cloud: 'local', probes: [{ name: 'env', ok: false, detail: 'ünïcödé "quoted" \n newline' }] },
  files: [
    { key: 'a/b.bin', size: 3, checksum: 'x', sourceChecksum: { kind: 'gcs-md5', matched: true } },
    { key: 'c', size: 0, chunkCount: 0, nested: [[1, 2], [], [{ deep: null }]] },
  ],
  chunks: [{ id: 'a/b.bin_chunk_0', copies: [{ nodeId: 'n1', location: '/x' }], movedFrom: [] }],
  totals: { files: 2, chunks: 1 },
};

describe('manifest writing', () => {
  it('pieces join to exactly JSON.stringify(value, null, 2) plus a newline', () => {
    expect([...prettyJsonPieces(sample)].join('')).toBe(JSON.stringify(sample, null, 2) + '\n');
    expect([...prettyJsonPieces({})].join('')).toBe('{}\n');
    const big = { files: Array.from({ length: 5000 }, (_, i) => ({ key: `f${i}`, size: i })) };
    expect([...prettyJsonPieces(big)].join('')).toBe(JSON.stringify(big, null, 2) + '\n');
  });

  it('writes through a temp name: the file reads back equal, and no temp file is left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ci-manifest-write-'));
    try {
      const big = { ...sample, chunks: Array.from({ length: 20_000 }, (_, i) => ({ id: `k_chunk_${i}`, size: i, copies: [{ nodeId: 'n', location: `/n/${i}` }] })) };
      await writeJsonAtomic(join(dir, 'run.json'), big);
      expect(await readFile(join(dir, 'run.json'), 'utf8')).toBe(JSON.stringify(big, null, 2) + '\n');
      expect(await readdir(dir)).toEqual(['run.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
