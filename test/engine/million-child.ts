// Child process of million.test.ts, run under a heap cap: `write DIR COUNT` journals COUNT delivered chunks the
// way a run does (journal, spill, streamed manifest); `resume DIR COUNT` reads that journal back as `run --resume`
// does and looks chunks up in it; `lookup DIR COUNT` finds files in the manifest as `reassemble --file` does;
// `repair DIR COUNT` repairs its last chunk (with no node to hold it) and writes the manifest's next version;
// `pages DIR COUNT` does what the app's Received screen asks of a large run (preview, page index, pages, locate, find).
// Prints one JSON line of figures.
import { join } from 'node:path';
import type { ManifestChunk, ManifestFile } from '../../shared/types.ts';
import type { PlannedChunk } from '../../electron/engine/chunks.ts';
import { JournalWriter, readJournal } from '../../electron/engine/journal.ts';
import { lookUpFile } from '../../electron/engine/manifest-reader.ts';
import { chunksOnNode, copiesPerNode, findFiles, locateChunk, previewAndIndex } from '../../electron/engine/manifest-pages.ts';
import { repairRun } from '../../electron/engine/repair.ts';
import { readManifestSummary, writeJsonAtomic } from '../../electron/engine/manifest.ts';
import { ResumeIndex } from '../../electron/engine/resume.ts';
import { RunSpill } from '../../electron/engine/run-spill.ts';
import { streamedManifest } from '../../electron/engine/run-summary.ts';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import type { NodeTarget } from '../../electron/engine/nodes/node.ts';
import { INGESTION_DEFAULTS } from '../../shared/config/types.ts';
import type { IngestConfig } from '../../shared/config/types.ts';

const [phase, dir, countText] = process.argv.slice(2);
const count = Number(countText);

const loaded = { path: '/config.yml', config: { data_sources: {}, ingestion: INGESTION_DEFAULTS } as unknown as IngestConfig } as unknown as LoadedConfig;

function key(i: number): string {
  return `train/${String(Math.floor(i / 1000)).padStart(5, '0')}/${String(i).padStart(7, '0')}.jpg`;
}

function planned(i: number): PlannedChunk {
  const size = 256 + (i % 16_000);
  return { id: `${key(i)}_chunk_0`, object: { key: key(i), size, etag: `${size}-${i}` }, index: 0, offset: 0, size };
}

function delivered(chunk: PlannedChunk): ManifestChunk {
  const copies = ['n1', 'n2'].map((nodeId) => ({ nodeId, location: `/nodes/${nodeId}/${encodeURIComponent(chunk.id)}.chunk` }));
  return { id: chunk.id, file: chunk.object.key, index: 0, offset: 0, size: chunk.size, checksum: (chunk.object.etag ?? '').padEnd(32, '0'), node: 'n1', path: copies[0]!.location, copies, attempts: 1, movedFrom: [], skipped: false };
}

async function write(): Promise<Record<string, number>> {
  const journal = await JournalWriter.open(join(dir!, 'run.journal.jsonl'));
  journal.append({ type: 'start', version: 1, runId: 'run', startedAt: new Date(0).toISOString(), cloud: 'local', detection: { cloud: 'local', signal: 'env', detail: 'test', elapsedMs: 0, probes: [] }, pattern: '*', chunkSize: 64 << 20, algorithm: 'md5', configPath: '/config.yml' });
  const spill = await RunSpill.open(join(dir!, 'run.work'));
  for (let i = 0; i < count; i++) {
    const chunk = planned(i);
    const done = delivered(chunk);
    journal.append({ type: 'chunk', t: i, etag: chunk.object.etag!, chunk: done });
    spill.record(i, done, chunk);
    const file: ManifestFile = { key: chunk.object.key, size: chunk.size, etag: chunk.object.etag!, checksum: done.checksum, chunkCount: 1, status: 'complete' };
    spill.addFile(file);
    // A run journals as chunks land, at the pace of its transfers: here the loop waits for the journal's writes
    // instead, so a slow disk (a busy machine) does not let a million lines pile up in memory.
    if (i % 1000 === 999) await journal.drained();
  }
  await journal.close();
  const { document } = streamedManifest({ loaded, runId: 'run', startedAt: new Date(0), status: 'complete', detection: { cloud: 'local', signal: 'env', detail: 'test', elapsedMs: 0, probes: [] }, source: { kind: 'local', location: '/data' }, algorithm: 'md5', chunkSize: 64 << 20, fileCount: count, files: () => spill.fileEntries(), chunks: () => spill.manifestEntries(), totals: spill.totals, shortfall: [], nodes: [], counters: { retries: 0, replacements: 0 } });
  await writeJsonAtomic(join(dir!, 'run.json'), document);
  await spill.remove();
  return {};
}

