// A module a test preloads into a Node process (`--import`, or NODE_OPTIONS) to watch it from inside: how it
// started, what it loaded, what Node reports at exit. It writes what it sees to a file the test then reads.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './temp.ts';

/**
 * Writes the module `source(out)` gives, where `out` is the file it should write to; returns both paths.
 * The source is an ES module, run before the process's own main module.
 */
export async function preloadModule(prefix: string, source: (out: string) => string): Promise<{ dir: string; module: string; out: string }> {
  const dir = await tempDir(prefix);
  const out = join(dir, 'seen.txt');
  const module = join(dir, 'preload.mjs');
  await writeFile(module, source(JSON.stringify(out)));
  return { dir, module, out };
}
