// Hostile object keys end to end (listing, chunk and shard names, folder nodes, manifest, verify, reassemble): a bad
// key fails only itself, with a message naming it, and never aliases another file's bytes.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../electron/engine/config.ts';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { readManifest } from '../../electron/engine/manifest.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { DetectionResult, IngestEvent } from '../../shared/types.ts';

const LOCAL: DetectionResult = { cloud: 'local', signal: 'flag', detail: '--cloud local (test)', elapsedMs: 0, probes: [] };
const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');
const roots: string[] = [];

afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

interface Project {
  root: string;
  data: string;
  loaded: LoadedConfig;
}

/** A project reading `data/` into two folder nodes, chunks of ~10 KB, files under 5 KB packed when `pack`. */
async function project(pack: boolean): Promise<Project> {
  const root = await mkdtemp(join(tmpdir(), 'ci-hostile-keys-'));
  roots.push(root);
  await mkdir(join(root, 'data'));
  const yaml = [
    'data_sources:',
    '  local: { type: local, path: ./data }',
    'ingestion:',
    '  chunk_size_mb: 0.01',
    ...(pack ? ['  pack_below_mb: 0.005'] : []),
    '  max_concurrent_chunks: 4',
    '  retry_attempts: 1',
    '  retry_delay_seconds: 0.05',
    '  manifest_dir: ./manifests',
    'use_local_simulation: false',
    'nodes:',
    '  - { id: n1, path: ./nodes/n1 }',
    '  - { id: n2, path: ./nodes/n2 }',
    '',
  ].join('\n');
  await writeFile(join(root, 'config.yml'), yaml);
  return { root, data: join(root, 'data'), loaded: await loadConfig(join(root, 'config.yml')) };
}

/** Bytes of their own for each name, so a file stored over another's shows as the other's bytes. */
function bytesFor(name: string, size: number): Buffer {
  const seed = createHash('sha256').update(name).digest();
  return Buffer.from(Array.from({ length: size }, (_, i) => seed[i % seed.length]! ^ (i & 0xff)));
}

/** A path under `dir` whose last part is these raw bytes (a name that need not be valid UTF-8). */
function rawPath(dir: string, name: number[]): Buffer {
  return Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(name)]);
}

async function everyPath(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true })).map(String);
}

