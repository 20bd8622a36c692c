// A manifest or journal on disk is input like any other: an entry edited or damaged by hand must fail only itself,
// with a message that names the file, the line and the fix, never crash the command or steer a write.
import { entryBlocks } from './manifest-reader.ts';

/** What is wrong with a chunk entry's shape (the fields verify, repair and resume rely on), or undefined if nothing. */
export function chunkEntryProblem(chunk: unknown): string | undefined {
  if (typeof chunk !== 'object' || chunk === null || Array.isArray(chunk)) return 'it is not an object';
  const c = chunk as Record<string, unknown>;
  if (typeof c.id !== 'string' || c.id === '') return `its id ${shown(c.id)} is not a chunk id`;
  if (typeof c.file !== 'string') return `its file ${shown(c.file)} is not a key`;
  for (const field of ['index', 'offset', 'size'] as const) {
    if (!isByteCount(c[field])) return `its ${field} ${shown(c[field])} is not a whole number of 0 or more`;
  }
  if (typeof c.checksum !== 'string') return `its checksum ${shown(c.checksum)} is not a string`;
  if (!Array.isArray(c.copies)) return `its copies ${shown(c.copies)} are not a list`;
  for (const copy of c.copies as unknown[]) {
    if (typeof copy !== 'object' || copy === null || typeof (copy as { nodeId?: unknown }).nodeId !== 'string') return `a copy ${shown(copy)} names no node`;
  }
  return undefined;
}

/** A chunk entry's id as text, for a message about an entry whose id may be anything. */
export function chunkIdOf(chunk: unknown): string {
  const id = typeof chunk === 'object' && chunk !== null ? (chunk as { id?: unknown }).id : undefined;
  return typeof id === 'string' ? id : shown(id);
}

/**
 * The line numbers of the chunk entries at these positions (0 = the first chunk), read only when an entry is found
 * wrong: a run's manifest is read without them. Positions of a manifest in an older layout (read whole) get none.
 */
export async function chunkLines(path: string, positions: Iterable<number>): Promise<Map<number, number>> {
  const wanted = new Set(positions);
  const lines = new Map<number, number>();
  let at = 0;
  for await (const entries of entryBlocks(path)) {
    if (!entries) return lines;
    for (const entry of entries) {
      if (entry.section !== 'chunks') continue;
      if (wanted.has(at)) lines.set(at, entry.number);
      at++;
      if (lines.size === wanted.size) return lines;
    }
  }
  return lines;
}

/** `${path} line N` (or the chunk's place when the manifest has no line per entry). */
export function whereInManifest(path: string, line: number | undefined, at: number): string {
  return line === undefined ? `${path}, chunk entry ${at + 1}` : `${path} line ${line}`;
}

function isByteCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
