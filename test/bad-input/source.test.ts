// Bad sources: a missing data folder, an empty one, hostile file names and keys, symlink loops, 100,000 tiny
// files, and files that grow or shrink while they are read. User-facing runs go through the CLI as a child;
// every one exits with the documented code, prints no stack trace and writes only into node and manifest folders.
import { appendFileSync, closeSync, openSync, truncateSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../electron/engine/config.ts';
import { INDEX_DIR, INDEX_FILE } from '../../electron/engine/nodes/folder-index.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { readManifest } from '../../electron/engine/manifest.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import type { DetectionResult, Manifest } from '../../shared/types.ts';
import { startGcs } from '../helpers/emulators.ts';
import { md5OfFile, MiB } from '../faults/harness.ts';
import { badProject, cli, defaultYaml, EXIT, expectCleanExit, removeBadProjects, tree, writtenOutside } from './helpers.ts';
import type { BadProject } from './helpers.ts';

afterAll(removeBadProjects);

const LOCAL: DetectionResult = { cloud: 'local', signal: 'flag', detail: '--cloud local (test)', elapsedMs: 0, probes: [] };
const NODE_DIRS = ['nodes', 'manifests'];

async function runJson(p: BadProject, extra: string[] = [], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; nodeArgs?: string[] } = {}) {
  const r = await cli(['run', '--config', p.configPath, '--cloud', 'local', '--json', ...extra], { cwd: p.root, ...o });
  return { ...r, summary: r.code === 0 || r.code === 1 ? (JSON.parse(r.stdout) as { runId: string; status: string; manifest: string; files: number; chunks: number }) : undefined };
}

/**
 * Every chunk file on the nodes sits in a node folder's own layout: one of its 256 two-hex-digit subfolders (or,
 * for older folders, the node folder itself); no key made a path of its own.
 */
async function chunkFilesStayFlat(root: string): Promise<void> {
  for (const node of await readdir(join(root, 'nodes'))) {
    for (const entry of await readdir(join(root, 'nodes', node), { withFileTypes: true })) {
      if (!entry.isDirectory()) {
        expect(entry.name).toMatch(/\.chunk(\.json)?$/);
        continue;
      }
      // The node's own folders: temp names while writing, its index of chunks (one file), the chunk subfolders.
      if (['.tmp', INDEX_DIR].includes(entry.name)) continue;
      expect(entry.name).toMatch(/^[0-9a-f]{2}$/);
      for (const inside of await readdir(join(root, 'nodes', node, entry.name), { withFileTypes: true })) {
        expect(inside.isFile()).toBe(true);
        expect(inside.name).toMatch(/\.chunk$/);
      }
    }
    const index = await readdir(join(root, 'nodes', node, INDEX_DIR)).catch(() => []);
    expect(index.every((name) => name === INDEX_FILE)).toBe(true);
  }
}

describe('missing and empty sources', () => {
  it('a data folder that does not exist: exit 4, names the folder and the fix, writes nothing', async () => {
    const p = await badProject(defaultYaml({ source: '  local: { type: local, path: ./no-such-folder }' }));
    const before = await tree(p.root);
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root });
    expectCleanExit(r, EXIT.source);
    expect(r.stderr).toContain(join(p.root, 'no-such-folder'));
    expect(r.stderr).toMatch(/Hint: .*(create it|point)/);
    // Probing may create the node folders; nothing else may appear.
    expect(await writtenOutside(p.root, before, NODE_DIRS)).toEqual([]);
  });

  it('a data path that is a file, not a folder: exit 4 with the same clear message', async () => {
    const p = await badProject(defaultYaml({ source: '  local: { type: local, path: ./data/file.bin }' }));
    await writeFile(join(p.data, 'file.bin'), 'x');
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root });
    expectCleanExit(r, EXIT.source);
    expect(r.stderr).toMatch(/does not exist or is not a folder/);
  });

  it('an empty source: a complete run of zero files, exit 0', async () => {
    const p = await badProject();
    const before = await tree(p.root);
    const r = await runJson(p);
    expectCleanExit(r, EXIT.ok);
    expect(r.summary).toMatchObject({ status: 'complete', files: 0, chunks: 0 });
    const manifest = await readManifest(r.summary!.manifest);
    expect(manifest.files).toEqual([]);
    expect(await writtenOutside(p.root, before, NODE_DIRS)).toEqual([]);
    // verify of an empty run is clean too.
    expectCleanExit(await cli(['verify', '--config', p.configPath], { cwd: p.root }), EXIT.ok);
  });

  it('a pattern that matches nothing is an empty run, not an error', async () => {
    const p = await badProject();
    await writeFile(join(p.data, 'a.bin'), 'bytes');
    const r = await runJson(p, ['--pattern', '*.parquet']);
    expectCleanExit(r, EXIT.ok);
    expect(r.summary).toMatchObject({ status: 'complete', files: 0 });
  });
});

