// Every chunk and file of a large manifest a page at a time (manifest-pages.ts): pages of each node's copies read
// through the page index match the manifest parsed whole, at the start, the middle, across blocks and past the end;
// the per-node totals, locating a chunk, the file search; the same answers from the older layouts; a damaged line
// fails only the page holding it, named with the manifest and the line.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildChunkPageIndex, chunksOnNode, copiesPerNode, findFiles, locateChunk, previewAndIndex } from '../../electron/engine/manifest-pages.ts';
import { manifestPreview } from '../../electron/engine/manifest-reader.ts';
import type { ChunkPageIndex } from '../../electron/engine/manifest-pages.ts';
import { ManifestError, readManifest, StreamedArray, writeJsonAtomic } from '../../electron/engine/manifest.ts';
import type { ManifestChunk, NodeChunkRow } from '../../shared/types.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

const CHUNKS = 31_234;
const NODES = ['n1', 'n2', 'n3'];

function fileAt(i: number) {
  return { key: `train/${String(i).padStart(7, '0')}.jpg`, size: 8192, checksum: 'd41d8cd98f00b204e9800998ecf8427e', chunkCount: 1, status: 'complete' };
}

/** Copies spread unevenly: every chunk on one node, every fifth on a second; n3 holds nothing from 5,000 to 9,999 (whole blocks without it). */
function copiesOf(i: number): string[] {
  const first = i >= 5_000 && i < 10_000 ? NODES[i % 2]! : NODES[i % 3]!;
  const second = NODES[(NODES.indexOf(first) + 1) % (i >= 5_000 && i < 10_000 ? 2 : 3)]!;
  return i % 5 === 0 ? [first, second] : [first];
}

function chunkAt(i: number): ManifestChunk {
  const file = fileAt(i).key;
  const copies = copiesOf(i).map((nodeId) => ({ nodeId, location: `/${nodeId}/${i}.chunk` }));
  return { id: `${file}_chunk_0`, file, index: 0, offset: 0, size: 8192, checksum: 'd41d8cd98f00b204e9800998ecf8427e', node: copies[0]!.nodeId, path: copies[0]!.location, copies, attempts: 1, movedFrom: [], skipped: false };
}

function manifestOf(count: number) {
  return {
    version: 1, runId: 'r-pages', startedAt: '2026-12-07T10:00:00.000Z', status: 'complete', checksumAlgorithm: 'md5',
    files: new StreamedArray(function* () { for (let i = 0; i < count; i++) yield fileAt(i); }),
    chunks: new StreamedArray(function* () { for (let i = 0; i < count; i++) yield chunkAt(i); }),
    nodes: NODES.map((id) => ({ id, kind: 'folder', location: `/${id}`, chunks: 0, bytes: 0, healthy: true })),
    totals: { files: count, chunks: count, bytes: count * 8192, retries: 0, replacements: 0, skipped: 0 },
  };
}

let dir: string;
let lines: string;
const layouts: Record<string, string> = {};
/** Every node's rows, from the manifest parsed whole. */
const expected = new Map<string, NodeChunkRow[]>();

beforeAll(async () => {
  dir = await tempDir('ci-manifest-pages-');
  lines = join(dir, 'lines.json');
  await writeJsonAtomic(lines, manifestOf(CHUNKS));
  const whole = await readManifest(lines);
  for (const id of NODES) expected.set(id, []);
  for (const chunk of whole.chunks) for (const copy of chunk.copies) expected.get(copy.nodeId)!.push({ chunk, location: copy.location });
  layouts.lines = lines;
  layouts.indented = join(dir, 'indented.json');
  layouts.oneLine = join(dir, 'one-line.json');
  await writeFile(layouts.indented, JSON.stringify(whole, null, 2));
  await writeFile(layouts.oneLine, JSON.stringify(whole));
});

afterAll(removeTempDirs);

