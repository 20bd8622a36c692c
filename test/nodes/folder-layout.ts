// What a node folder holds, read straight from its files (not through FolderNode), for tests that look behind a node's
// back: the folder node's index (`.cloud-ingest-index/chunks.jsonl`, one JSON line per chunk stored or removed, the
// last line about an id counts, a line that does not parse is skipped), each line naming the subfolder of its
// `<sub>/<name>.chunk` (two hex digits; no subfolder: `<name>.chunk` in the node folder itself, as written before the
// subfolders), and `<name>.chunk.json` sidecars, each beside its `<name>.chunk`: in the node folder itself (the folder
// node's oldest layout, and an agent's before its subfolders) or in a two-hex-digit subfolder (an agent's layout).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chunkFileName } from '../../electron/engine/chunk-names.ts';
import type { FolderNode } from '../../electron/engine/nodes/folder-node.ts';
import type { StoredChunk } from '../../electron/engine/nodes/node.ts';
import { flipFirstByte, md5, readAll } from './chunks.ts';
import { listAll } from './conformance.ts';
import { SUBFOLDER } from '../helpers/agent-store.ts';

export const INDEX_PATH = join('.cloud-ingest-index', 'chunks.jsonl');

export interface HeldChunk {
  id: string;
  size: number;
  checksum: string;
  /** The chunk's bytes. */
  dataPath: string;
  /** Where its metadata is: the index, or a sidecar beside the bytes. */
  via: 'index' | 'sidecar';
}

interface IndexLine {
  id?: unknown;
  size?: unknown;
  gone?: unknown;
  subfolder?: unknown;
  checksum?: { hex?: unknown };
}


/** The index's last word on each id: its line, or 'gone'. */
export async function indexLines(dir: string): Promise<Map<string, IndexLine | 'gone'>> {
  const latest = new Map<string, IndexLine | 'gone'>();
  const text = await readFile(join(dir, INDEX_PATH), 'utf8').catch(() => '');
  // Only whole lines: the last one is being written (or was torn) unless a newline follows it.
  for (const raw of text.split('\n').slice(0, -1)) {
    let line: IndexLine;
    try {
      line = JSON.parse(raw) as IndexLine;
    } catch {
      continue;
    }
    if (typeof line.id !== 'string') continue;
    if (line.subfolder !== undefined && !(typeof line.subfolder === 'string' && SUBFOLDER.test(line.subfolder))) continue;
    latest.set(line.id, line.gone === true ? 'gone' : line);
  }
  return latest;
}

/** Every chunk a node folder says it holds: the index's, then the sidecars of ids the index does not name. */
export async function heldChunks(dir: string): Promise<HeldChunk[]> {
  const held: HeldChunk[] = [];
  const index = await indexLines(dir);
  for (const [id, line] of index) {
    if (line === 'gone' || typeof line.size !== 'number' || typeof line.checksum?.hex !== 'string') continue;
    const sub = typeof line.subfolder === 'string' ? line.subfolder : '';
    held.push({ id, size: line.size, checksum: line.checksum.hex, dataPath: join(dir, sub, `${chunkFileName(id)}.chunk`), via: 'index' });
  }
  for (const name of await sidecarPaths(dir)) {
    let meta: IndexLine;
    try {
      meta = JSON.parse(await readFile(join(dir, name), 'utf8')) as IndexLine;
    } catch {
      continue; // a sidecar half written by a killed writer is not a claim of completeness
    }
    if (typeof meta.id !== 'string' || index.has(meta.id) || typeof meta.size !== 'number' || typeof meta.checksum?.hex !== 'string') continue;
    held.push({ id: meta.id, size: meta.size, checksum: meta.checksum.hex, dataPath: join(dir, name.slice(0, -'.json'.length)), via: 'sidecar' });
  }
  return held;
}

