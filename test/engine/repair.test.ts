// Repair: after damage on the nodes (a flipped byte, a deleted chunk, a node folder gone), `repairRun` restores
// every copy from a good copy or from the source, writes the manifest's next version, and verify passes.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import { listResumableRuns } from '../../electron/engine/journal.ts';
import { latestManifestPath, readManifest } from '../../electron/engine/manifest.ts';
import { repairRun } from '../../electron/engine/repair.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { RepairEvent } from '../../shared/types.ts';
import { cleanupAgents, runCli, spawnAgent } from '../helpers/agents.ts';
import { detection, MIB, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

async function project(replicas: number) {
  const root = await tempProject();
  await ensureDataFile(join(root, 'data', 'a.bin'), 5 * MIB + 17, 'a.bin');
  await ensureDataFile(join(root, 'data', 'b.bin'), 3 * MIB, 'b.bin');
  const nodes = [1, 2, 3].map((i) => ({ id: `n${i}`, path: `./nodes/n${i}` }));
  const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 2, retry_attempts: 1, retry_delay_seconds: 0.05, replicas: ${replicas} }\n${nodesYaml(nodes)}`;
  const loaded = await writeConfig(root, yaml);
  const run = await runIngest({ loaded, detection: detection('local') });
  expect(run.manifest.status).toBe('complete');
  return { root, loaded, run };
}

async function flipByte(path: string, at: number): Promise<void> {
  const file = await open(path, 'r+');
  try {
    const one = Buffer.alloc(1);
    await file.read(one, 0, 1, at);
    one[0] = one[0]! ^ 0xff;
    await file.write(one, 0, 1, at);
  } finally {
    await file.close();
  }
}

describe('repair', () => {
  it('restores a damaged and a deleted copy from the good copies (replicas: 2); verify passes after', async () => {
    const { loaded, run } = await project(2);
    const [damaged, deleted] = [run.manifest.chunks[1]!, run.manifest.chunks[6]!];
    await flipByte(damaged.copies[0]!.location, 1000);
    await rm(deleted.copies[1]!.location);
    const before = await verifyRun({ loaded, manifestPath: run.manifestPath });
    expect(before.problems.map((p) => p.chunkId).sort()).toEqual([damaged.id, deleted.id].sort());

    const events: RepairEvent[] = [];
    const report = await repairRun({ loaded, manifestPath: run.manifestPath, onEvent: (e) => events.push(e) });
    expect(report.problems).toHaveLength(2);
    expect(report.actions.filter((a) => a.outcome === 'restored')).toHaveLength(2);
    expect(report.actions.every((a) => a.from === 'copy')).toBe(true);
    expect(report.status).toBe('complete');
    expect(report.manifestPath).not.toBe(run.manifestPath);
    expect(await latestManifestPath(loaded)).toBe(report.manifestPath);
    expect(events.at(-1)?.type).toBe('repair-finished');
    expect(events.some((e) => e.type === 'repair-checked')).toBe(true);

    const after = await verifyRun({ loaded, manifestPath: report.manifestPath });
    expect(after.problems).toEqual([]);
    expect(after.checked).toBe(run.manifest.chunks.length * 2);
  });

  it('restores the only copy from the source at the same version (replicas: 1)', async () => {
    const { loaded, run } = await project(1);
    const chunk = run.manifest.chunks[2]!;
    await flipByte(chunk.copies[0]!.location, 5);
    const report = await repairRun({ loaded, manifestPath: run.manifestPath });
    expect(report.actions).toEqual([expect.objectContaining({ chunkId: chunk.id, from: 'source', outcome: 'restored' })]);
    expect((await verifyRun({ loaded, manifestPath: report.manifestPath })).problems).toEqual([]);
  });

  it('a node folder gone: its chunks get copies on the other nodes, and the next manifest names them', async () => {
    const { root, loaded, run } = await project(1);
    const onN2 = run.manifest.chunks.filter((c) => c.copies.some((copy) => copy.nodeId === 'n2'));
    expect(onN2.length).toBeGreaterThan(0);
    // The folder becomes a file: the node cannot be used at all (probes fail), as a dead disk would.
    await rm(join(root, 'nodes', 'n2'), { recursive: true });
    await writeFile(join(root, 'nodes', 'n2'), 'not a folder');
    const report = await repairRun({ loaded, manifestPath: run.manifestPath });
    expect(report.actions.filter((a) => a.outcome === 'restored')).toHaveLength(onN2.length);
    const next = await readManifest(report.manifestPath);
    expect(next.status).toBe('complete');
    for (const chunk of next.chunks) expect(chunk.copies.map((c) => c.nodeId)).not.toContain('n2');
    expect(next.chunks.find((c) => c.id === onN2[0]!.id)!.movedFrom).toContain('n2');
    expect((await verifyRun({ loaded, manifestPath: report.manifestPath })).problems).toEqual([]);
  });

  it('a source that changed is reported, never stitched: the chunk stays short and the manifest says degraded', async () => {
    const { root, loaded, run } = await project(1);
    const chunk = run.manifest.chunks.find((c) => c.file === 'b.bin')!;
    await flipByte(chunk.copies[0]!.location, 5);
    await writeFile(join(root, 'data', 'b.bin'), Buffer.alloc(3 * MIB, 7)); // same size, new bytes and mtime
    const report = await repairRun({ loaded, manifestPath: run.manifestPath });
    expect(report.changedSources).toEqual(['b.bin']);
    expect(report.actions).toEqual([expect.objectContaining({ chunkId: chunk.id, outcome: 'failed' })]);
    expect(report.actions[0]!.detail).toMatch(/changed at the source/);
    expect(report.status).toBe('degraded');
    const next = await readManifest(report.manifestPath);
    expect(next.shortfall?.map((s) => s.chunkId)).toEqual([chunk.id]);
  });

  it('only the chunks asked for: a file-scoped repair leaves other damage alone', async () => {
    const { loaded, run } = await project(1);
    const a = run.manifest.chunks.find((c) => c.file === 'a.bin')!;
    const b = run.manifest.chunks.find((c) => c.file === 'b.bin')!;
    await flipByte(a.copies[0]!.location, 9);
    await flipByte(b.copies[0]!.location, 9);
    const report = await repairRun({ loaded, manifestPath: run.manifestPath, files: ['b.bin'] });
    expect(report.actions.map((x) => x.chunkId)).toEqual([b.id]);
    const after = await verifyRun({ loaded, manifestPath: report.manifestPath });
    expect(after.problems.map((p) => p.chunkId)).toEqual([a.id]);
    const names = await readdir(join(loaded.resolve('.'), 'nodes', 'n1'));
    expect(names.some((n) => n.endsWith('.part'))).toBe(false);
  });
});

describe('cloud-ingest repair (the CLI)', () => {
  it('prints what it did, exits 0 when the repaired manifest is complete, and verify passes after', async () => {
    const { loaded, run } = await project(2);
    await flipByte(run.manifest.chunks[0]!.copies[0]!.location, 3);
    const config = ['--config', loaded.path];
    const broken = await runCli(['verify', ...config]);
    expect(broken.code).toBe(1);
    const repaired = await runCli(['repair', ...config]);
    expect(repaired.stderr).toBe('');
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain(`restored ${run.manifest.chunks[0]!.id} on ${run.manifest.chunks[0]!.copies[0]!.nodeId} from the copy on ${run.manifest.chunks[0]!.copies[1]!.nodeId}`);
    expect(repaired.stdout).toMatch(/^complete: /);
    const verified = await runCli(['verify', ...config]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('.v002.json');
  });
});

describe('repair on node agents', () => {
  afterAll(cleanupAgents);

  it('a copy damaged on an agent\'s disk is rewritten there from the other copy, though the agent believes it intact', async () => {
    const root = await tempProject();
    await ensureDataFile(join(root, 'data', 'a.bin'), 4 * MIB + 5, 'a.bin');
    const agents = await Promise.all([spawnAgent({ token: null }), spawnAgent({ token: null })]);
    const nodes = agents.map((a, i) => `  - { id: ag${i + 1}, url: "${a.url}" }`).join('\n');
    const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 2, retry_attempts: 1, retry_delay_seconds: 0.05, replicas: 2 }\nnodes:\n${nodes}\n`;
    const loaded = await writeConfig(root, yaml);
    const run = await runIngest({ loaded, detection: detection('local') });
    expect(run.manifest.status).toBe('complete');
    const victim = run.manifest.chunks[2]!;
    const dir = agents[0]!.dir;
    let damaged = false;
    for (const name of (await readdir(dir, { recursive: true })).filter((n) => n.endsWith('.chunk.json'))) {
      const meta = JSON.parse(await readFile(join(dir, name), 'utf8')) as { id: string };
      if (meta.id !== victim.id) continue;
      await flipByte(join(dir, name.replace(/\.json$/, '')), 100);
      damaged = true;
    }
    expect(damaged).toBe(true);
    expect((await verifyRun({ loaded, manifestPath: run.manifestPath })).problems.map((p) => [p.chunkId, p.nodeId])).toEqual([[victim.id, 'ag1']]);
    const report = await repairRun({ loaded, manifestPath: run.manifestPath });
    expect(report.actions).toEqual([expect.objectContaining({ chunkId: victim.id, nodeId: 'ag1', from: 'copy', sourceNodeId: 'ag2', outcome: 'restored' })]);
    expect((await verifyRun({ loaded, manifestPath: report.manifestPath })).problems).toEqual([]);
  });
});

