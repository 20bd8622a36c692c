// The engine's Node flags (bin/node22.js ENGINE_NODE_FLAGS) reach every way the engine is started for real.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MALLOC_ENV } from '../../bin/malloc-env.js';
import { ENGINE_NODE_FLAGS, withEngineFlags } from '../../bin/node22.js';
import { ENGINE_YOUNG_GENERATION_MB, STREAMING_HEAP_GROWTH_PERCENT } from '../../electron/engine/heap-growth.ts';
import { preloadModule } from '../helpers/preload.ts';
import { tempDir } from '../helpers/temp.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const launcher = join(ROOT, 'bin', 'cloud-ingest.js');

describe('engine Node flags', () => {
  it('the installed `cloud-ingest`, `npm run ingest` and `npm start` all pass them', () => {
    // The launcher's shell line (what runs when it is executed as a command).
    const shellLine = readFileSync(launcher, 'utf8').split('\n').find((line) => line.startsWith('exec '))!;
    const electronJsFlags = /"--js-flags=([^"]*)"/.exec(scripts.start!)?.[1]?.split(' ');
    for (const flag of ENGINE_NODE_FLAGS) {
      expect(shellLine.split(' ')).toContain(flag);
      expect(scripts.ingest!.split(' ')).toContain(flag);
      expect(electronJsFlags).toContain(flag);
    }
  });

  it("the launcher's shell line sets bin/malloc-env.js's malloc settings, each only where the user set none", () => {
    const shellLine = readFileSync(launcher, 'utf8').split('\n').find((line) => line.startsWith('exec '))!;
    for (const [name, value] of Object.entries(MALLOC_ENV)) expect(shellLine.split(' ')).toContain(`${name}="\${${name}:-${value}}"`);
  });

  it('start with the heap growth a run goes back to when it ends', () => {
    expect(ENGINE_NODE_FLAGS).toContain(`--heap-growing-percent=${STREAMING_HEAP_GROWTH_PERCENT}`);
  });

  it("size the young generation the app's engine thread asks for (two semi-spaces and a third for large objects)", () => {
    expect(ENGINE_NODE_FLAGS).toContain(`--max-semi-space-size=${ENGINE_YOUNG_GENERATION_MB / 3}`);
  });

  it("let the CLI load Node's built-in modules from their code cache, flags and all", async () => {
    // V8 refuses Node's precompiled built-ins while any flag differs from its default: with the engine's flags on
    // its command line the CLI compiled each one again (102 for `runs`). The launcher holds the defaults while the CLI
    // loads (bin/node22.js defaultFlagsWhileLoading). What loads before the launcher runs (Node's module loader)
    // cannot come from the cache.
    const { dir, module: recorder, out } = await preloadModule(
      'ci-cli-cache-',
      (file) => `import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
process.on('exit', () => {
  const usage = require('internal/test/binding').internalBinding('builtins').getCacheUsage();
  writeFileSync(${file}, JSON.stringify({ without: [...usage.compiledWithoutCache], with: [...usage.compiledWithCache] }));
});
`,
    );
    const env = { ...process.env, MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' }; // no restart: one process to read
    const result = await promisify(execFile)(process.execPath, ['--expose-internals', '--no-warnings', '--import', recorder, ...ENGINE_NODE_FLAGS, launcher, 'runs', '--config', join(dir, 'missing.yml')], { cwd: ROOT, env }).catch((error: { stderr: string }) => error);
    expect(result.stderr).toContain('missing.yml'); // the command ran, with the whole CLI loaded
    const usage = JSON.parse(await readFile(out, 'utf8')) as { without: string[]; with: string[] };
    for (const builtin of ['worker_threads', 'internal/worker', 'crypto', 'internal/crypto/hash']) {
      expect(usage.with).toContain(builtin);
      expect(usage.without).not.toContain(builtin);
    }
  });

  it('the launcher runs when executed directly, through its shebang', async () => {
    const { stdout } = await promisify(execFile)(launcher, ['--help'], { cwd: ROOT });
    expect(stdout).toMatch(/^Usage: cloud-ingest <command>/);
  });

  it("leave the hashing threads' heaps as the threads size them", async () => {
    // The young generation the engine's flag sets for its own thread is not the threads' (they ask for less).
    const script = join(await tempDir('ci-thread-heap-'), 'limits.mjs');
    await writeFile(script, `import { HashPool } from ${JSON.stringify(join(ROOT, 'electron/engine/hash/pool.ts'))};
      const pool = new HashPool(1);
      console.log(JSON.stringify(await pool.heapLimits())); await pool.close();`);
    const limits = async (flags: readonly string[]): Promise<number[]> => {
      const { stdout } = await promisify(execFile)(process.execPath, [...flags, script], { cwd: ROOT });
      return JSON.parse(stdout) as number[];
    };
    const [withFlags, without] = await Promise.all([limits(ENGINE_NODE_FLAGS), limits([])]);
    expect(withFlags).toHaveLength(1);
    expect(withFlags).toEqual(without);
  });

  it("let a starting thread load Node's built-in modules from their code cache", async () => {
    // V8 refuses Node's precompiled built-ins when any flag differs from its default; the pool holds the defaults
    // while each thread starts (defaultFlagsWhile). Node reports which built-ins it compiled without their cache
    // (an internal binding, hence --expose-internals in this probe only). One process each: a built-in compiled
    // again under other flags has its cache replaced for the whole process.
    const script = join(await tempDir('ci-thread-cache-'), 'cache.mjs');
    await writeFile(script, `import { Worker } from 'node:worker_threads';
      import { defaultFlagsWhile } from ${JSON.stringify(join(ROOT, 'electron/engine/heap-growth.ts'))};
      const body = "require('node:zlib'); require('node:crypto'); const { internalBinding } = require('internal/test/binding'); require('node:worker_threads').parentPort.postMessage([...internalBinding('builtins').getCacheUsage().compiledWithoutCache])";
      const worker = new Worker(body, { eval: true });
      const compiledWithout = new Promise((resolve) => worker.once('message', resolve));
      if (process.argv[2] === 'held') defaultFlagsWhile(compiledWithout);
      console.log(JSON.stringify(await compiledWithout));`);
    const compiledWithout = async (how: string): Promise<string[]> => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-internals', '--no-warnings', ...ENGINE_NODE_FLAGS, script, how], { cwd: ROOT });
      return JSON.parse(stdout) as string[];
    };
    const [plain, held] = await Promise.all([compiledWithout('plain'), compiledWithout('held')]);
    expect(plain, 'with the engine flags as they are, zlib is compiled again').toContain('zlib');
    expect(held).not.toContain('zlib');
    expect(held).not.toContain('crypto');
    expect(held.length).toBeLessThan(plain.length / 2);
  });

  it('keeps a value the caller chose and adds the rest', () => {
    const [flag] = ENGINE_NODE_FLAGS;
    const name = flag!.split('=')[0]!;
    expect(withEngineFlags([`${name}=256`])).toEqual([`${name}=256`, ...ENGINE_NODE_FLAGS.slice(1)]);
    expect(withEngineFlags(['--inspect'])).toEqual(['--inspect', ...ENGINE_NODE_FLAGS]);
  });
});