describe('hostile names', () => {
  const NAMES = [
    'with space.bin',
    'ünïcødé-数据-🚀.bin',
    'new\nline.bin',
    '-rf.bin',
    '--help.bin',
    '..dots..bin',
    '...',
    'back\\slash\\..\\escape.bin',
    'nested/-dash/--x.bin',
    'tab\tand%25percent.bin',
    `${'long-'.repeat(48)}.bin`,
  ];

  it('file names with spaces, unicode, newlines, leading dashes, dots and backslashes: stored flat, reassembled exact', async () => {
    const p = await badProject(defaultYaml({ chunkMb: 0.25 }));
    const md5 = new Map<string, string>();
    for (const [i, name] of NAMES.entries()) {
      const path = join(p.data, ...name.split('/'));
      await ensureDataFile(path, 100_000 + i * 37_000, name);
      md5.set(name, await md5OfFile(path));
    }
    const before = await tree(p.root);
    const r = await runJson(p);
    expectCleanExit(r, EXIT.ok);
    const manifest = await readManifest(r.summary!.manifest);
    expect(manifest.files.map((f) => f.key).sort()).toEqual([...NAMES].sort());
    await chunkFilesStayFlat(p.root);
    const out = join(p.root, 'nodes', 'rebuilt'); // inside an allowed folder, so the tree check stays strict
    for (const [i, name] of NAMES.entries()) {
      // `--file=KEY` carries a key that starts with dashes; the key may hold a newline.
      const target = join(out, `file-${i}`);
      const rr = await cli(['reassemble', '--config', p.configPath, `--file=${name}`, '--out', target], { cwd: p.root });
      expectCleanExit(rr, EXIT.ok);
      expect(await md5OfFile(target), name).toBe(md5.get(name));
    }
    expect(await writtenOutside(p.root, before, NODE_DIRS)).toEqual([]);
  });

  it('a key starting with a dash is taken as the value of the option before it, as GNU getopt does', async () => {
    const p = await badProject();
    await writeFile(join(p.data, '-rf.bin'), 'x');
    expectCleanExit(await runJson(p), EXIT.ok);
    const out = join(p.root, 'nodes', 'x');
    const r = await cli(['reassemble', '--config', p.configPath, '--file', '-rf.bin', '--out', out], { cwd: p.root });
    expectCleanExit(r, EXIT.ok);
    expect(await readFile(out, 'utf8')).toBe('x');
  });

  // Keys with `..` segments cannot be made here: gcp-storage-emulator drops the connection, Azurite refuses the
  // name and s3rver stores them outside its own bucket folder. Agent tests send such chunk ids straight to an agent.
  it('object keys that look absolute, percent-encoded dots, backslash paths (GCS emulator) never leave the node folders', async () => {
    const gcs = await startGcs();
    try {
      const bucket = 'hostile-keys';
      await gcs.createBucket(bucket);
      const keys = ['/abs/path.bin', '//etc/passwd', 'C:\\Windows\\system.ini', '\\\\server\\share\\x.bin', './dot.bin', '%2e%2e%2fescape.bin', '..%2F..%2Fescape.bin', '...', '.../x', 'a/./b.bin'];
      const bodies = new Map(keys.map((k, i) => [k, Buffer.from(`${k} `.repeat(1000 + i * 500))]));
      for (const [k, body] of bodies) await gcs.put(bucket, k, body);
      const p = await badProject(defaultYaml({ chunkMb: 0.005, source: `  gcp: { type: gcs, bucket: ${bucket} }` }));
      const before = await tree(p.root);
      const r = await cli(['run', '--config', p.configPath, '--cloud', 'gcp', '--json'], { cwd: p.root, env: gcs.env });
      expectCleanExit(r, EXIT.ok);
      const summary = JSON.parse(r.stdout) as { manifest: string };
      const manifest = await readManifest(summary.manifest);
      expect(manifest.files.map((f) => f.key).sort()).toEqual([...keys].sort());
      await chunkFilesStayFlat(p.root);
      expect(await writtenOutside(p.root, before, NODE_DIRS)).toEqual([]);
      const loaded = await loadConfig(p.configPath);
      for (const [i, key] of keys.entries()) {
        const outPath = join(p.root, 'nodes', 'rebuilt', `k${i}`);
        const report = await reassembleFile({ loaded, manifestPath: summary.manifest, key, outPath });
        expect(report.matched).toBe(true);
        expect(await readFile(outPath)).toEqual(bodies.get(key));
      }
    } finally {
      await gcs.stop();
    }
  });
});

