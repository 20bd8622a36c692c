// Cancel and resume: nothing partial is visible as complete, delivered chunks are not read again,
// and the resumed run ends with the manifest a clean run would have written.
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import { JournalWriter, listResumableRuns, readJournal } from '../../electron/engine/journal.ts';
import { manifestDir } from '../../electron/engine/manifest.ts';
import type { JournalEntry, JournalStart } from '../../electron/engine/journal.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { IngestEvent, Manifest, ManifestChunk } from '../../shared/types.ts';
import { folderTemps, heldChunks } from '../nodes/folder-layout.ts';
import { cancelAfterVerified, detection, md5OfRange, MIB, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

async function project(files: Record<string, number>) {
  const root = await tempProject();
  for (const [name, size] of Object.entries(files)) await ensureDataFile(join(root, 'data', name), size, name);
  const nodes = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];
  const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 2, retry_attempts: 1, retry_delay_seconds: 0.05 }\n${nodesYaml(nodes)}`;
  return { root, loaded: await writeConfig(root, yaml) };
}

const shape = (m: Manifest) => m.chunks.map((c) => [c.id, c.offset, c.size, c.checksum, c.copies.length]);

async function assertNoPartialChunks(root: string): Promise<void> {
  for (const node of ['n1', 'n2']) {
    const dir = join(root, 'nodes', node);
    for (const held of await heldChunks(dir)) expect(await md5OfRange(held.dataPath, 0, held.size)).toBe(held.checksum);
    expect(await folderTemps(dir)).toEqual([]);
  }
}

describe('the journal of a run killed as it starts', () => {
  it('holds its start line before the first chunk moves, so the run can be resumed', async () => {
    const { loaded } = await project({ 'a.bin': 3 * MIB });
    const dir = manifestDir(loaded);
    let firstLineAtFirstChunk: string | undefined;
    await runIngest({
      loaded,
      detection: detection('local'),
      onEvent: (e) => {
        if (e.type !== 'chunk' || firstLineAtFirstChunk !== undefined) return;
        const journal = readdirSync(dir).find((name) => name.endsWith('.journal.jsonl'));
        firstLineAtFirstChunk = journal ? readFileSync(join(dir, journal), 'utf8').split('\n')[0] : '(no journal)';
      },
    });
    expect(JSON.parse(firstLineAtFirstChunk ?? '{}')).toMatchObject({ type: 'start', version: 1 });
  });
});

describe('cancel and resume', () => {
  it('cancel stops promptly, leaves nothing half-written, and resume finishes without re-reading delivered chunks', async () => {
    const { root, loaded } = await project({ 'a.bin': 12 * MIB + 3, 'b.bin': 9 * MIB });
    const controller = new AbortController();
    let verified = 0;
    let abortedAt = 0;
    const first = await runIngest({
      loaded,
      detection: detection('local'),
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'chunk' && e.state === 'verified' && ++verified === 5) {
          abortedAt = performance.now();
          controller.abort(new Error('cancelled by the test'));
        }
      },
    });
    const stopMs = performance.now() - abortedAt;
    expect(first.manifest.status).toBe('cancelled');
    expect(stopMs).toBeLessThan(2000);
    await assertNoPartialChunks(root);
    const delivered = new Set(first.manifest.chunks.map((c) => c.id));
    expect(delivered.size).toBeGreaterThanOrEqual(5);
    expect(delivered.size).toBeLessThan(22);
    expect((await listResumableRuns(loaded)).map((r) => r.runId)).toEqual([first.manifest.runId]);

    const events: IngestEvent[] = [];
    const resumed = await runIngest({ loaded, detection: detection('local'), resume: first.manifest.runId, onEvent: (e) => events.push(e) });
    expect(resumed.manifest.status).toBe('complete');
    expect(resumed.manifest.runId).toBe(first.manifest.runId);
    expect(resumed.manifestPath).toBe(first.manifestPath);
    const read = events.filter((e): e is Extract<IngestEvent, { type: 'chunk' }> => e.type === 'chunk' && e.state === 'reading').map((e) => e.id);
    expect(read.filter((id) => delivered.has(id))).toEqual([]);
    // The rest were read, except any a node finished storing just as the cancel came (found there, not re-sent).
    expect(read.length).toBeLessThanOrEqual(22 - delivered.size);
    expect(resumed.manifest.chunks).toHaveLength(22);
    expect(await listResumableRuns(loaded)).toEqual([]);

    const { root: cleanRoot, loaded: clean } = await project({ 'a.bin': 12 * MIB + 3, 'b.bin': 9 * MIB });
    const reference = await runIngest({ loaded: clean, detection: detection('local') });
    expect(shape(resumed.manifest)).toEqual(shape(reference.manifest));
    expect(resumed.manifest.files.map((f) => [f.key, f.checksum])).toEqual(reference.manifest.files.map((f) => [f.key, f.checksum]));
    expect((await verifyRun({ loaded, manifestPath: resumed.manifestPath })).problems).toEqual([]);
    void cleanRoot;
  });

  it('a file that changed since the run started is read again, never mixed', async () => {
    const { loaded, root } = await project({ 'a.bin': 4 * MIB, 'b.bin': 2 * MIB });
    const first = await runIngest({ loaded, detection: detection('local'), ...cancelAfterVerified(2) });
    expect(first.manifest.status).toBe('cancelled');
    // Rewrite a.bin with other bytes of the same size: same key, new version.
    await writeFile(join(root, 'data', 'a.bin'), Buffer.alloc(4 * MIB, 7));
    const events: IngestEvent[] = [];
    const resumed = await runIngest({ loaded, detection: detection('local'), resume: first.manifest.runId, onEvent: (e) => events.push(e) });
    expect(resumed.manifest.status).toBe('complete');
    expect(events.some((e) => e.type === 'log' && e.level === 'warn' && e.message.includes('a.bin changed since run'))).toBe(true);
    for (const chunk of resumed.manifest.chunks.filter((c) => c.file === 'a.bin')) {
      expect(chunk.checksum).toBe(await md5OfRange(join(root, 'data', 'a.bin'), chunk.offset, chunk.size));
    }
  });
});

describe('the run journal', () => {
  it('keeps every line, in order, when thousands of chunks are journaled at once and more arrive mid-write', async () => {
    const path = join(await tempProject(), 'run.journal.jsonl');
    const journal = await JournalWriter.open(path);
    const start: JournalStart = { type: 'start', version: 1, runId: 'r1', startedAt: new Date(0).toISOString(), cloud: 'local', detection: detection('local'), pattern: '**', chunkSize: MIB, algorithm: 'md5', configPath: 'config/data_sources.yml' };
    const chunk = (i: number): JournalEntry => ({
      type: 'chunk',
      etag: `e${i}`,
      chunk: { id: `f${i}_chunk_0`, file: `f${i}`, index: 0, offset: 0, size: i, checksum: `sum${i}`, node: 'n1', path: `/n1/f${i}`, copies: [{ nodeId: 'n1', location: `/n1/f${i}` }], attempts: 1, movedFrom: [], skipped: false },
    });
    journal.append(start);
    for (let i = 0; i < 20_000; i++) journal.append(chunk(i));
    // A write is in flight now: these must land after the first 20,000, none lost.
    await Promise.resolve();
    for (let i = 20_000; i < 20_500; i++) journal.append(chunk(i));
    // A line larger than the writer's buffer, between others.
    const huge = chunk(20_500);
    if (huge.type === 'chunk') huge.chunk.file = 'x'.repeat(600_000);
    journal.append(huge);
    for (let i = 20_501; i < 20_600; i++) journal.append(chunk(i));
    await journal.close();
    const state = await readJournal(path);
    expect(state.start.runId).toBe('r1');
    expect([...state.chunks.keys()]).toEqual(Array.from({ length: 20_600 }, (_, i) => `f${i}_chunk_0`));
    expect(state.chunks.get('f20499_chunk_0')?.etag).toBe('e20499');
    expect(state.chunks.get('f20500_chunk_0')?.chunk.file).toHaveLength(600_000);
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines.length).toBe(1 + 20_600 + 1);
  });

  it('writes a chunk given as JSON (appendChunk) as the same line as the entry given whole', async () => {
    const dir = await tempProject();
    const chunk: ManifestChunk = { id: 'a_chunk_0', file: 'a "quoted" \u00e9', index: 0, offset: 0, size: 3, checksum: 'c', node: 'n1', path: '/n1/a', copies: [{ nodeId: 'n1', location: '/n1/a' }], attempts: 1, movedFrom: [], skipped: false };
    const whole = await JournalWriter.open(join(dir, 'whole.jsonl'));
    const given = await JournalWriter.open(join(dir, 'given.jsonl'));
    for (const etag of ['"v1"', undefined]) {
      whole.append({ type: 'chunk', t: 42, ...(etag ? { etag } : {}), chunk });
      given.appendChunk(42, etag, JSON.stringify(chunk));
    }
    await Promise.all([whole.close(), given.close()]);
    expect(await readFile(join(dir, 'given.jsonl'), 'utf8')).toBe(await readFile(join(dir, 'whole.jsonl'), 'utf8'));
  });
});

describe('what a run records of itself', () => {
  it('the manifest says who ran it and from where; each journaled chunk when it was stored', async () => {
    const { loaded } = await project({ 'a.bin': 3 * MIB });
    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local'), tool: 'cli' });
    expect(manifest.ranBy).toEqual({ tool: 'cli', user: expect.any(String), host: expect.any(String) });
    const lines = (await readFile(manifestPath.replace(/\.json$/, '.journal.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as JournalEntry);
    const times = lines.flatMap((e) => (e.type === 'chunk' ? [e.t] : []));
    expect(times).toHaveLength(3);
    for (const t of times) expect(t).toBeGreaterThanOrEqual(0);
    expect(times.every((t) => t !== undefined && t <= Date.parse(manifest.finishedAt) - Date.parse(manifest.startedAt))).toBe(true);
  });
});
