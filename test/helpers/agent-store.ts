// What an agent's --dir holds, read straight from its files (not through the agent), for tests that look behind its
// back: each chunk as `<sub>/<name>.chunk` + `<sub>/<name>.chunk.json`, `<sub>` the two hex digits folder nodes use
// (chunkSubfolder), or for stores written before the subfolders, both files in the folder itself; uploads in progress
// in `.incoming/<sub>/` (older versions: `.incoming/`).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chunkFileName, chunkSubfolder } from '../../electron/engine/chunk-names.ts';

/** A store's chunk subfolder as the README states it (two lower-case hex digits), for every layout helper. */
export const SUBFOLDER = /^[0-9a-f]{2}$/;

/** Where the agent writes chunk `id`'s data now (its sidecar is this plus `.json`). */
export function agentChunkPath(dir: string, id: string): string {
  return join(dir, chunkSubfolder(id), `${chunkFileName(id)}.chunk`);
}

/** `.chunk` and `.chunk.json` files, relative to `dir`: in its two-hex-digit subfolders and in `dir` itself. */
export async function agentChunkFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory() && SUBFOLDER.test(entry.name)) {
      for (const name of await readdir(join(dir, entry.name)).catch(() => [] as string[])) if (isChunkFile(name)) files.push(`${entry.name}/${name}`);
    } else if (isChunkFile(entry.name)) files.push(entry.name);
  }
  return files.sort();
}

/** The metadata sidecars (`.chunk.json`) among them. */
export async function agentSidecars(dir: string): Promise<string[]> {
  return (await agentChunkFiles(dir)).filter((name) => name.endsWith('.chunk.json'));
}

/** Everything in `.incoming/` but its two-hex-digit subfolders, and everything in those, relative to `.incoming/`. */
export async function incomingFiles(dir: string): Promise<string[]> {
  const incoming = join(dir, '.incoming');
  const files: string[] = [];
  for (const entry of await readdir(incoming, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory() && SUBFOLDER.test(entry.name)) {
      for (const name of await readdir(join(incoming, entry.name)).catch(() => [] as string[])) files.push(`${entry.name}/${name}`);
    } else files.push(entry.name);
  }
  return files.sort();
}

function isChunkFile(name: string): boolean {
  return name.endsWith('.chunk') || name.endsWith('.chunk.json');
}
