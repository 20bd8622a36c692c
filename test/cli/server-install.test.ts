// A server install (`npm ci --omit=dev`) has what the CLI and the node agent load at run time: every package the
// engine, the CLI, the shared code and the launchers import is a dependency, none only a devDependency. (The
// install itself was checked in a clone: see the README's "Server install".)
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const RUNTIME_DIRS = ['electron/engine', 'electron/cli', 'shared', 'bin'];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && /\.(ts|js|mjs)$/.test(e.name)).map((e) => join(e.parentPath, e.name));
}

/** Bare package names a file imports at run time (static, dynamic, require and createRequire), type-only imports left out. */
function packagesImported(text: string): string[] {
  const specifiers = [...text.matchAll(/^\s*import\s+(?!type\b)[^'"]*?from\s+'([^'.][^']*)'/gm), ...text.matchAll(/\bimport\(\s*'([^'.][^']*)'\s*\)/g), ...text.matchAll(/\brequire\(\s*'([^'.][^']*)'\s*\)/g), ...text.matchAll(/\bcreateRequire\([^)]*\)\(\s*'([^'.][^']*)'\s*\)/g)].map((m) => m[1]!);
  return specifiers.filter((s) => !s.startsWith('node:')).map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!));
}

describe('a server install', () => {
  it('needs no devDependency at run time: the engine, CLI, agent and launchers import only dependencies', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; optionalDependencies?: Record<string, string> };
    const installed = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})]);
    const missing: string[] = [];
    for (const dir of RUNTIME_DIRS) {
      for (const file of await sourceFiles(dir)) {
        for (const name of packagesImported(await readFile(file, 'utf8'))) if (!installed.has(name)) missing.push(`${file.slice(ROOT.length + 1)} imports ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('keeps the renderer-only packages out of it', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const name of ['react', 'react-dom', 'zustand', 'codemirror', 'electron', 'vite', 'esbuild', 'playwright-core', 'azurite', 's3rver']) expect([name, name in pkg.dependencies]).toEqual([name, false]);
  });
});
