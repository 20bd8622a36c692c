// `cloud-ingest reassemble` through the real CLI: it writes only to a new path (or, with --force, over an existing
// regular file), never replaces a folder, a link or a device; it refuses a manifest whose offsets and sizes do not
// add up, naming the manifest and the chunk; and the checksum it reports is that of the file as written.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import type { Manifest } from '../../shared/types.ts';
import { badProject, cli, defaultYaml, EXIT, expectCleanExit, removeBadProjects } from '../bad-input/helpers.ts';
import type { BadProject } from '../bad-input/helpers.ts';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { cleanupAgents, CLI, spawnAgent } from '../helpers/agents.ts';

const MiB = 1024 * 1024;
const BIG = 'big.bin';
const BIG_SIZE = 2 * MiB + MiB / 2 + 7;

let p: BadProject;
let manifestPath: string;
let manifest: Manifest;
let bigBytes: Buffer;

beforeAll(async () => {
  p = await badProject(defaultYaml({ chunkMb: 1 }));
  await ensureDataFile(join(p.data, BIG), BIG_SIZE, BIG);
  await ensureDataFile(join(p.data, 'small.bin'), 1000, 'small.bin');
  bigBytes = await readFile(join(p.data, BIG));
  const run = await cli(['run', '--config', p.configPath, '--cloud', 'local', '--json'], { cwd: p.root });
  expectCleanExit(run, EXIT.ok);
  manifestPath = (JSON.parse(run.stdout) as { manifest: string }).manifest;
  manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  expect(manifest.chunks.filter((c) => c.file === BIG)).toHaveLength(3);
});

afterAll(async () => {
  await removeBadProjects();
  await cleanupAgents();
});

const md5 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');

function reassemble(out: string, ...extra: string[]) {
  return cli(['reassemble', '--config', p.configPath, '--manifest', manifestPath, '--file', BIG, '--out', out, ...extra], { cwd: p.root });
}

