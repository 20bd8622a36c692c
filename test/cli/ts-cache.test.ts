// The CLI loads the project's TypeScript from stripped copies (bin/ts-cache.js): a copy is made once, used after,
// and an edited source is stripped again rather than served stale.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

describe('TypeScript cache', () => {
  let cache: string;
  let source: string;

  beforeEach(async () => {
    cache = await mkdtemp(join(tmpdir(), 'ts-cache-'));
    source = join(ROOT, 'scripts', `.tmp-ts-cache-${process.pid}-${Date.now()}.ts`);
  });
  afterEach(async () => {
    await rm(cache, { recursive: true, force: true });
    await rm(source, { force: true });
  });

  /** Loads `source` in a fresh Node with the cache registered (after `nodeArgs`); returns what it printed. */
  async function load(nodeArgs: string[] = []): Promise<string> {
    const script = `const { useTypeScriptCache } = await import(${JSON.stringify(join(ROOT, 'bin', 'ts-cache.js'))});
if (!useTypeScriptCache(${JSON.stringify(cache)})) throw new Error('not registered');
await import(${JSON.stringify(source)});`;
    const { stdout, stderr } = await run(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { cwd: ROOT });
    expect(stderr).toBe('');
    return stdout;
  }

  it('strips a source once, serves the copy after, and strips it again once it changes', async () => {
    await writeFile(source, 'const greeting: string = "first";\nconsole.log(greeting);\n');
    expect(await load()).toBe('first\n');
    const copies = await readdir(cache);
    expect(copies).toHaveLength(1);
    expect(await readFile(join(cache, copies[0]!), 'utf8')).not.toContain(': string');

    expect(await load()).toBe('first\n');
    expect(await readdir(cache)).toEqual(copies);

    await writeFile(source, 'const greeting: string = "second";\nconsole.log(greeting);\n');
    const later = new Date(Date.now() + 5_000);
    await utimes(source, later, later);
    expect(await load()).toBe('second\n');
    expect(await readdir(cache)).toHaveLength(2);
  });

  it('keeps line numbers, so a stack trace points at the .ts source', async () => {
    await writeFile(source, 'interface Shape {\n  size: number;\n}\nconst shape: Shape = { size: 1 };\nconsole.log(new Error(String(shape.size)).stack?.split("\\n")[1]);\n');
    await load();
    expect(await load()).toMatch(new RegExp(`${source.replace(/[.]/g, '\\.')}:5:`));
  });

  it('strips the source, not its bytes as text, when another loader hands it on as bytes (an APM agent, a tracer)', async () => {
    // A pass-through load hook registered with --import (module.register): the source reaches the next hook as bytes.
    const hook = join(cache, 'pass-through.mjs');
    await writeFile(hook, `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent('export async function load(url, context, next) { return next(url, context); }'));\n`);
    await writeFile(source, 'export const greeting: string = "through another loader";\nconsole.log(greeting);\n');
    expect(await load(['--import', hook])).toBe('through another loader\n');
    // The copy kept is JavaScript: the next load, without the other loader, runs it as it is.
    const copies = (await readdir(cache)).filter((name) => name.endsWith('.js'));
    expect(copies).toHaveLength(1);
    expect(await readFile(join(cache, copies[0]!), 'utf8')).toContain('export const greeting');
    expect(await load()).toBe('through another loader\n');
  });
});
