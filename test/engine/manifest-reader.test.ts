// verify reads a manifest entry by entry (ManifestReader): a million-file run's manifest is never parsed whole.
// Manifests in the older, indented layout still read, parsed whole.
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManifestError, readManifestSummary, StreamedArray, writeJsonAtomic } from '../../electron/engine/manifest.ts';
import { lookUpFile, ManifestReader, manifestPreview } from '../../electron/engine/manifest-reader.ts';
import { tempDir } from '../helpers/temp.ts';

const READER = join(import.meta.dirname, '..', '..', 'electron', 'engine', 'manifest-reader.ts');

function fileAt(i: number) {
  return { key: `train/${String(i).padStart(7, '0')}.jpg`, size: 8192, checksum: 'd41d8cd98f00b204e9800998ecf8427e', chunkCount: 1, status: 'complete' };
}
function chunkAt(i: number) {
  const id = `train/${String(i).padStart(7, '0')}.jpg_chunk_0`;
  return { id, file: id.replace(/_chunk_0$/, ''), index: 0, offset: 0, size: 8192, checksum: 'd41d8cd98f00b204e9800998ecf8427e', node: 'n1', path: `/n/${i}`, copies: [{ nodeId: 'n1', location: `/n1/${i}` }, { nodeId: 'n2', location: `/n2/${i}` }], attempts: 1, movedFrom: [], skipped: false };
}

function manifestOf(count: number, streamed: boolean) {
  const files = streamed ? new StreamedArray(function* () { for (let i = 0; i < count; i++) yield fileAt(i); }) : Array.from({ length: count }, (_, i) => fileAt(i));
  const chunks = streamed ? new StreamedArray(function* () { for (let i = 0; i < count; i++) yield chunkAt(i); }) : Array.from({ length: count }, (_, i) => chunkAt(i));
  return { version: 1, runId: 'r-1', startedAt: '2026-12-06T10:00:00.000Z', status: 'complete', checksumAlgorithm: 'md5', files, chunks, nodes: [{ id: 'n1', kind: 'folder', location: '/n1' }], totals: { files: count, chunks: count } };
}

async function everything(reader: ManifestReader): Promise<{ files: unknown[]; chunks: unknown[] }> {
  const files: unknown[] = [];
  const chunks: unknown[] = [];
  for await (const file of reader.files()) files.push(file);
  for await (const chunk of reader.chunks()) chunks.push(chunk);
  return { files, chunks };
}