describe('a manifest a page at a time', () => {
  it('pages each node at the start, the middle, across blocks, at the end and past it, as the whole manifest has them', async () => {
    const index = await buildChunkPageIndex(lines);
    expect(index.whole).toBeUndefined();
    expect(index.chunks).toBe(CHUNKS);
    expect(index.blockStarts.length).toBe(Math.ceil(CHUNKS / 1_000) + 1);
    for (const nodeId of NODES) {
      const rows = expected.get(nodeId)!;
      const before = index.copiesBefore.get(nodeId)!;
      const aBoundary = before[7]!; // the first copy in block 7
      const starts = [0, 1, 999, 1_000, aBoundary - 3, aBoundary, Math.floor(rows.length / 2), rows.length - 5, rows.length - 1];
      for (const start of starts) {
        expect(await chunksOnNode(index, nodeId, start, 10), `${nodeId} from ${start}`).toEqual({ rows: rows.slice(start, start + 10), total: rows.length });
      }
      expect(await chunksOnNode(index, nodeId, 2_345, 1_000)).toEqual({ rows: rows.slice(2_345, 3_345), total: rows.length }); // several blocks
      expect(await chunksOnNode(index, nodeId, rows.length, 10)).toEqual({ rows: [], total: rows.length });
      expect(await chunksOnNode(index, nodeId, rows.length + 500, 10)).toEqual({ rows: [], total: rows.length });
    }
    // n3 holds nothing in blocks 5 to 9: a page that runs into them goes on past them.
    const n3 = expected.get('n3')!;
    const afterGap = n3.findIndex((r) => Number(r.chunk.file.slice(6, 13)) >= 5_000);
    expect(n3[afterGap]!.chunk.file).toBe(fileAt(10_000).key);
    expect(await chunksOnNode(index, 'n3', afterGap - 2, 4)).toEqual({ rows: n3.slice(afterGap - 2, afterGap + 2), total: n3.length });
    expect(await chunksOnNode(index, 'nobody', 0, 10)).toEqual({ rows: [], total: 0 });
  });

  it('pages match at any start and size (seeded), with blocks of a few lines too', async () => {
    const small = await buildChunkPageIndex(lines, 7);
    const index = await buildChunkPageIndex(lines);
    let seed = 42;
    const next = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
    for (let i = 0; i < 60; i++) {
      const nodeId = NODES[i % 3]!;
      const rows = expected.get(nodeId)!;
      const start = next(rows.length + 20);
      const count = 1 + next(300);
      const want = { rows: rows.slice(start, start + count), total: rows.length };
      expect(await chunksOnNode(index, nodeId, start, count)).toEqual(want);
      expect(await chunksOnNode(small, nodeId, start, count)).toEqual(want);
    }
  });

  it('counts every node’s copies as the whole manifest does, and finds where a chunk sits on a node', async () => {
    const index = await buildChunkPageIndex(lines);
    expect(copiesPerNode(index)).toEqual(Object.fromEntries(NODES.map((id) => [id, expected.get(id)!.length])));
    for (const nodeId of NODES) {
      const rows = expected.get(nodeId)!;
      for (const at of [0, 1_234, rows.length - 1]) expect(await locateChunk(index, nodeId, rows[at]!.chunk.id)).toBe(at);
    }
    expect(await locateChunk(index, 'n3', chunkAt(5_001).id)).toBeNull(); // on n1 and n2 only
    expect(await locateChunk(index, 'n1', 'train/none.jpg_chunk_0')).toBeNull();
  });

  it('finds file keys containing a query, in any case, up to a limit, and says when more match', async () => {
    const all = (await readManifest(lines)).files.map((f) => f.key);
    const matching = (q: string) => all.filter((k) => k.toLowerCase().includes(q.toLowerCase()));
    expect(await findFiles(lines, 'TRAIN/0001', 25)).toEqual({ keys: matching('train/0001').slice(0, 25), more: true });
    expect(await findFiles(lines, '0031233', 5)).toEqual({ keys: [fileAt(31_233).key], more: false }); // the last file
    const five = matching('003123'); // 0003123 and 0031230 to 0031233
    expect(five).toHaveLength(5);
    expect(await findFiles(lines, '003123', 5)).toEqual({ keys: five, more: false }); // exactly the limit
    expect(await findFiles(lines, '003123', 4)).toEqual({ keys: five.slice(0, 4), more: true });
    expect(await findFiles(lines, 'no such file', 10)).toEqual({ keys: [], more: false });
    expect(await findFiles(lines, '', 3)).toEqual({ keys: all.slice(0, 3), more: true });
  });

  it('gives the same answers for the same manifest indented, or as JSON on one line (read whole)', async () => {
    const answers = async (path: string) => {
      const index: ChunkPageIndex = await buildChunkPageIndex(path);
      return {
        perNode: copiesPerNode(index),
        pages: await Promise.all(NODES.map((id) => chunksOnNode(index, id, 3_000, 50))),
        located: await locateChunk(index, 'n2', chunkAt(20_001).id),
        found: await findFiles(path, 'Train/00200', 7),
      };
    };
    const reference = await answers(layouts.lines!);
    for (const layout of ['indented', 'oneLine']) {
      const index = await buildChunkPageIndex(layouts[layout]!);
      expect(index.whole, layout).toHaveLength(CHUNKS);
      expect(await answers(layouts[layout]!), layout).toEqual(reference);
    }
  });

  it('a damaged chunk line fails only the page holding it, naming the manifest and the line; every other page reads', async () => {
    const text = await readFile(lines, 'utf8');
    const fileLines = text.split('\n');
    const damaged = 12_345;
    const chunkLine = fileLines.findIndex((l) => l.includes(`"id":"${chunkAt(damaged).id}"`));
    const owner = copiesOf(damaged)[0]!;
    /** Where the damaged chunk's row is among `owner`'s copies. */
    const row = expected.get(owner)!.findIndex((r) => r.chunk.id === chunkAt(damaged).id);
    const cases = [
      { name: 'torn', edit: (l: string) => l.replace('"skipped":false', '"skipped":'), error: `has an entry on line ${chunkLine + 1} that is not valid JSON.*Fix:` },
      { name: 'no-copies', edit: (l: string) => l.replace(/"copies":\[[^\]]*\]/, '"copies":7'), error: `has a chunk entry without one of "id", "file", "index", "offset", "size", "checksum" or "copies" on line ${chunkLine + 1}\\. Fix:` },
    ];
    for (const { name, edit, error } of cases) {
      const path = join(dir, `${name}.json`);
      await writeFile(path, fileLines.map((l, i) => (i === chunkLine ? edit(l) : l)).join('\n'));
      const index = await buildChunkPageIndex(path);
      await expect(chunksOnNode(index, owner, row, 1), name).rejects.toThrow(new RegExp(`${name}\\.json ${error}`));
      await expect(chunksOnNode(index, owner, row, 1), name).rejects.toThrow(ManifestError);
      const { rows: first, total } = await chunksOnNode(index, owner, 0, 5);
      expect(first, name).toEqual(expected.get(owner)!.slice(0, 5));
      // The last rows (a line without copies counts none, so they may sit one row earlier).
      expect((await chunksOnNode(index, owner, total - 3, 3)).rows, name).toEqual(expected.get(owner)!.slice(-3));
      const later = chunkAt(30_000).id; // a chunk on `owner` (30,000 % 3 is 0, like 12,345) in another block
      const at = await locateChunk(index, owner, later);
      expect((await chunksOnNode(index, owner, at!, 1)).rows[0]?.chunk.id, name).toBe(later);
    }

    const fileLine = fileLines.findIndex((l) => l.includes(`"key":"${fileAt(777).key}"`));
    const tornFile = join(dir, 'torn-file.json');
    await writeFile(tornFile, fileLines.map((l, i) => (i === fileLine ? l.replace('"status":"complete"', '"status":') : l)).join('\n'));
    await expect(findFiles(tornFile, '0000777', 10)).rejects.toThrow(new RegExp(`torn-file\\.json has an entry on line ${fileLine + 1} that is not valid JSON`));

    const moving = join(dir, 'moving.json');
    await writeFile(moving, text);
    const index = await buildChunkPageIndex(moving);
    await writeFile(moving, text.replace(/\{"id":"train\/0000001\.jpg_chunk_0"[^\n]*\n/, ''));
    await expect(chunksOnNode(index, 'n1', 5_000, 10)).rejects.toThrow(/moving\.json changed since its chunks were indexed\. Fix: open the run again\./);
  });

  it('counts copies on a node whose id holds a quote and a backslash (escaped in the line) as on any other', async () => {
    const odd = 'n"3\\';
    const path = join(dir, 'odd-node.json');
    await writeFile(path, (await readFile(lines, 'utf8')).replaceAll('"nodeId":"n3"', `"nodeId":${JSON.stringify(odd)}`));
    const index = await buildChunkPageIndex(path);
    expect(copiesPerNode(index)).toEqual({ n1: expected.get('n1')!.length, n2: expected.get('n2')!.length, [odd]: expected.get('n3')!.length });
    const { rows } = await chunksOnNode(index, odd, 100, 2);
    expect(rows.map((r) => r.chunk.id)).toEqual(expected.get('n3')!.slice(100, 102).map((r) => r.chunk.id));
  });

  it('counts copies written in another layout (fields in another order, more fields, a location holding quotes) as the whole manifest does', async () => {
    const path = join(dir, 'other-copies.json');
    // Every third chunk line's copies rewritten: location first, an extra field, and a location that looks like the next copy.
    const edited = (await readFile(lines, 'utf8')).split('\n').map((line, i) => {
      if (i % 3 !== 0 || !line.includes('"copies":[')) return line;
      return line.replace(/\{"nodeId":("[^"]*"),"location":("[^"]*")\}/g, (_, id: string, location: string) => `{"location":${JSON.stringify(`${JSON.parse(location) as string}"},{"nodeId":"n9`)},"verified":true,"nodeId":${id}}`);
    });
    await writeFile(path, edited.join('\n'));
    const whole = await readManifest(path);
    const counts: Record<string, number> = {};
    for (const chunk of whole.chunks) for (const copy of chunk.copies) counts[copy.nodeId] = (counts[copy.nodeId] ?? 0) + 1;
    expect(Object.keys(counts).sort()).toEqual(NODES);
    const index = await buildChunkPageIndex(path);
    expect(copiesPerNode(index)).toEqual(counts);
    const { rows } = await chunksOnNode(index, 'n2', 1_000, 3);
    expect(rows.map((r) => r.location)).toEqual(whole.chunks.flatMap((c) => c.copies.filter((copy) => copy.nodeId === 'n2').map((copy) => copy.location)).slice(1_000, 1_003));
  });

  it('previewAndIndex gives, in one pass, the preview and the index that manifestPreview and buildChunkPageIndex give, in every layout', async () => {
    for (const [layout, path] of Object.entries(layouts)) {
      for (const limit of layout === 'lines' ? [10, CHUNKS] : [10]) {
        const { preview, index } = await previewAndIndex(path, limit, 700);
        expect(preview, `${layout} ${limit}`).toEqual(await manifestPreview(path, limit));
        expect(index, `${layout} ${limit}`).toEqual(await buildChunkPageIndex(path, 700));
      }
    }
    const { preview } = await previewAndIndex(lines, 10);
    expect(preview.manifest.files).toHaveLength(10);
    expect(preview.manifest.chunks.map((c) => c.id)).toEqual(Array.from({ length: 10 }, (_, i) => chunkAt(i).id));
    expect(preview.partial).toEqual({ files: CHUNKS, chunks: CHUNKS });
  });
});
