// Bad configuration and bad command lines, through the CLI as a user meets them: every one exits with the
// documented code, names the file, line and key (or flag) with a fix, prints no stack trace, and writes nothing.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { badProject, cli, defaultYaml, EXIT, expectCleanExit, removeBadProjects, tree, writtenOutside } from './helpers.ts';

afterAll(removeBadProjects);

/** Runs `run` on a project whose config is `yaml`; asserts exit 2, no stack, nothing written; returns stderr. */
async function runRejected(yaml: string, extraArgs: string[] = []): Promise<string> {
  const p = await badProject(yaml);
  await writeFile(join(p.data, 'x.bin'), 'some bytes');
  const before = await tree(p.root);
  const r = await cli(['run', '--config', p.configPath, '--cloud', 'local', ...extraArgs], { cwd: p.root });
  expectCleanExit(r, EXIT.usage);
  expect(await writtenOutside(p.root, before, [])).toEqual([]);
  return r.stderr;
}

describe('bad config files', () => {
  it('malformed YAML: the broken line and column, no stack trace, nothing written', async () => {
    const stderr = await runRejected('data_sources:\n  local: { type: local, path: ./data\ningestion:\n  chunk_size_mb: [1\n');
    expect(stderr).toMatch(/data_sources\.yml:\d+:\d+: error: YAML syntax error/);
    expect(stderr).toContain('Fix:');
  });

  it('tabs for indentation and a duplicated key are syntax errors with their own fix', async () => {
    expect(await runRejected('data_sources:\n\tlocal: { type: local, path: ./data }\n')).toMatch(/data_sources\.yml:2:\d+: error: YAML syntax error.*Fix: indent with spaces/);
    expect(await runRejected(defaultYaml().replace('  retry_attempts: 1', '  retry_attempts: 1\n  retry_attempts: 2'))).toMatch(/YAML syntax error.*Fix: remove or rename the repeated key/);
  });

  it('a config that is not a mapping at all', async () => {
    expect(await runRejected('- just\n- a list\n')).toMatch(/data_sources\.yml:1:1: error: expected a mapping with data_sources and ingestion/);
    expect(await runRejected('')).toMatch(/data_sources\.yml:1:1: error: .*expected a mapping/);
  });

  it('wrong types: each key is named with what was expected, all reported at once', async () => {
    const yaml = defaultYaml({ chunkMb: '"ten"' })
      .replace('max_concurrent_chunks: 4', 'max_concurrent_chunks: 2.5')
      .replace('retry_attempts: 1', 'retry_attempts: [1]')
      .replace('use_local_simulation: false', 'use_local_simulation: "no"')
      .replace('retry_delay_seconds: 0.05', 'retry_delay_seconds: "3"');
    const stderr = await runRejected(yaml);
    expect(stderr).toMatch(/:4:18: error: ingestion\.chunk_size_mb: expected a number greater than 0, got the text "ten"/);
    expect(stderr).toMatch(/ingestion\.max_concurrent_chunks: expected a whole number of at least 1, got 2\.5/);
    expect(stderr).toMatch(/ingestion\.retry_attempts: expected a whole number of at least 0, got a list/);
    expect(stderr).toMatch(/ingestion\.retry_delay_seconds: .*Fix: remove the quotes around the number/);
    expect(stderr).toMatch(/use_local_simulation: expected true or false, got the text "no"/);
  });

  it('nodes of the wrong shape: a mapping instead of a list, a number as id, both path and url', async () => {
    expect(await runRejected(defaultYaml({ nodes: [] }).replace('nodes:\n', 'nodes: { id: n1 }\n'))).toMatch(/nodes: expected a list of nodes, got a mapping/);
    expect(await runRejected(defaultYaml({ nodes: ['  - { id: 7, path: ./nodes/x }'] }))).toMatch(/nodes\[0\]\.id: expected a non-empty text, got number 7/);
    expect(await runRejected(defaultYaml({ nodes: ['  - { id: n1, path: ./nodes/x, url: "http://127.0.0.1:1" }'] }))).toMatch(/nodes\[0\]: a node has either path or url, not both/);
  });

  it.each([
    ['0', /ingestion\.chunk_size_mb: expected a number greater than 0, got 0\./],
    ['-5', /ingestion\.chunk_size_mb: expected a number greater than 0, got -5\./],
    ['-0.5', /ingestion\.chunk_size_mb: expected a number greater than 0, got -0\.5\./],
    ['.nan', /ingestion\.chunk_size_mb: expected a number greater than 0, got/],
    ['.inf', /ingestion\.chunk_size_mb: expected a number greater than 0, got Infinity\./],
  ])('chunk size %s is refused with the line and a fix', async (value, message) => {
    const stderr = await runRejected(defaultYaml({ chunkMb: value }));
    expect(stderr).toMatch(message);
    expect(stderr).toMatch(/data_sources\.yml:4:\d+: error: .*Fix: set it to a number greater than 0, e\.g\. 100\./);
  });

  it('a chunk size too small to be a byte is refused, not planned forever', async () => {
    // 1e-10 MiB rounds to 0 bytes: chunks of 0 bytes would never cover a file (the run used to hang here).
    const stderr = await runRejected(defaultYaml({ chunkMb: '0.0000000001' }));
    expect(stderr).toMatch(/data_sources\.yml:4:\d+: error: ingestion\.chunk_size_mb: expected a chunk of at least one byte/);
  });

  it('an unknown cloud name in data_sources, with a suggestion', async () => {
    const stderr = await runRejected(defaultYaml({ source: '  local: { type: local, path: ./data }\n  awz: { type: s3, bucket: b }' }));
    expect(stderr).toMatch(/data_sources\.awz: unknown cloud 'awz'\. Fix: did you mean 'aws'\?/);
  });

  it('credentials in the YAML are refused without echoing the secret', async () => {
    const stderr = await runRejected(defaultYaml({ source: '  aws: { type: s3, bucket: b, secret_access_key: "hunter2-very-secret" }\n  local: { type: local, path: ./data }' }));
    expect(stderr).toMatch(/credentials must not be stored in the config file/);
    expect(stderr).not.toContain('hunter2-very-secret');
  });

  it('a config file that does not exist, or is a folder', async () => {
    const p = await badProject();
    for (const path of [join(p.root, 'nope.yml'), p.data]) {
      const r = await cli(['run', '--config', path, '--cloud', 'local'], { cwd: p.root });
      expectCleanExit(r, EXIT.usage);
      expect(r.stderr).toContain(path);
      expect(r.stderr).toMatch(/Fix: pass --config/);
    }
  });
});