describe('reading a manifest entry by entry', () => {
  it('gives the head, every file and chunk in order, the nodes and totals: in the line layout and the older indented one', async () => {
    const dir = await tempDir('ci-manifest-reader-');
    await writeJsonAtomic(join(dir, 'lines.json'), manifestOf(50, true));
    const expected = JSON.parse(JSON.stringify(manifestOf(50, false))) as ReturnType<typeof manifestOf>;
    await writeFile(join(dir, 'indented.json'), JSON.stringify(expected, null, 2));
    for (const name of ['lines.json', 'indented.json']) {
      const reader = await ManifestReader.open(join(dir, name));
      expect(reader.head).toMatchObject({ runId: 'r-1', checksumAlgorithm: 'md5' });
      expect(reader.tail).toEqual({ nodes: expected.nodes, totals: expected.totals });
      expect(reader.copies).toBe(100);
      expect(await everything(reader)).toEqual({ files: expected.files, chunks: expected.chunks });
    }
  });

  it('looks one file and its chunks up, previews and reads the summary (head, nodes, totals) from both ends: in every layout', async () => {
    const dir = await tempDir('ci-manifest-lookup-');
    await writeJsonAtomic(join(dir, 'lines.json'), manifestOf(50, true));
    const expected = JSON.parse(JSON.stringify(manifestOf(50, false))) as ReturnType<typeof manifestOf>;
    await writeFile(join(dir, 'indented.json'), JSON.stringify(expected, null, 2));
    await writeFile(join(dir, 'one-line.json'), JSON.stringify(expected)); // as a hand edit or another tool may save it
    const { files: _files, chunks: _chunks, ...summary } = expected;
    for (const name of ['lines.json', 'indented.json', 'one-line.json']) {
      expect(await everything(await ManifestReader.open(join(dir, name)))).toEqual({ files: expected.files, chunks: expected.chunks });
      expect(await manifestPreview(join(dir, name), 20)).toMatchObject({ manifest: { files: Array.from({ length: 20 }, (_, i) => fileAt(i)), chunks: Array.from({ length: 20 }, (_, i) => chunkAt(i)) }, partial: { files: 50, chunks: 50 } });
      const found = await lookUpFile(join(dir, name), fileAt(37).key);
      expect(found).toMatchObject({ file: fileAt(37), chunks: [chunkAt(37)], nodes: expected.nodes, someKeys: Array.from({ length: 10 }, (_, i) => fileAt(i).key), moreKeys: true });
      expect(found.head).toMatchObject({ runId: 'r-1', status: 'complete' });
      expect(await lookUpFile(join(dir, name), 'train/none.jpg')).toMatchObject({ file: undefined, chunks: [] });
      expect(await readManifestSummary(join(dir, name))).toEqual(summary);
    }
  });

  it('an empty run, and an entry that is not JSON (named with the file, its line and the fix)', async () => {
    const dir = await tempDir('ci-manifest-reader-');
    await writeJsonAtomic(join(dir, 'empty.json'), manifestOf(0, true));
    const empty = await ManifestReader.open(join(dir, 'empty.json'));
    expect(await everything(empty)).toEqual({ files: [], chunks: [] });
    expect(empty.tail.totals).toEqual({ files: 0, chunks: 0 });
    await writeJsonAtomic(join(dir, 'torn.json'), manifestOf(3, true));
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(join(dir, 'torn.json'), 'utf8');
    await writeFile(join(dir, 'torn.json'), text.replace('"attempts":1,"movedFrom":[],"skipped":false},', '"attempts":1,"movedFrom":[],"skipped":},'));
    await expect(ManifestReader.open(join(dir, 'torn.json'))).rejects.toThrow(ManifestError);
    const lineOf = (marker: string): number => text.split('\n').findIndex((l) => l.includes(marker)) + 1;
    const chunkLine = lineOf('"attempts":1,"movedFrom":[],"skipped":false},');
    await expect(ManifestReader.open(join(dir, 'torn.json'))).rejects.toThrow(new RegExp(`torn\\.json has an entry on line ${chunkLine} that is not valid JSON.*Fix:`));
    // A torn file entry is found when the files are read.
    await writeFile(join(dir, 'torn-file.json'), text.replace('"chunkCount":1,"status":"complete"},', '"chunkCount":1,"status":},'));
    const reader = await ManifestReader.open(join(dir, 'torn-file.json'));
    await expect(everything(reader)).rejects.toThrow(new RegExp(`torn-file\\.json has an entry on line ${lineOf('"chunkCount":1,"status":"complete"},')} that is not valid JSON.*Fix:`));
  });

  it('reads every chunk of a 300,000-chunk manifest within a 32 MB heap', async () => {
    const dir = await tempDir('ci-manifest-reader-');
    await writeJsonAtomic(join(dir, 'big.json'), manifestOf(300_000, true));
    const script = `const { ManifestReader } = await import(${JSON.stringify(READER)});
const reader = await ManifestReader.open(${JSON.stringify(join(dir, 'big.json'))});
let copies = 0;
for await (const chunk of reader.chunks()) copies += chunk.copies.length;
console.log(JSON.stringify({ copies, counted: reader.copies }));`;
    const child = spawnSync(process.execPath, ['--max-old-space-size=32', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(child.stderr.replace(/^.*ExperimentalWarning.*\n?|^\(Use `node --trace-warnings.*\n?/gm, '')).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({ copies: 600_000, counted: 600_000 });
  }, 180_000);
});