/** `<name>.chunk.json` sidecars, relative to `dir`: in the folder itself and in its two-hex-digit subfolders. */
async function sidecarPaths(dir: string): Promise<string[]> {
  const paths: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!(entry.isDirectory() && SUBFOLDER.test(entry.name))) {
      if (entry.name.endsWith('.chunk.json')) paths.push(entry.name);
      continue;
    }
    for (const name of await readdir(join(dir, entry.name)).catch(() => [] as string[])) if (name.endsWith('.chunk.json')) paths.push(join(entry.name, name));
  }
  return paths;
}

/** How many chunks a node folder holds (0 for a folder not made yet). */
export async function heldCount(dir: string): Promise<number> {
  return (await heldChunks(dir)).length;
}

/** A folder node's temp files (unfinished chunks), as paths relative to the node folder: in .tmp/<sub>/ or .tmp/. */
export async function folderTemps(dir: string): Promise<string[]> {
  const temps: string[] = [];
  for (const entry of await readdir(join(dir, '.tmp'), { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory()) temps.push(`.tmp/${entry.name}`);
    else for (const name of await readdir(join(dir, '.tmp', entry.name))) temps.push(`.tmp/${entry.name}/${name}`);
  }
  return temps;
}

/**
 * Files in a folder node's folder that belong to no chunk it holds: its temp files, chunk files nothing describes,
 * sidecars the index has superseded or whose chunk file is gone, anything else. The index itself is the node's own.
 */
export async function folderStrayFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const chunks = await heldChunks(dir);
  const held = new Set(chunks.map((c) => c.dataPath));
  const bySidecar = new Set(chunks.filter((c) => c.via === 'sidecar').map((c) => c.dataPath));
  const stray = await folderTemps(dir);
  for (const name of names) {
    if (name === '.tmp' || name === '.cloud-ingest-index') continue;
    if (SUBFOLDER.test(name)) {
      for (const inside of await readdir(join(dir, name)).catch(() => [] as string[])) {
        if (!(inside.endsWith('.chunk') && held.has(join(dir, name, inside)))) stray.push(`${name}/${inside}`);
      }
      continue;
    }
    if (name.endsWith('.chunk') && held.has(join(dir, name))) continue;
    const described = name.slice(0, -'.json'.length);
    if (name.endsWith('.chunk.json') && bySidecar.has(join(dir, described)) && names.includes(described)) continue;
    stray.push(name);
  }
  return stray;
}

/** Flips the first byte of the data of chunk `chunkId`, wherever the folder node's metadata says it is. */
export async function damageFolderChunk(dir: string, chunkId: string): Promise<void> {
  const chunk = (await heldChunks(dir)).find((c) => c.id === chunkId);
  if (!chunk) throw new Error(`no chunk ${chunkId} in ${dir}`);
  await flipFirstByte(chunk.dataPath);
}

/**
 * Each id found, read back byte-exact and listed once, and nothing else listed; `alsoCheck` adds a check per id.
 * The problems, one line each.
 */
export async function folderProblems(node: FolderNode, expected: Map<string, Buffer>, alsoCheck?: (id: string, bytes: Buffer, found: StoredChunk | undefined) => Promise<string | undefined>): Promise<string[]> {
  const problems: string[] = [];
  for (const [id, bytes] of expected) {
    const found = await node.find(id);
    if (found?.checksum.hex !== md5(bytes)) problems.push(`${id}: find gives ${JSON.stringify(found)}`);
    const read = await node.read(id).then(readAll, (error: unknown) => String(error));
    if (typeof read === 'string' || !read.equals(bytes)) problems.push(`${id}: read gives ${typeof read === 'string' ? read : `${read.length} other bytes`}`);
    const also = await alsoCheck?.(id, bytes, found ?? undefined);
    if (also) problems.push(`${id}: ${also}`);
  }
  const listed = await listAll(node);
  for (const id of expected.keys()) if (listed.filter((c) => c.id === id).length !== 1) problems.push(`${id}: listed ${listed.filter((c) => c.id === id).length} times`);
  for (const c of listed) if (!expected.has(c.id)) problems.push(`${c.id}: listed but not expected`);
  return problems;
}