async function* sampledChunks(): AsyncGenerator<{ id: string }> {
  for (let i = 0; i < count; i += 997) yield { id: planned(i).id };
  yield { id: planned(5).id };
}

async function resume(): Promise<Record<string, number>> {
  const state = await readJournal(join(dir!, 'run.journal.jsonl'));
  const index = new ResumeIndex({ journal: state, algorithm: 'md5' });
  // A journaled copy counts only if its node lists the chunk: the nodes list the chunks looked up below (a
  // listing of the million is the nodes' own test; this one is about the journal's memory).
  await index.indexNodes(['n1', 'n2'].map((id) => ({ id, list: () => sampledChunks() }) as unknown as NodeTarget));
  const live = new Set(['n1', 'n2']);
  let found = 0;
  let changed = 0;
  for (let i = 0; i < count; i += 997) {
    const entry = index.journaled(planned(i), live, () => changed++);
    if (entry?.id === planned(i).id && entry.checksum === delivered(planned(i)).checksum) found++;
  }
  // A chunk whose source changed since is not taken as delivered.
  const moved = { ...planned(5), object: { ...planned(5).object, etag: 'other' } };
  const reread = index.journaled(moved, live, () => changed++) === undefined ? 1 : 0;
  const size = state.chunks.size;
  state.chunks.close();
  return { chunks: size, found, changed, reread };
}

/** The first, a middle and the last file, each with its one chunk, and a key the manifest lacks. */
async function lookup(): Promise<Record<string, number>> {
  let found = 0;
  for (const i of [0, Math.floor(count / 2), count - 1]) {
    const { file, chunks, nodes } = await lookUpFile(join(dir!, 'run.json'), key(i));
    const want = delivered(planned(i));
    if (file?.key === key(i) && file.checksum === want.checksum && chunks.length === 1 && chunks[0]!.id === want.id && Array.isArray(nodes)) found++;
  }
  const missing = await lookUpFile(join(dir!, 'run.json'), 'train/none.jpg');
  // What the app's list of runs reads: a few KB at each end.
  const { totals } = await readManifestSummary(join(dir!, 'run.json'));
  return { found, missingFound: missing.file ? 1 : 0, keysNamed: missing.someKeys.length, moreKeys: missing.moreKeys ? 1 : 0, summaryFiles: totals.files };
}

/** Repair of the last chunk, whose copies' nodes are not there: both copies missing, the next version degraded. */
async function repair(): Promise<Record<string, number>> {
  const report = await repairRun({ loaded, manifestPath: join(dir!, 'run.json'), chunkIds: [planned(count - 1).id], nodes: [] });
  return { checked: report.checked, problems: report.problems.length, degraded: report.status === 'degraded' ? 1 : 0 };
}

/** The app's view of the run: its first 20,000 entries, every copy counted per node, a page at the end, the last chunk's row, a file by name. */
async function pages(): Promise<Record<string, number>> {
  const path = join(dir!, 'run.json');
  // What the app does when it opens the run: the preview and the page index in one pass.
  const { preview, index } = await previewAndIndex(path, 20_000);
  const perNode = copiesPerNode(index);
  const { rows, total } = await chunksOnNode(index, 'n2', count - 150, 200);
  const last = planned(count - 1).id;
  const position = await locateChunk(index, 'n2', last);
  const found = await findFiles(path, key(count - 1).split('/').pop()!, 10);
  return {
    previewFiles: preview.manifest.files.length,
    previewChunks: preview.manifest.chunks.length,
    partialFiles: preview.partial?.files ?? 0,
    onN1: perNode.n1 ?? 0,
    onN2: perNode.n2 ?? 0,
    pageRows: rows.length,
    pageTotal: total,
    pageEndsAtLast: rows.at(-1)?.chunk.id === last && rows[0]?.chunk.id === planned(count - 150).id ? 1 : 0,
    lastPosition: position ?? -1,
    foundLast: found.keys.length === 1 && found.keys[0] === key(count - 1) && !found.more ? 1 : 0,
  };
}

const phases: Record<string, () => Promise<Record<string, number>>> = { write, resume, lookup, repair, pages };
const figures = await phases[phase!]!();
const memory = process.memoryUsage();
process.stdout.write(`${JSON.stringify({ ...figures, heapUsedMb: Math.round(memory.heapUsed / 2 ** 20), rssMb: Math.round(memory.rss / 2 ** 20) })}\n`);
