// CLI details, through the real command: option values that begin with '-', the documented exit code for usage
// errors, the warning when a pattern matches nothing, and the original design's test file names.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { badProject, cli, defaultYaml, EXIT, expectCleanExit, removeBadProjects } from '../bad-input/helpers.ts';

afterAll(removeBadProjects);

const MiB = 1024 * 1024;

describe('option values beginning with "-" (as GNU getopt takes them)', () => {
  it('--file -name, -f -name and --pattern -name* are values, not options', async () => {
    const p = await badProject(defaultYaml());
    await ensureDataFile(join(p.data, '-odd.bin'), 3000, '-odd.bin');
    await ensureDataFile(join(p.data, 'plain.bin'), 2000, 'plain.bin');
    const run = await cli(['run', '--config', p.configPath, '--cloud', 'local', '--pattern', '-odd*', '--json'], { cwd: p.root });
    expectCleanExit(run, EXIT.ok);
    expect((JSON.parse(run.stdout) as { files: number }).files).toBe(1);

    const long = await cli(['reassemble', '--config', p.configPath, '--file', '-odd.bin', '--out', join(p.root, 'long.out')], { cwd: p.root });
    expectCleanExit(long, EXIT.ok);
    expect(long.stdout).toMatch(/^ok: -odd\.bin/);
    const short = await cli(['reassemble', '--config', p.configPath, '-f', '-odd.bin', '-o', join(p.root, 'short.out')], { cwd: p.root });
    expectCleanExit(short, EXIT.ok);
    expect((await stat(join(p.root, 'short.out'))).size).toBe(3000);
  });

  it('an option given without its value at the end is still a usage error (exit 2)', async () => {
    const p = await badProject(defaultYaml());
    const r = await cli(['reassemble', '--config', p.configPath, '--out', join(p.root, 'x'), '--file'], { cwd: p.root });
    expectCleanExit(r, EXIT.usage);
    expect(r.stderr).toMatch(/--file/);
  });
});

describe('usage errors exit 2, as documented', () => {
  it('a --manifest file that does not exist: exit 2, naming it and the fix', async () => {
    const p = await badProject(defaultYaml());
    const missing = join(p.root, 'manifests', 'no-such-run.json');
    for (const args of [
      ['verify', '--manifest', missing],
      ['reassemble', '--manifest', missing, '--file', 'a.bin', '--out', join(p.root, 'a.out')],
    ]) {
      const r = await cli([...args, '--config', p.configPath], { cwd: p.root });
      expectCleanExit(r, EXIT.usage);
      expect(r.stderr).toContain(missing);
      expect(r.stderr).toMatch(/Fix:/);
    }
  });

  it('a --manifest that is a folder: exit 2', async () => {
    const p = await badProject(defaultYaml());
    const r = await cli(['verify', '--config', p.configPath, '--manifest', p.data], { cwd: p.root });
    expectCleanExit(r, EXIT.usage);
    expect(r.stderr).toContain(p.data);
  });
});

describe('a pattern that matches nothing', () => {
  it('warns "No files found matching <pattern> in <source>" on stderr and exits 0', async () => {
    const p = await badProject(defaultYaml());
    await ensureDataFile(join(p.data, 'a.bin'), 1000, 'a.bin');
    for (const json of [[], ['--json']]) {
      const r = await cli(['run', '--config', p.configPath, '--cloud', 'local', '--pattern', '*.parquet', ...json], { cwd: p.root });
      expectCleanExit(r, EXIT.ok);
      expect(r.stderr).toContain(`No files found matching *.parquet in local ${p.data}`);
    }
  });

  it('says nothing of the kind when files match', async () => {
    const p = await badProject(defaultYaml());
    await ensureDataFile(join(p.data, 'a.bin'), 1000, 'a.bin');
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local'], { cwd: p.root });
    expectCleanExit(r, EXIT.ok);
    expect(r.stderr).not.toMatch(/No files found/);
  });
});

describe('make-test-data', () => {
  it("makes exactly the original design's files: training_batch_1.dat … training_batch_5.dat and validation_data.dat, at its sizes", async () => {
    const p = await badProject(defaultYaml());
    const out = join(p.root, 'made');
    const scale = 0.001;
    const r = await cli(['make-test-data', '--scale', String(scale), '--out', out], { cwd: p.root });
    expectCleanExit(r, EXIT.ok);
    const made = new Map<string, number>();
    for (const entry of await readdir(out, { withFileTypes: true, recursive: true })) {
      if (entry.isFile()) made.set(relative(out, join(entry.parentPath, entry.name)), (await stat(join(entry.parentPath, entry.name))).size);
    }
    const expected: [string, number][] = [
      ['aws_s3_simulation/training_batch_1.dat', 500],
      ['aws_s3_simulation/training_batch_2.dat', 300],
      ['aws_s3_simulation/validation_data.dat', 100],
      ['gcp_gcs_simulation/training_batch_3.dat', 600],
      ['gcp_gcs_simulation/training_batch_4.dat', 400],
      ['azure_blob_simulation/training_batch_5.dat', 200],
    ];
    expect(new Map(made)).toEqual(new Map(expected.map(([path, mib]) => [path, Math.round(mib * MiB * scale)])));
  });
});

describe('--version', () => {
  it('--version, -V and version print the package version and the Node that runs it, exit 0', async () => {
    const p = await badProject(defaultYaml());
    const { version } = JSON.parse(await readFile(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V', 'version']) {
      const r = await cli([flag], { cwd: p.root });
      expectCleanExit(r, EXIT.ok);
      const shown = /^cloud-ingest (\S+) \(Node v(\d+)\.\d+\.\d+\)\n$/.exec(r.stdout);
      expect(shown, r.stdout).not.toBeNull();
      expect(shown?.[1]).toBe(version);
      expect(Number(shown?.[2])).toBeGreaterThanOrEqual(22);
    }
  });
});
