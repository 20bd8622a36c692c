// Manifests are written piece by piece: they read back as the value, laid out as JSON.stringify(value, null, 2)
// except that each element of a top-level array (a file, a chunk) is one compact line.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manifestJsonPieces, RawJson, StreamedArray, writeJsonAtomic } from '../../electron/engine/manifest.ts';

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

/** The layout spelled out: pretty top level, one compact line per element of a top-level array. */
function laidOut(value: Record<string, unknown>): string {
  const members = Object.entries(value)
    .filter(([, member]) => member !== undefined)
    .map(([key, member]) => {
      const name = `  ${JSON.stringify(key)}: `;
      if (Array.isArray(member) && member.length > 0) return `${name}[\n${member.map((e) => `    ${JSON.stringify(e)}`).join(',\n')}\n  ]`;
      return `${name}${JSON.stringify(member, null, 2).replaceAll('\n', '\n  ')}`;
    });
  return members.length === 0 ? '{}\n' : `{\n${members.join(',\n')}\n}\n`;
}

describe('manifest writing', () => {
  it('reads back as the value; a line per top-level key and per file or chunk', () => {
    const text = [...manifestJsonPieces(sample)].join('');
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(sample)));
    expect(text).toBe(laidOut(sample));
    const lines = text.split('\n');
    expect(lines[lines.indexOf('  "files": [') + 1]).toBe(`    ${JSON.stringify(sample.files[0])},`);
    expect(lines).toContain('  "detection": {');
    expect([...manifestJsonPieces({})].join('')).toBe('{}\n');
    const big = { files: Array.from({ length: 5000 }, (_, i) => ({ key: `f${i}`, size: i })) };
    const bigText = [...manifestJsonPieces(big)].join('');
    expect(bigText.split('\n')).toHaveLength(5000 + 5); // {, "files": [, the 5,000, ], }, and the empty string after the last newline
    expect(JSON.parse(bigText)).toEqual(big);
  });

  it('streamed arrays lay out the same whether read synchronously (in pieces), asynchronously, or as JSON lines already written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ci-manifest-streamed-'));
    try {
      // ~1.5 MB of elements: several of the synchronous pieces, whose joins must not lose or double a comma.
      const files = Array.from({ length: 12_000 }, (_, i) => ({ key: `data/${'x'.repeat(i % 90)}/${i}.bin`, size: i, status: 'complete' }));
      const chunks = [{ id: 'only_chunk_0', size: 1 }];
      const expected = laidOut({ runId: 'r', files, empty: [], chunks, totals: { files: files.length } });
      const ways = {
        sync: () => files,
        async: async function* () {
          yield* files;
        },
        raw: () => files.map((f) => new RawJson(JSON.stringify(f))),
      };
      for (const [way, items] of Object.entries(ways)) {
        const path = join(dir, `${way}.json`);
        await writeJsonAtomic(path, { runId: 'r', files: new StreamedArray<unknown>(items), empty: new StreamedArray(() => []), chunks: new StreamedArray(() => chunks), totals: { files: files.length } });
        expect(await readFile(path, 'utf8'), way).toBe(expected);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes through a temp name: the file reads back equal, and no temp file is left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ci-manifest-write-'));
    try {
      const big = { ...sample, chunks: Array.from({ length: 20_000 }, (_, i) => ({ id: `k_chunk_${i}`, size: i, copies: [{ nodeId: 'n', location: `/n/${i}` }] })) };
      await writeJsonAtomic(join(dir, 'run.json'), big);
      expect(await readFile(join(dir, 'run.json'), 'utf8')).toBe(laidOut(big));
      expect(await readdir(dir)).toEqual(['run.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes text of any width whole: multi-byte characters across the writer\'s buffer, and a member larger than it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ci-manifest-write-'));
    try {
      const wide = {
        ...sample,
        files: Array.from({ length: 30_000 }, (_, i) => ({ key: `données/画像/${i}/ünïcödé-😀.jpg`, size: i })),
        note: 'x'.repeat(300_000) + '€'.repeat(200_000),
      };
      await writeJsonAtomic(join(dir, 'run.json'), wide);
      expect(await readFile(join(dir, 'run.json'), 'utf8')).toBe(laidOut(wide));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
