// Manifests and journals on disk are untrusted input: a real run's manifest or journal is edited, then the real
// engine functions run on it. An edited entry fails only itself, naming the file and the line; nothing is written
// outside the configured node folders, and no chunk's copy is overwritten with another chunk's bytes.
import { execFileSync } from 'node:child_process';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import { readJournal, journalPath, ResumeError } from '../../electron/engine/journal.ts';
import { readManifest } from '../../electron/engine/manifest.ts';
import { reassembleFile, ReassembleInputError } from '../../electron/engine/reassemble.ts';
import { repairRun } from '../../electron/engine/repair.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { ManifestChunk, NodeSummary } from '../../shared/types.ts';
import { detection, md5OfRange, MIB, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

async function project() {
  const root = await tempProject();
  await ensureDataFile(join(root, 'data', 'a.bin'), 2 * MIB + 17, 'a.bin');
  await ensureDataFile(join(root, 'data', 'b.bin'), 1000, 'b.bin');
  const nodes = [1, 2, 3].map((i) => ({ id: `n${i}`, path: `./nodes/n${i}` }));
  const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 2, retry_attempts: 1, retry_delay_seconds: 0.05, replicas: 2 }\n${nodesYaml(nodes)}`;
  const loaded = await writeConfig(root, yaml);
  const run = await runIngest({ loaded, detection: detection('local') });
  expect(run.manifest.status).toBe('complete');
  return { root, loaded, run };
}

/** Rewrites a manifest's entry lines (`    {...},`) of one section through `edit`, keeping its layout. */
async function editEntries(path: string, section: 'chunks' | 'nodes', edit: (entry: Record<string, unknown>) => unknown): Promise<void> {
  let inside = false;
  const lines = (await readFile(path, 'utf8')).split('\n').map((line) => {
    if (line === `  "${section}": [`) inside = true;
    else if (/^ {2}\],?$/.test(line)) inside = false;
    else if (inside && line.startsWith('    {')) {
      const comma = line.endsWith(',') ? ',' : '';
      const edited = edit(JSON.parse(line.trim().replace(/,$/, '')) as Record<string, unknown>);
      return (Array.isArray(edited) ? edited : [edited]).map((e) => `    ${JSON.stringify(e)}`).join(',\n') + comma;
    }
    return line;
  });
  await writeFile(path, lines.join('\n'));
}

async function lineOf(path: string, text: string): Promise<number> {
  return (await readFile(path, 'utf8')).split('\n').findIndex((l) => l.includes(text)) + 1;
}

describe('a hand-edited manifest', () => {
  it('two chunks with one id: repair restores neither, so the other chunk\'s copies are never overwritten', async () => {
    const { loaded, run } = await project();
    const [first, second] = [run.manifest.chunks.find((c) => c.id === 'a.bin_chunk_0')!, run.manifest.chunks.find((c) => c.id === 'a.bin_chunk_1')!];
    await editEntries(run.manifestPath, 'chunks', (c) => (c.id === second.id ? { ...c, id: first.id } : c));
    const before = await Promise.all(first.copies.map((c) => md5OfRange(c.location, 0, first.size)));
    expect(before.every((hex) => hex === first.checksum)).toBe(true);

    const report = await repairRun({ loaded, manifestPath: run.manifestPath });
    expect(report.actions).toEqual([]);
    expect(report.status).toBe('degraded');
    const problem = report.problems.find((p) => p.chunkId === first.id && p.nodeId === '?');
    expect(problem?.detail).toContain(`lists chunk id "${first.id}" 2 times (lines `);
    expect(await Promise.all(first.copies.map((c) => md5OfRange(c.location, 0, first.size)))).toEqual(before);
    // The next version keeps both entries as they were, not one of them twice.
    const next = await readManifest(report.manifestPath);
    expect(next.chunks.filter((c) => c.id === first.id).map((c) => c.checksum).sort()).toEqual([first.checksum, second.checksum].sort());
  });

  it('a chunk entry with damaged copies fails only that chunk in verify and repair, naming the manifest line', async () => {
    const { loaded, run } = await project();
    const damaged = run.manifest.chunks.find((c) => c.id === 'a.bin_chunk_1')!;
    const nulled = run.manifest.chunks.find((c) => c.id === 'b.bin_chunk_0')!;
    await editEntries(run.manifestPath, 'chunks', (c) => (c.id === damaged.id ? { ...c, copies: 5 } : c.id === nulled.id ? { ...c, copies: [null] } : c));
    const line = await lineOf(run.manifestPath, `"id":"${damaged.id}"`);

    const verified = await verifyRun({ loaded, manifestPath: run.manifestPath });
    expect(verified.problems.map((p) => p.chunkId).sort()).toEqual([damaged.id, nulled.id].sort());
    expect(verified.problems.find((p) => p.chunkId === damaged.id)?.detail).toContain(`${run.manifestPath} line ${line}: the chunk entry is damaged (its copies 5 are not a list). Fix:`);
    expect(verified.ok).toBe((run.manifest.chunks.length - 2) * 2);

    const repaired = await repairRun({ loaded, manifestPath: run.manifestPath });
    expect(repaired.status).toBe('degraded');
    expect(repaired.problems.map((p) => p.chunkId).sort()).toEqual([damaged.id, nulled.id].sort());
    expect((await readManifest(repaired.manifestPath)).shortfall?.map((s) => s.chunkId).sort()).toEqual([damaged.id, nulled.id].sort());

    // reassemble refuses the file with the damaged entry (naming it), and rebuilds the others.
    const out = join(loaded.resolve('.'), 'b.out');
    await expect(reassembleFile({ loaded, manifestPath: run.manifestPath, key: 'b.bin', outPath: out })).rejects.toThrow(ReassembleInputError);
    await expect(reassembleFile({ loaded, manifestPath: run.manifestPath, key: 'b.bin', outPath: out })).rejects.toThrow(/b\.bin_chunk_0: a copy null names no node/);
  });

  it('repair never writes into a folder only the manifest names (not the config), and reads no path the manifest gives', async () => {
    const { root, loaded, run } = await project();
    const chunk: ManifestChunk = run.manifest.chunks.find((c) => c.id === 'a.bin_chunk_0')!;
    const elsewhere = join(root, 'elsewhere', 'deep');
    await editEntries(run.manifestPath, 'nodes', (n) => (n.id === 'n1' ? [n, { ...(n as unknown as NodeSummary), id: 'evil', location: elsewhere }] : n));
    await editEntries(run.manifestPath, 'chunks', (c) =>
      c.id === chunk.id ? { ...c, copies: [{ nodeId: 'evil', location: '/etc/passwd' }, ...(c.copies as ManifestChunk['copies']).slice(1)] } : c,
    );

    const report = await repairRun({ loaded, manifestPath: run.manifestPath });
    await expect(stat(join(root, 'elsewhere'))).rejects.toThrow(/ENOENT/);
    expect(report.actions.map((a) => [a.chunkId, a.outcome, a.nodeId === 'evil'])).toEqual([[chunk.id, 'restored', false]]);
    expect(report.status).toBe('complete');
    expect((await verifyRun({ loaded, manifestPath: report.manifestPath })).problems.filter((p) => p.nodeId !== 'evil')).toEqual([]);
  });
});

describe('a hand-edited journal', () => {
  async function killedRun() {
    const p = await project();
    const chunks = p.run.manifest.chunks; // read before the manifest goes
    const path = journalPath(p.loaded, p.run.manifest.runId);
    // As a run killed before its end leaves it: no end line, no manifest.
    await writeFile(path, (await readFile(path, 'utf8')).replace(/\{"type":"end".*\n$/, ''));
    await rm(p.run.manifestPath);
    return { ...p, path, chunks };
  }

  it('a chunk line naming a node that lacks the chunk: resume sends it again instead of trusting the line', async () => {
    const { loaded, run, path, chunks } = await killedRun();
    const chunk = chunks.find((c) => c.id === 'a.bin_chunk_0')!;
    const lacking = ['n1', 'n2', 'n3'].find((id) => !chunk.copies.some((c) => c.nodeId === id))!;
    const held = chunk.copies[1]!.nodeId;
    await writeFile(path, (await readFile(path, 'utf8')).replace(new RegExp(`("id":"${chunk.id}".*?"copies":\\[\\{"nodeId":"[^"]+","location":"[^"]+"\\},\\{"nodeId":)"${held}"`), `$1"${lacking}"`));
    expect(await readFile(path, 'utf8')).toContain(`{"nodeId":"${lacking}"`);

    const resumed = await runIngest({ loaded, detection: detection('local'), resume: run.manifest.runId });
    expect(resumed.manifest.status).toBe('complete');
    expect((await verifyRun({ loaded, manifestPath: resumed.manifestPath })).problems).toEqual([]);
  });

  it('damaged chunk lines are passed over (their chunks redone), and a FIFO in the journal\'s place does not hang', async () => {
    const { loaded, run, path } = await killedRun();
    const lines = (await readFile(path, 'utf8')).split('\n');
    const damaged = JSON.parse(lines[1]!) as { chunk: Record<string, unknown> };
    lines.splice(1, 1, JSON.stringify({ ...damaged, chunk: { ...damaged.chunk, copies: 5 } }), '{"type":"chunk"}', '{"type":"chunk","chunk":null}', 'garbage');
    await writeFile(path, lines.join('\n'));
    const state = await readJournal(path);
    expect([...state.chunks.keys()]).not.toContain(damaged.chunk.id);
    state.chunks.close();
    const resumed = await runIngest({ loaded, detection: detection('local'), resume: run.manifest.runId });
    expect(resumed.manifest.status).toBe('complete');
    expect(resumed.manifest.files.every((f) => f.status === 'complete')).toBe(true);

    await rm(path);
    execFileSync('mkfifo', [path]);
    await expect(readJournal(path)).rejects.toThrow(ResumeError);
    await expect(readJournal(path)).rejects.toThrow(/is not a regular file/);
  });
});