describe('local file names that are not valid UTF-8', () => {
  for (const pack of [false, true]) {
    it(`each fails alone, named with its bytes; the files beside them are complete and exact${pack ? ' (packed run)' : ''}`, async () => {
      const p = await project(pack);
      const good = new Map<string, Buffer>([
        ['big.bin', bytesFor('big.bin', 30_000)],
        ['small-1.txt', bytesFor('small-1.txt', 900)],
        ['small-2.txt', bytesFor('small-2.txt', 1_100)],
        ['zz.txt', bytesFor('zz.txt', 700)],
      ]);
      for (const [key, bytes] of good) await writeFile(join(p.data, key), bytes);
      // `bad\xff.bin` and `bad\xfe.bin` both read as `bad\uFFFD.bin`; `empty\xff` has no bytes; `dir\xfe/` is a folder.
      await writeFile(rawPath(p.data, [...Buffer.from('bad'), 0xff, ...Buffer.from('.bin')]), bytesFor('ff', 1_000));
      await writeFile(rawPath(p.data, [...Buffer.from('bad'), 0xfe, ...Buffer.from('.bin')]), bytesFor('fe', 1_200));
      await writeFile(rawPath(p.data, [...Buffer.from('empty'), 0xff]), Buffer.alloc(0));
      const folder = rawPath(p.data, [...Buffer.from('dir'), 0xfe]);
      await mkdir(folder);
      await writeFile(Buffer.concat([folder, Buffer.from('/inside.bin')]), bytesFor('inside', 800));

      const before = await everyPath(p.root);
      const events: IngestEvent[] = [];
      const { manifest, manifestPath } = await runIngest({ loaded: p.loaded, detection: LOCAL, onEvent: (e) => events.push(e) });
      expect(manifest.status).toBe('partial');
      const files = (await readManifest(manifestPath)).files;
      const failed = files.filter((f) => f.status === 'failed');
      expect(failed.map((f) => f.key).sort()).toEqual(['bad\uFFFD.bin', 'dir\uFFFD', 'empty\uFFFD']);
      for (const file of failed) {
        expect(file.error).toMatch(/not valid UTF-8/);
        expect(file.error).toMatch(/\\x(ff|fe)/);
      }
      expect(failed.find((f) => f.key === 'bad\uFFFD.bin')!.error).toContain('bad\\xfe.bin');
      expect(events.filter((e) => e.type === 'file' && e.status === 'failed').map((e) => (e as { key: string }).key).sort()).toEqual(['bad\uFFFD.bin', 'dir\uFFFD', 'empty\uFFFD']);

      // The others: complete, each from its own bytes (packed beside the bad ones, not failed with them).
      expect(files.filter((f) => f.status === 'complete').map((f) => f.key).sort()).toEqual([...good.keys()].sort());
      if (pack) expect(files.filter((f) => f.packed).map((f) => f.key).sort()).toEqual(['small-1.txt', 'small-2.txt', 'zz.txt']);
      for (const [i, [key, bytes]] of [...good].entries()) {
        const outPath = join(p.root, 'nodes', 'out', `f${i}`);
        const report = await reassembleFile({ loaded: p.loaded, manifestPath, key, outPath });
        expect(report.matched, key).toBe(true);
        expect(md5(await readFile(outPath)), key).toBe(md5(bytes));
      }
      expect((await verifyRun({ loaded: p.loaded, manifestPath })).problems).toEqual([]);
      const outside = (await everyPath(p.root)).filter((path) => !before.includes(path) && !/^(nodes|manifests)(\/|$)/.test(path));
      expect(outside).toEqual([]);
    });
  }
});

describe('a key equal to the id of a shard the run packs', () => {
  it('reassembles from its own chunks, never from the shard that shares its name', async () => {
    const p = await project(true);
    const small = new Map(Array.from({ length: 5 }, (_, i): [string, Buffer] => [`s${i}.txt`, bytesFor(`s${i}`, 500 + i)]));
    for (const [key, bytes] of small) await writeFile(join(p.data, key), bytes);
    const first = await runIngest({ loaded: p.loaded, detection: LOCAL });
    const shardId = first.manifest.chunks.length === 1 ? (await readManifest(first.manifestPath)).chunks[0]!.id : '';
    expect(shardId).toMatch(/^shard-000000-[0-9a-f]{12}\.tar$/);
    // A bucket that holds the shards made from its own files: the same files pack into the same shard again.
    const big = bytesFor('big', 25_000);
    await writeFile(join(p.data, shardId), big);

    const { manifestPath } = await runIngest({ loaded: p.loaded, detection: LOCAL });
    const manifest = await readManifest(manifestPath);
    expect(manifest.status).toBe('complete');
    expect(manifest.chunks.map((c) => c.id)).toContain(shardId);
    expect(manifest.files.find((f) => f.key === shardId)).toMatchObject({ chunkCount: 3, status: 'complete' });
    const outPath = join(p.root, 'nodes', 'out', 'big');
    const report = await reassembleFile({ loaded: p.loaded, manifestPath, key: shardId, outPath });
    expect(report.matched).toBe(true);
    expect(md5(await readFile(outPath))).toBe(md5(big));
    for (const [key, bytes] of small) {
      const out = join(p.root, 'nodes', 'out', key);
      expect((await reassembleFile({ loaded: p.loaded, manifestPath, key, outPath: out })).matched).toBe(true);
      expect(md5(await readFile(out))).toBe(md5(bytes));
    }
  });
});