describe('bad command lines', () => {
  it('an unknown cloud name in --cloud or CLOUD_PROVIDER', async () => {
    const p = await badProject();
    const before = await tree(p.root);
    const flag = await cli(['run', '--config', p.configPath, '--cloud', 'mars'], { cwd: p.root });
    expectCleanExit(flag, EXIT.usage);
    expect(flag.stderr).toMatch(/mars/);
    const env = await cli(['run', '--config', p.configPath], { cwd: p.root, env: { CLOUD_PROVIDER: 'mars' } });
    expectCleanExit(env, EXIT.usage);
    expect(env.stderr).toMatch(/mars/);
    expect(await writtenOutside(p.root, before, [])).toEqual([]);
  });

  it('a cloud the config has no source for says which ones it has', async () => {
    const p = await badProject();
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'gcp'], { cwd: p.root });
    expectCleanExit(r, EXIT.usage);
    expect(r.stderr).toMatch(/no data_sources\.gcp entry \(configured: local\)/);
  });

  it('unknown flags, missing values and unknown commands', async () => {
    const p = await badProject();
    expectCleanExit(await cli(['run', '--config', p.configPath, '--chunk-size', '5'], { cwd: p.root }), EXIT.usage);
    expectCleanExit(await cli(['run', '--config'], { cwd: p.root }), EXIT.usage);
    expectCleanExit(await cli(['ingest-everything'], { cwd: p.root }), EXIT.usage);
    expectCleanExit(await cli(['reassemble', '--config', p.configPath, '--file', 'x.bin'], { cwd: p.root }), EXIT.usage);
    expectCleanExit(await cli(['make-test-data', '--scale', '-1', '--out', join(p.root, 'made')], { cwd: p.root }), EXIT.usage);
  });

  it('--resume with a run id that does not exist', async () => {
    const p = await badProject();
    const r = await cli(['run', '--config', p.configPath, '--cloud', 'local', '--resume', 'no-such-run'], { cwd: p.root });
    expectCleanExit(r, EXIT.usage);
    expect(r.stderr).toMatch(/no-such-run/);
  });

  it('verify and reassemble before any run say so', async () => {
    const p = await badProject();
    for (const args of [['verify'], ['reassemble', '--file', 'x.bin', '--out', join(p.root, 'out.bin')]]) {
      const r = await cli([...args, '--config', p.configPath], { cwd: p.root });
      expectCleanExit(r, EXIT.usage);
      expect(r.stderr).toMatch(/No run manifest found\. Fix:/);
    }
  });
});
