// The CLI (here its node agent) runs with the engine's glibc malloc settings (bin/malloc-env.js), set before the
// process's first allocation by re-executing itself in place: same PID, so signals and service managers still
// reach it. A value the user set wins.
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { preloadModule } from '../helpers/preload.ts';
import { tempDir } from '../helpers/temp.ts';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'cloud-ingest.js');

/** The environment with this test's Node first on PATH: what a launcher executed as a command starts. */
function withThisNode(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, PATH: `${dirname(process.execPath)}${delimiter}${env.PATH ?? ''}` };
}

/**
 * Starts an agent with `env` (through `node bin/cloud-ingest.js`, or the launcher executed as a command), waits
 * until it listens, and returns its environment as the kernel holds it.
 */
async function agentEnvironment(env: Record<string, string>, how: 'node' | 'command' = 'node'): Promise<Record<string, string>> {
  const clean: NodeJS.ProcessEnv = { ...process.env, ...env, CI_MALLOC_TOKEN: 'a-token-for-this-test-only-0123456789' };
  for (const name of ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_']) if (!(name in env)) delete clean[name];
  const dir = await tempDir('ci-malloc-');
  const args = ['agent', '--port', '0', '--dir', dir, '--token-env', 'CI_MALLOC_TOKEN'];
  const proc =
    how === 'node'
      ? spawn(process.execPath, [...ENGINE_NODE_FLAGS, CLI, ...args], { env: clean, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(CLI, args, { env: withThisNode(clean), stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening on')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`agent exited ${code} before listening: ${out}`)));
    });
    const environ = await readFile(`/proc/${proc.pid}/environ`, 'utf8');
    return Object.fromEntries(environ.split('\0').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
  } finally {
    proc.kill('SIGTERM');
  }
}

describe.runIf(process.platform === 'linux')('malloc settings', () => {
  it('the agent runs with two arenas and big blocks mapped on their own, in the process that was started', async () => {
    const env = await agentEnvironment({});
    expect(env.MALLOC_ARENA_MAX).toBe('2');
    expect(env.MALLOC_MMAP_THRESHOLD_).toBe('131072');
  });

  it('keeps a value the user set', async () => {
    const env = await agentEnvironment({ MALLOC_ARENA_MAX: '4' });
    expect(env.MALLOC_ARENA_MAX).toBe('4');
    expect(env.MALLOC_MMAP_THRESHOLD_).toBe('131072');
  });

  it('executed as a command, the launcher sets them too, and keeps a value the user set', async () => {
    const plain = await agentEnvironment({}, 'command');
    expect(plain.MALLOC_ARENA_MAX).toBe('2');
    expect(plain.MALLOC_MMAP_THRESHOLD_).toBe('131072');
    const own = await agentEnvironment({ MALLOC_MMAP_THRESHOLD_: '65536' }, 'command');
    expect(own.MALLOC_ARENA_MAX).toBe('2');
    expect(own.MALLOC_MMAP_THRESHOLD_).toBe('65536');
  });
});

describe.runIf(process.platform === 'linux')('the restart with malloc settings', () => {
  // Everything loaded before the restart is loaded again after it: a launcher that loaded the TypeScript cache,
  // the relaunch helper and url before restarting made every command start ~60 ms later.
  it('comes before anything but the launcher and what decides on the restart is loaded', async () => {
    const { dir, module: recorder, out: log } = await preloadModule(
      'ci-malloc-loads-',
      (out) => `import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
registerHooks({ load(url, context, nextLoad) {
  if (url.startsWith('file:')) appendFileSync(${out}, (process.env.MALLOC_ARENA_MAX ? 'after ' : 'before ') + url + '\\n');
  return nextLoad(url, context);
} });
`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.MALLOC_ARENA_MAX;
    delete env.MALLOC_MMAP_THRESHOLD_;
    const result = spawnSync(process.execPath, ['--import', recorder, ...ENGINE_NODE_FLAGS, CLI, 'nodes', '--config', join(dir, 'missing.yml')], { env, encoding: 'utf8' });
    expect(result.stderr).toContain('missing.yml'); // the command ran, after the restart
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    const before = lines.filter((l) => l.startsWith('before ')).map((l) => l.slice('before '.length).replace(/^.*\/bin\//, 'bin/'));
    expect(before.filter((url) => !url.endsWith('recorder.mjs')).sort()).toEqual(['bin/cloud-ingest.js', 'bin/malloc-env.js', 'bin/node22.js']);
    expect(lines.some((l) => l.startsWith('after ') && l.endsWith('/bin/ts-cache.js'))).toBe(true); // the rest, once
  });
});

describe.runIf(process.platform === 'linux')('the launcher executed as a command', () => {
  // Its shell line starts Node with the settings already set, so the process never restarts: a restart is a second
  // Node start (~30 ms of a 0.2 s run).
  it('starts Node once, with the malloc settings from its first module on', async () => {
    const { dir, module: recorder, out: log } = await preloadModule(
      'ci-malloc-command-',
      (out) => `import { appendFileSync } from 'node:fs';
appendFileSync(${out}, 'start ' + (process.env.MALLOC_ARENA_MAX ?? 'unset') + ' ' + process.execArgv.join(' ') + '\\n');
`,
    );
    const env = withThisNode({ ...process.env, NODE_OPTIONS: `--import=${recorder}` });
    delete env.MALLOC_ARENA_MAX;
    delete env.MALLOC_MMAP_THRESHOLD_;
    const result = spawnSync(CLI, ['nodes', '--config', join(dir, 'missing.yml')], { env, encoding: 'utf8' });
    expect(result.stderr).toContain('missing.yml'); // the command ran
    const starts = (await readFile(log, 'utf8')).trim().split('\n');
    expect(starts).toHaveLength(1);
    expect(starts[0]).toMatch(/^start 2 /);
    for (const flag of ENGINE_NODE_FLAGS) expect(starts[0]!.split(' ')).toContain(flag);
  });
});