describe('a degraded run, then repair', () => {
  it('a node lost mid-run leaves the run degraded and resumable; repair completes it and it is no longer offered for resuming', async () => {
    const root = await tempProject();
    await ensureDataFile(join(root, 'data', 'a.bin'), 6 * MIB, 'a.bin');
    const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 1, retry_attempts: 0, retry_delay_seconds: 0.01, replicas: 2 }\n${nodesYaml([{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }])}`;
    const loaded = await writeConfig(root, yaml);
    const n2 = join(root, 'nodes', 'n2');
    let moved = false;
    const run = await runIngest({
      loaded,
      detection: detection('local'),
      onEvent: (e) => {
        if (!moved && e.type === 'chunk' && e.state === 'verified') {
          moved = true;
          renameSync(n2, `${n2}.aside`);
          writeFileSync(n2, 'not a folder');
        }
      },
    });
    expect(run.manifest.status).toBe('degraded');
    expect(run.manifest.shortfall!.length).toBeGreaterThan(0);
    expect((await listResumableRuns(loaded)).map((r) => r.runId)).toEqual([run.manifest.runId]);
    rmSync(n2);
    renameSync(`${n2}.aside`, n2);
    const report = await repairRun({ loaded, manifestPath: run.manifestPath });
    expect(report.status).toBe('complete');
    expect(await listResumableRuns(loaded)).toEqual([]);
    expect((await verifyRun({ loaded, manifestPath: report.manifestPath })).problems).toEqual([]);
  });
});
