// The original design's scenarios, made real: real files, real folder nodes, real failures on disk.
import { rmSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NoHealthyNodeError, runIngest } from '../../electron/engine/ingest.ts';
import { chunkFileName } from '../../electron/engine/chunk-names.ts';
import { chunkSubfolder } from '../../electron/engine/chunk-names.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import type { ReassembleProgress } from '../../electron/engine/reassemble.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { detection, md5OfRange, MIB, nodesYaml, ORIGINAL_YAML, tempProject, writeConfig } from './fixtures.ts';
import { tempDir } from '../helpers/temp.ts';
import { folderTemps } from '../nodes/folder-layout.ts';

let big: string;

beforeAll(async () => {
  const dir = await tempDir('ci-big-');
  big = join(dir, 'training_data_150mb.bin');
  await ensureDataFile(big, 150 * MIB, 'big');
});

async function folderNodes(root: string, count: number): Promise<{ id: string; path: string }[]> {
  return Array.from({ length: count }, (_, i) => ({ id: `node-${i + 1}`, path: `./nodes/node-${i + 1}` }));
}

async function smallProject(files: Record<string, number>, options: { nodes?: number; chunkMb?: number; placement?: string; extraIngestion?: string } = {}) {
  const root = await tempProject();
  const data = join(root, 'data');
  for (const [name, size] of Object.entries(files)) await ensureDataFile(join(data, name), size, name);
  await mkdir(data, { recursive: true });
  const nodes = await folderNodes(root, options.nodes ?? 3);
  const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion:\n  chunk_size_mb: ${options.chunkMb ?? 1}\n  max_concurrent_chunks: 4\n  retry_attempts: 2\n  retry_delay_seconds: 0.05\n  placement: ${options.placement ?? 'balanced'}\n${options.extraIngestion ?? ''}${nodesYaml(nodes)}`;
  return { root, data, nodes, loaded: await writeConfig(root, yaml) };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

describe('ingest from the cloud simulations', () => {
  it.each(['gcp', 'aws'] as const)('a 150 MiB file from the %s simulation gives 2 chunks (100 + 50 MiB) with correct MD5s', async (cloud) => {
    const root = await tempProject();
    const folder = cloud === 'gcp' ? 'gcp_gcs_simulation' : 'aws_s3_simulation';
    await mkdir(join(root, 'test_data', folder), { recursive: true });
    await link(big, join(root, 'test_data', folder, 'training_data_150mb.bin'));
    const nodes = [{ id: 'a', path: './received_chunks/a' }, { id: 'b', path: './received_chunks/b' }];
    const loaded = await writeConfig(root, ORIGINAL_YAML + nodesYaml(nodes));
    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection(cloud) });

    expect(manifest.status).toBe('complete');
    expect(manifest.cloud).toBe(cloud);
    expect(manifest.source.location).toBe(join(root, 'test_data', folder));
    expect(manifest.chunks.map((c) => [c.id, c.offset, c.size])).toEqual([
      ['training_data_150mb.bin_chunk_0', 0, 100 * MIB],
      ['training_data_150mb.bin_chunk_1', 100 * MIB, 50 * MIB],
    ]);
    for (const chunk of manifest.chunks) {
      expect(chunk.checksum).toBe(await md5OfRange(big, chunk.offset, chunk.size));
      expect(await md5OfRange(chunk.path, 0, chunk.size)).toBe(chunk.checksum);
      expect(chunk.path.startsWith(join(root, 'received_chunks', chunk.node))).toBe(true);
    }
    // Two chunks over two nodes: one each.
    expect(new Set(manifest.chunks.map((c) => c.node))).toEqual(new Set(['a', 'b']));
    // Run records live outside the node folders' parent, so an evenness check over received_chunks/ sees nodes only.
    expect(manifestPath.startsWith(join(root, '.cloud-ingest', 'runs'))).toBe(true);

    const out = join(root, 'rebuilt.bin');
    const report = await reassembleFile({ loaded, manifestPath, key: 'training_data_150mb.bin', outPath: out });
    expect(report.matched).toBe(true);
    expect(report.md5Hex).toBe(await md5OfRange(big, 0, 150 * MIB));
    expect((await stat(out)).size).toBe(150 * MIB);
  });
});

describe('placement', () => {
  const files = { 'a.bin': 5 * MIB + 17, 'b.bin': 3 * MIB, 'c.bin': 700_000, 'd/e.bin': 4 * MIB + 1, 'd/f.bin': 2 * MIB - 5 };

  it('balanced: every healthy node gets chunks and max − min bytes stays within one chunk', async () => {
    const { loaded } = await smallProject(files, { nodes: 3 });
    const { manifest } = await runIngest({ loaded, detection: detection('local') });
    const bytes = manifest.nodes.map((n) => n.bytes);
    expect(manifest.nodes.every((n) => n.chunks > 0)).toBe(true);
    expect(Math.max(...bytes) - Math.min(...bytes)).toBeLessThanOrEqual(MIB);
    expect(bytes.reduce((a, b) => a + b, 0)).toBe(Object.values(files).reduce((a, b) => a + b, 0));
  });

  it('round_robin reproduces the original: chunk i goes to node i mod n', async () => {
    const { loaded } = await smallProject(files, { nodes: 3, placement: 'round_robin' });
    const { manifest } = await runIngest({ loaded, detection: detection('local') });
    manifest.chunks.forEach((chunk, i) => expect(chunk.node).toBe(`node-${(i % 3) + 1}`));
  });

  it('round_robin keeps chunk i on node i mod n while small files go in batches beside multi-chunk files', async () => {
    // Small whole files (copied in batches) between files of several chunks (sent one chunk at a time).
    const mixed: Record<string, number> = {};
    for (let i = 0; i < 120; i++) mixed[`m/${String(i).padStart(3, '0')}.bin`] = i % 30 === 7 ? 3 * MIB + 11 : 1000 + i;
    const { loaded } = await smallProject(mixed, { nodes: 3, placement: 'round_robin' });
    const { manifest } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.status).toBe('complete');
    expect(manifest.chunks).toHaveLength(120 + 4 * 3);
    manifest.chunks.forEach((chunk, i) => expect(chunk.node, chunk.id).toBe(`node-${(i % 3) + 1}`));
  });
});

describe('unhealthy nodes and failures', () => {
  it('an unhealthy node gets nothing and the run still succeeds', async () => {
    const { root, loaded } = await smallProject({ 'x.bin': 3 * MIB }, { nodes: 3 });
    await mkdir(join(root, 'nodes'), { recursive: true });
    await writeFile(join(root, 'nodes', 'node-2'), 'this is a file, not a folder');
    const { manifest } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.status).toBe('complete');
    expect(manifest.nodes.find((n) => n.id === 'node-2')).toMatchObject({ healthy: false, chunks: 0 });
    expect(manifest.chunks.every((c) => c.node !== 'node-2')).toBe(true);
  });

  it('a transient delivery failure is retried and the run succeeds', async () => {
    const { root, loaded } = await smallProject({ 'x.bin': 2 * MIB }, { nodes: 1 });
    // The final name of chunk 0 is taken by a non-empty folder, so the rename fails; the folder is cleared
    // as soon as the engine reports the failure, before its backoff ends.
    const blocker = join(root, 'nodes', 'node-1', chunkSubfolder('x.bin_chunk_0'), `${chunkFileName('x.bin_chunk_0')}.chunk`);
    await mkdir(join(blocker, 'in-the-way'), { recursive: true });
    const events: IngestEvent[] = [];
    const onEvent = (e: IngestEvent): void => {
      events.push(e);
      if (e.type === 'chunk' && e.state === 'retried') rmSync(blocker, { recursive: true, force: true });
    };
    const { manifest } = await runIngest({ loaded, detection: detection('local'), onEvent });
    expect(manifest.status).toBe('complete');
    const chunk0 = manifest.chunks.find((c) => c.index === 0)!;
    expect(chunk0.attempts).toBeGreaterThanOrEqual(2);
    expect(manifest.totals.retries).toBeGreaterThanOrEqual(1);
    expect(events.some((e) => e.type === 'chunk' && e.state === 'retried' && e.id === 'x.bin_chunk_0')).toBe(true);
    expect(await md5OfRange(chunk0.path, 0, chunk0.size)).toBe(chunk0.checksum);
  });

  it('a node that keeps failing is marked unhealthy and its chunk moves to another node', async () => {
    const { root, loaded } = await smallProject({ 'x.bin': 2 * MIB }, { nodes: 2 });
    const blocker = join(root, 'nodes', 'node-1', chunkSubfolder('x.bin_chunk_0'), `${chunkFileName('x.bin_chunk_0')}.chunk`);
    await mkdir(join(blocker, 'in-the-way'), { recursive: true });
    const { manifest } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.status).toBe('complete');
    const chunk0 = manifest.chunks.find((c) => c.index === 0)!;
    expect(chunk0.node).toBe('node-2');
    expect(chunk0.movedFrom).toEqual(['node-1']);
    expect(manifest.totals.replacements).toBe(1);
    expect(manifest.nodes.find((n) => n.id === 'node-1')!.healthy).toBe(false);
  });

  it('no healthy node is a clear error', async () => {
    const { root, loaded } = await smallProject({ 'x.bin': 1000 }, { nodes: 2 });
    await mkdir(join(root, 'nodes'), { recursive: true });
    await writeFile(join(root, 'nodes', 'node-1'), '');
    await writeFile(join(root, 'nodes', 'node-2'), '');
    const run = runIngest({ loaded, detection: detection('local') });
    await expect(run).rejects.toBeInstanceOf(NoHealthyNodeError);
    await expect(runIngest({ loaded, detection: detection('local') })).rejects.toThrow(/No healthy node[\s\S]*node-1 .*is not a folder/);
  });
});

describe('replicas', () => {
  it('replicas: 2 puts each chunk on two distinct nodes, read once; any good copy reassembles', async () => {
    const { root, loaded, data } = await smallProject({ 'r.bin': 5 * MIB + 1 }, { nodes: 3, extraIngestion: '  replicas: 2\n' });
    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.status).toBe('complete');
    for (const chunk of manifest.chunks) {
      expect(new Set(chunk.copies.map((c) => c.nodeId)).size).toBe(2);
      for (const copy of chunk.copies) expect(await md5OfRange(copy.location, 0, chunk.size)).toBe(chunk.checksum);
    }
    expect((await verifyRun({ loaded, manifestPath })).problems).toEqual([]);
    await rm(join(root, 'nodes', 'node-1'), { recursive: true });
    const report = await reassembleFile({ loaded, manifestPath, key: 'r.bin', outPath: join(root, 'r.out') });
    expect(report.matched).toBe(true);
    expect(await readFile(join(root, 'r.out'))).toEqual(await readFile(join(data, 'r.bin')));
  });

  it('a bad copy read first, longer than its chunk, leaves nothing behind in the reassembled file', async () => {
    const { root, loaded, data } = await smallProject({ 'r.bin': 3 * MIB + 5 }, { nodes: 2, extraIngestion: '  replicas: 2\n' });
    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local') });
    // Every chunk's first copy (the one reassemble tries first) now holds other bytes, and more of them.
    for (const chunk of manifest.chunks) await writeFile(chunk.copies[0]!.location, Buffer.alloc(chunk.size + MIB, 0xee));
    const out = join(root, 'r.out');
    const report = await reassembleFile({ loaded, manifestPath, key: 'r.bin', outPath: out });
    expect(report.matched).toBe(true);
    const [rebuilt, original] = await Promise.all([readFile(out), readFile(join(data, 'r.bin'))]);
    expect(rebuilt.length).toBe(original.length);
    expect(rebuilt.equals(original)).toBe(true);
  });
});

describe('reassemble', () => {
  it('a first copy cut short is passed over for the next, and the rebuilt file is byte-exact', async () => {
    const { root, loaded, data } = await smallProject({ 'r.bin': 5 * MIB + 5 }, { nodes: 2, extraIngestion: '  replicas: 2\n' });
    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local') });
    for (const chunk of manifest.chunks) await truncate(chunk.copies[0]!.location, chunk.size - 100);
    const out = join(root, 'r.out');
    const progress: ReassembleProgress[] = [];
    const report = await reassembleFile({ loaded, manifestPath, key: 'r.bin', outPath: out, onProgress: (p) => progress.push(p) });
    expect(report.matched).toBe(true);
    expect((await readFile(out)).equals(await readFile(join(data, 'r.bin')))).toBe(true);
    // Progress: the bytes written (a short copy's bytes not counted twice), then the bytes checked, each rising to the size.
    const size = 5 * MIB + 5;
    const phases = progress.map((p) => p.phase);
    expect(phases.indexOf('checking')).toBe(phases.lastIndexOf('writing') + 1);
    for (const phase of ['writing', 'checking'] as const) {
      const bytes = progress.filter((p) => p.phase === phase).map((p) => p.bytes);
      expect(bytes.length).toBeGreaterThan(1);
      expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
      expect(bytes.at(-1)).toBe(size);
    }
    expect(progress.every((p) => p.total === size && p.bytes <= size)).toBe(true);
    // With every copy cut short there is no good one: the error names each copy, and no output is left.
    for (const chunk of manifest.chunks) await truncate(chunk.copies[1]!.location, 10);
    const failed = reassembleFile({ loaded, manifestPath, key: 'r.bin', outPath: join(root, 'r2.out') });
    await expect(failed).rejects.toThrow(/No good copy of r\.bin_chunk_0: node-\d: holds fewer than the chunk's \d+ bytes; node-\d: holds fewer/);
    expect((await readdir(root)).filter((name) => name.includes('r2.out'))).toEqual([]);
    // Copies that hold the chunk's bytes and more are not the chunk either, though what the chunk's length covers matches.
    const original = await readFile(join(data, 'r.bin'));
    for (const chunk of manifest.chunks) {
      const extended = Buffer.concat([original.subarray(chunk.offset, chunk.offset + chunk.size), Buffer.alloc(10, 1)]);
      for (const copy of chunk.copies) await writeFile(copy.location, extended);
    }
    const longer = reassembleFile({ loaded, manifestPath, key: 'r.bin', outPath: join(root, 'r3.out') });
    await expect(longer).rejects.toThrow(/No good copy of r\.bin_chunk_0: node-\d: holds 1048586 bytes, not the chunk's 1048576; node-\d: holds 1048586 bytes/);
  });
});

describe('keys, files and re-runs', () => {
  it('hostile file names stay inside the node folders and reassemble byte-exact', async () => {
    const names = ['..x', ' lead space', '-rf', 'uni✓code ünï.bin', 'new\nline', 'back\\slash', '%41', 'dir/..y'];
    const { root, loaded, data } = await smallProject(Object.fromEntries(names.map((n, i) => [n, 1000 + i])), { nodes: 2 });
    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.files.map((f) => f.key).sort()).toEqual([...names].sort());
    const nodeFiles = await filesUnder(join(root, 'nodes'));
    for (const file of nodeFiles) expect(relative(join(root, 'nodes'), file).startsWith('..')).toBe(false);
    expect(nodeFiles.filter((f) => f.endsWith('.chunk'))).toHaveLength(names.length);
    const outDir = await tempDir('ci-out-');
    for (const [i, name] of names.entries()) {
      const report = await reassembleFile({ loaded, manifestPath, key: name, outPath: join(outDir, `f${i}`) });
      expect(report.matched).toBe(true);
      expect(await readFile(join(outDir, `f${i}`))).toEqual(await readFile(join(data, name)));
    }
  });

  it('a zero-byte file has no chunks, is recorded, and reassembles to an empty file', async () => {
    const { root, loaded } = await smallProject({ 'empty.bin': 0, 'one.bin': 10 }, { nodes: 2 });
    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.files.find((f) => f.key === 'empty.bin')).toMatchObject({ size: 0, chunkCount: 0, checksum: 'd41d8cd98f00b204e9800998ecf8427e', status: 'complete' });
    expect(manifest.chunks.filter((c) => c.file === 'empty.bin')).toEqual([]);
    const report = await reassembleFile({ loaded, manifestPath, key: 'empty.bin', outPath: join(root, 'empty.out') });
    expect(report).toMatchObject({ matched: true, bytes: 0 });
    expect((await stat(join(root, 'empty.out'))).size).toBe(0);
  });

  it('the file pattern really filters, and symlinks cannot escape the source folder', async () => {
    const { loaded, data } = await smallProject({ 'keep/a.bin': 100, 'keep/b.txt': 100, 'c.bin': 100 }, { nodes: 1 });
    const outside = await tempDir('ci-outside-');
    await writeFile(join(outside, 'secret.bin'), 'not yours');
    await symlink(join(outside, 'secret.bin'), join(data, 'escape.bin'));
    await symlink(data, join(data, 'keep', 'loop')); // a directory loop
    const all = await runIngest({ loaded, detection: detection('local') });
    expect(all.manifest.files.map((f) => f.key)).toEqual(['c.bin', 'keep/a.bin', 'keep/b.txt']);
    const bins = await runIngest({ loaded, detection: detection('local'), pattern: '*.bin' });
    expect(bins.manifest.files.map((f) => f.key)).toEqual(['c.bin', 'keep/a.bin']);
    const nested = await runIngest({ loaded, detection: detection('local'), pattern: 'keep/**' });
    expect(nested.manifest.files.map((f) => f.key)).toEqual(['keep/a.bin', 'keep/b.txt']);
  });

  it('verify hashes folder copies where they lie: no chunk bytes pile up on the engine thread', async () => {
    const { loaded } = await smallProject({ 'v.bin': 96 * MIB }, { nodes: 2, chunkMb: 8 });
    const { manifestPath } = await runIngest({ loaded, detection: detection('local') });
    const before = process.memoryUsage().arrayBuffers;
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, process.memoryUsage().arrayBuffers - before)), 2);
    const report = await verifyRun({ loaded, manifestPath }).finally(() => clearInterval(sampler));
    expect(report).toMatchObject({ checked: 12, ok: 12, problems: [] });
    // Streamed here, each copy's MiB reads were new buffers: ~40 MB of them before a collection. Now ~6 MB (the
    // hashing threads' shared blocks and the manifest's reads count here too).
    expect(most).toBeLessThan(16 * MIB);
  });

  it('ingesting the same data again skips chunks already present, and verify catches a damaged chunk', async () => {
    const { loaded } = await smallProject({ 'a.bin': 3 * MIB }, { nodes: 2 });
    const first = await runIngest({ loaded, detection: detection('local') });
    expect(first.manifest.totals.skipped).toBe(0);
    const second = await runIngest({ loaded, detection: detection('local') });
    expect(second.manifest.totals.skipped).toBe(3);
    expect(second.manifest.chunks.map((c) => [c.id, c.node, c.checksum])).toEqual(first.manifest.chunks.map((c) => [c.id, c.node, c.checksum]));
    expect((await verifyRun({ loaded, manifestPath: second.manifestPath })).problems).toEqual([]);

    const victim = second.manifest.chunks[1]!;
    const bytes = await readFile(victim.path);
    bytes[12345] = bytes[12345]! ^ 0xff;
    await writeFile(victim.path, bytes);
    const report = await verifyRun({ loaded, manifestPath: second.manifestPath });
    expect(report.problems).toEqual([expect.objectContaining({ chunkId: victim.id, nodeId: victim.node, reason: 'checksum_mismatch' })]);
    expect(report.unrecoverable).toEqual([victim.id]);
  });
});

describe('folder node housekeeping', () => {
  it('removes temp files a killed writer abandoned, and keeps fresh ones', async () => {
    const { root, loaded } = await smallProject({ 'x.bin': 100 }, { nodes: 1 });
    const node = join(root, 'nodes', 'node-1');
    await mkdir(join(node, '.tmp', '3f'), { recursive: true });
    const anHourAgo = new Date(Date.now() - 3600_000);
    // Temps are in .tmp/<sub>/; a version before the subfolders left them in .tmp/ itself.
    for (const old of ['.tmp/3f/old.part', '.tmp/older.part']) {
      await writeFile(join(node, old), 'left by a killed run');
      await utimes(join(node, old), anHourAgo, anHourAgo);
    }
    await writeFile(join(node, '.tmp/3f/fresh.part'), 'another run is writing this');
    await runIngest({ loaded, detection: detection('local') });
    expect(await folderTemps(node)).toEqual(['.tmp/3f/fresh.part']);
  });
});