/** Reassembles BIG into `dir` under a 1 MiB file-size limit: the rebuild ends naming the output, and leaves nothing. */
async function expectOutputWriteFailure(project: BadProject, manifest: string, dir: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const out = join(dir, BIG);
  // ulimit -f counts 512-byte blocks in sh: the kernel refuses any write past 1 MiB, which Node reports as EFBIG.
  const args = [...ENGINE_NODE_FLAGS, CLI, 'reassemble', '--config', project.configPath, '--manifest', manifest, '--file', BIG, '--out', out];
  const r = spawnSync('sh', ['-c', 'ulimit -f 2048 && exec "$@"', 'sh', process.execPath, ...args], { cwd: project.root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  expectCleanExit({ code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, EXIT.incomplete);
  expect(r.stderr).toContain(`writing ${out} failed: EFBIG: file too large`);
  expect(r.stderr).toContain(`Nothing was left at ${out}. Fix:`);
  expect(r.stderr).not.toMatch(/no good copy|damaged|holds fewer/i);
  expect(await readdir(dir)).toEqual([]);
}

let outCount = 0;
async function outDir(): Promise<string> {
  const dir = join(p.root, `out-${++outCount}`);
  await mkdir(dir);
  return dir;
}

describe('reassemble: where it writes', () => {
  it('rebuilds into a new path and prints the checksum and plain MD5 of the file as written', async () => {
    const out = join(await outDir(), 'new', 'big.bin');
    const r = await reassemble(out);
    expectCleanExit(r, EXIT.ok);
    const written = await readFile(out);
    expect(written.equals(bigBytes)).toBe(true);
    const file = manifest.files.find((f) => f.key === BIG)!;
    expect(r.stdout).toMatch(new RegExp(`^ok: ${BIG} → `));
    expect(r.stdout).toContain(`checksum: ${file.checksum} (manifest ${file.checksum})`);
    expect(r.stdout).toContain(`md5: ${md5(written)}`);
  });

  it('refuses to replace an existing file without --force: exit 2, names the path and the fix, the file is untouched', async () => {
    const out = join(await outDir(), 'notes.txt');
    await writeFile(out, 'somebody else’s notes\n');
    const r = await reassemble(out);
    expectCleanExit(r, EXIT.usage);
    expect(r.stderr).toContain(out);
    expect(r.stderr).toContain('--force');
    expect(await readFile(out, 'utf8')).toBe('somebody else’s notes\n');
  });

  it('replaces an existing regular file with --force, keeping its permissions', async () => {
    const out = join(await outDir(), 'previous.bin');
    await writeFile(out, 'an older rebuild', { mode: 0o640 });
    const r = await reassemble(out, '--force');
    expectCleanExit(r, EXIT.ok);
    expect((await readFile(out)).equals(bigBytes)).toBe(true);
    expect((await stat(out)).mode & 0o777).toBe(0o640);
  });

  it('never replaces a folder, a symbolic link (nor writes through it) or a FIFO, even with --force', async () => {
    const dir = await outDir();
    const folder = join(dir, 'folder');
    await mkdir(folder);
    await writeFile(join(folder, 'inside.txt'), 'kept');
    const target = join(dir, 'target.txt');
    await writeFile(target, 'the link target');
    const link = join(dir, 'link.bin');
    await symlink(target, link);
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);

    for (const [out, kind] of [[folder, /folder/], [link, /symbolic link/], [fifo, /FIFO/]] as const) {
      for (const extra of [[], ['--force']]) {
        const r = await reassemble(out, ...extra);
        expectCleanExit(r, EXIT.usage);
        expect(r.stderr).toContain(out);
        expect(r.stderr).toMatch(kind);
        expect(r.stderr).toMatch(/Fix:/);
      }
    }
    expect((await lstat(folder)).isDirectory()).toBe(true);
    expect(await readFile(join(folder, 'inside.txt'), 'utf8')).toBe('kept');
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readlink(link)).toBe(target);
    expect(await readFile(target, 'utf8')).toBe('the link target');
    expect((await lstat(fifo)).isFIFO()).toBe(true);
  });

  it.runIf(process.getuid?.() === 0)('as root, a character device (made like /dev/null: mknod c 1 3) stays a device, even with --force', async () => {
    const device = join(await outDir(), 'null');
    execFileSync('mknod', [device, 'c', '1', '3']);
    for (const extra of [[], ['--force']]) {
      const r = await reassemble(device, ...extra);
      expectCleanExit(r, EXIT.usage);
      expect(r.stderr).toContain(device);
      expect(r.stderr).toMatch(/character device/);
    }
    expect((await lstat(device)).isCharacterDevice()).toBe(true);
  });

  it('a write into the output that fails (here the file-size limit, EFBIG) ends the rebuild: named, no copy blamed, nothing left', async () => {
    await expectOutputWriteFailure(p, manifestPath, await outDir());
  });

  it('the same with the copies on a node agent (streamed to the output, not copied on a hashing thread)', async () => {
    const agent = await spawnAgent();
    const viaAgent = await badProject(defaultYaml({ chunkMb: 1, nodes: [`  - { id: a1, url: "${agent.url}", token_env: REASSEMBLE_AGENT_TOKEN }`] }));
    await ensureDataFile(join(viaAgent.data, BIG), BIG_SIZE, BIG);
    const env = { REASSEMBLE_AGENT_TOKEN: agent.token };
    const run = await cli(['run', '--config', viaAgent.configPath, '--cloud', 'local', '--json'], { cwd: viaAgent.root, env });
    expectCleanExit(run, EXIT.ok);
    const dir = join(viaAgent.root, 'out');
    await mkdir(dir);
    await expectOutputWriteFailure(viaAgent, (JSON.parse(run.stdout) as { manifest: string }).manifest, dir, env);
  });

  it('a key that is not in the manifest is a usage error (exit 2) naming the manifest and its files', async () => {
    const r = await cli(['reassemble', '--config', p.configPath, '--manifest', manifestPath, '--file', 'nope.bin', '--out', join(await outDir(), 'x')], { cwd: p.root });
    expectCleanExit(r, EXIT.usage);
    expect(r.stderr).toContain(manifestPath);
    expect(r.stderr).toContain(BIG);
  });
});

describe('reassemble: a hand-edited manifest', () => {
  type Edit = (chunks: Manifest['chunks'], file: Manifest['files'][number]) => void;
  const bigChunks = (chunks: Manifest['chunks']) => chunks.filter((c) => c.file === BIG).sort((a, b) => a.index - b.index);
  const cases: [string, Edit, RegExp][] = [
    ['a negative offset', (c) => void (bigChunks(c)[1]!.offset = -5), /offset/],
    ['a non-numeric offset', (c) => void ((bigChunks(c)[1] as unknown as { offset: string }).offset = 'abc'), /offset/],
    ['a huge offset', (c) => void (bigChunks(c)[2]!.offset = 2 ** 60), /offset/],
    ['an offset past a gap', (c) => void (bigChunks(c)[1]!.offset += 1), /offset/],
    ['a size that does not add up to the file', (c) => void (bigChunks(c)[2]!.size -= 1), /size|add up/],
    ['a negative size', (c) => void (bigChunks(c)[0]!.size = -1), /size/],
    ['a chunk count that disagrees', (_c, f) => void (f.chunkCount = 4), /chunk/],
    ['a duplicated index', (c) => void (bigChunks(c)[2]!.index = 1), /index/],
  ];

  for (const [name, edit, detail] of cases) {
    it(`${name}: refused (exit 2), naming the manifest and the chunk; nothing written`, async () => {
      const edited = structuredClone(manifest);
      const file = edited.files.find((f) => f.key === BIG)!;
      edit(edited.chunks, file);
      const editedPath = join(await outDir(), `edited-${name.replaceAll(' ', '-')}.json`);
      await writeFile(editedPath, JSON.stringify(edited, null, 2));
      const out = join(await outDir(), 'big.bin');
      const r = await cli(['reassemble', '--config', p.configPath, '--manifest', editedPath, '--file', BIG, '--out', out], { cwd: p.root });
      expectCleanExit(r, EXIT.usage);
      expect(r.stdout).not.toMatch(/^ok/m);
      expect(r.stderr).toContain(editedPath);
      expect(r.stderr).toMatch(new RegExp(`${BIG}_chunk_\\d`));
      expect(r.stderr).toMatch(detail);
      expect(r.stderr).toMatch(/Fix:/);
      await expect(stat(out)).rejects.toThrow(/ENOENT/);
    });
  }
});

/** The CLI run on a terminal (util-linux `script` gives it one): everything it drew, stdout and stderr together. */
function onTerminal(args: string[]): { status: number | null; screen: string } {
  // Each argument in single quotes for the shell that script starts; a quote inside becomes '\'' (close, escaped, reopen).
  const quote = (arg: string): string => "'" + arg.replaceAll("'", "'\\''") + "'";
  const command = [process.execPath, ...ENGINE_NODE_FLAGS, CLI, ...args].map(quote).join(' ');
  const r = spawnSync('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: p.root, env: { ...process.env, TERM: 'xterm' }, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, screen: r.stdout };
}

describe('reassemble and verify on a terminal', () => {
  it('reassemble draws the bytes written, then the bytes checked, each up to 100%, then its result', async () => {
    const out = join(await outDir(), 'big.bin');
    const { status, screen } = onTerminal(['reassemble', '--config', p.configPath, '--manifest', manifestPath, '--file', BIG, '--out', out]);
    expect(status, screen).toBe(EXIT.ok);
    const drawn = screen.split(new RegExp(`\r${String.fromCharCode(27)}\\[2K|\r?\n`)).filter(Boolean);
    const writing = drawn.findIndex((l) => /^writing .* of 2\.5 MiB \(100%\)$/.test(l));
    const checking = drawn.findIndex((l) => /^checking .* of 2\.5 MiB \(100%\)$/.test(l));
    expect(writing, screen).toBeGreaterThanOrEqual(0);
    expect(checking, screen).toBeGreaterThan(writing);
    expect(drawn.findIndex((l) => l.startsWith(`ok: ${BIG} → `)), screen).toBeGreaterThan(checking);
    expect((await readFile(out)).equals(bigBytes)).toBe(true);
  });

  it('verify draws the copies checked, up to all of them, then its verdict', () => {
    const { status, screen } = onTerminal(['verify', '--config', p.configPath, '--manifest', manifestPath]);
    expect(status, screen).toBe(EXIT.ok);
    const copies = manifest.chunks.reduce((n, c) => n + c.copies.length, 0);
    expect(screen).toContain(`checking copies ${copies}/${copies}`);
    expect(screen).toMatch(new RegExp(`checking copies ${copies}/${copies}\\r?\\n${copies}/${copies} chunk copies match the manifest: all chunks verified`));
  });
});