describe('odd trees', () => {
  it('symlink loops (to the folder itself, to a parent, between two links) are skipped, each file once', async () => {
    const p = await badProject();
    await mkdir(join(p.data, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(p.data, 'real.bin'), 'real bytes');
    await writeFile(join(p.data, 'sub', 'deeper', 'leaf.bin'), 'leaf bytes');
    await symlink('.', join(p.data, 'self'));
    await symlink('..', join(p.data, 'sub', 'deeper', 'up'));
    await symlink('loop-b', join(p.data, 'loop-a'));
    await symlink('loop-a', join(p.data, 'loop-b'));
    await symlink(p.root, join(p.data, 'outside'));
    const before = await tree(p.root);
    const r = await runJson(p);
    expectCleanExit(r, EXIT.ok);
    const manifest = await readManifest(r.summary!.manifest);
    expect(manifest.files.map((f) => f.key).sort()).toEqual(['real.bin', 'sub/deeper/leaf.bin']);
    expect(await writtenOutside(p.root, before, NODE_DIRS)).toEqual([]);
  });

  it('100,000 tiny files in one run: every one in the manifest, within a 96 MiB heap', async () => {
    const p = await badProject(defaultYaml().replace('max_concurrent_chunks: 4', 'max_concurrent_chunks: 16'));
    const sizes: number[] = [];
    for (let d = 0; d < 100; d++) {
      await mkdir(join(p.data, `d${d}`));
      await Promise.all(
        Array.from({ length: 1000 }, (_, i) => {
          const n = d * 1000 + i;
          sizes.push(n % 23);
          return writeFile(join(p.data, `d${d}`, `f${i}.txt`), 'abcdefghijklmnopqrstuvw'.slice(0, n % 23));
        }),
      );
    }
    // The heap cap is the memory check: a run that held per-file data it should stream would die here.
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local', '--json'], { cwd: p.root, timeoutMs: 600_000, env: { NODE_OPTIONS: '--max-old-space-size=96' } });
    expectCleanExit(r, EXIT.ok);
    const summary = JSON.parse(r.stdout) as { manifest: string; files: number; chunks: number; status: string };
    const nonEmpty = sizes.filter((s) => s > 0).length;
    expect(summary).toMatchObject({ status: 'complete', files: 100_000, chunks: nonEmpty });
    const manifest: Manifest = await readManifest(summary.manifest);
    expect(manifest.files).toHaveLength(100_000);
    expect(manifest.files.every((f) => f.status === 'complete')).toBe(true);
    expect(new Set(manifest.chunks.map((c) => c.id)).size).toBe(nonEmpty);
    const loaded = await loadConfig(p.configPath);
    for (const key of ['d0/f1.txt', 'd57/f999.txt', 'd99/f0.txt']) {
      const outPath = join(p.root, 'nodes', 'rebuilt', key);
      const report = await reassembleFile({ loaded, manifestPath: summary.manifest, key, outPath });
      expect(report.matched).toBe(true);
      expect(await readFile(outPath)).toEqual(await readFile(join(p.data, key)));
    }
  }, 900_000);
});

/** New bytes over the start (already delivered) and the middle (not yet read) of the file. */
function rewriteInPlace(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(MiB, 0x55), 0, MiB, 0);
    writeSync(fd, Buffer.alloc(MiB, 0x55), 0, MiB, 8 * MiB);
  } finally {
    closeSync(fd);
  }
}

describe('files that change while they are ingested', () => {
  it.each([
    ['grows', (path: string) => appendFileSync(path, Buffer.alloc(MiB, 7))],
    ['shrinks', (path: string) => truncateSync(path, 5 * MiB + 3)],
    ['is rewritten in place (same size, same inode)', (path: string) => rewriteInPlace(path)],
  ])('a file that %s mid-read is never stitched from two versions', async (_what, change) => {
    const p = await badProject(defaultYaml().replace('max_concurrent_chunks: 4', 'max_concurrent_chunks: 1'));
    const path = join(p.data, 'moving.bin');
    await ensureDataFile(path, 12 * MiB, 'moving');
    await ensureDataFile(join(p.data, 'still.bin'), 3 * MiB, 'still');
    const loaded = await loadConfig(p.configPath);
    let changed = false;
    const { manifest, manifestPath } = await runIngest({
      loaded,
      detection: LOCAL,
      onEvent: (e) => {
        if (!changed && e.type === 'chunk' && e.state === 'verified' && e.id === 'moving.bin_chunk_2') {
          changed = true;
          change(path);
        }
      },
    });
    expect(changed).toBe(true);
    const file = manifest.files.find((f) => f.key === 'moving.bin')!;
    const outPath = join(p.root, 'nodes', 'rebuilt.bin');
    if (file.status === 'failed') {
      // Detected: a clear error, and no reassembly that pretends to be the file.
      expect(file.error).toMatch(/chang|modif|grew|shr[ua]nk|differ/i);
      await expect(reassembleFile({ loaded, manifestPath, key: 'moving.bin', outPath })).rejects.toThrow(/moving\.bin/);
    } else {
      // Re-read: then the result is exactly the file as it is now.
      const report = await reassembleFile({ loaded, manifestPath, key: 'moving.bin', outPath });
      expect(report.matched).toBe(true);
      expect(await md5OfFile(outPath)).toBe(await md5OfFile(path));
    }
    // The file nobody touched is complete either way.
    expect(manifest.files.find((f) => f.key === 'still.bin')?.status).toBe('complete');
  });
});
