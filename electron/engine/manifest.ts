// Run manifests: written atomically (temp name, then rename), one JSON file per run, newest last by name.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Manifest } from '../../shared/types.ts';
import { BufferedWriter } from './buffered-writer.ts';
import type { LoadedConfig } from './config.ts';

export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function manifestDir(loaded: LoadedConfig): string {
  return loaded.resolve(loaded.config.ingestion.manifest_dir);
}

/**
 * A top-level array written one element at a time from an iterable that is read once, when the writer gets to
 * it: the elements of a run of a million files come from disk and are never all in memory.
 */
export class StreamedArray<T> {
  readonly items: () => AsyncIterable<T> | Iterable<T>;
  constructor(items: () => AsyncIterable<T> | Iterable<T>) {
    this.items = items;
  }
}

/** A top-level value computed when the writer gets to it (totals summed while the arrays before it streamed by). */
export class Deferred<T> {
  readonly value: () => T;
  constructor(value: () => T) {
    this.value = value;
  }
}

/**
 * Writes `value` as manifestJsonPieces lays it out to a temp name, then renames it into place. The top-level
 * arrays are written one element at a time (StreamedArray members from their iterables), so a run of a million
 * files never holds its whole manifest, or its text, at once.
 */
export async function writeJsonAtomic(path: string, value: object): Promise<void> {
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const file = await open(temp, 'w');
    try {
      const out = new BufferedWriter(file);
      for await (const piece of streamedJsonPieces(value)) await out.write(piece);
      await out.flush();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * A manifest's text, in pieces (one per top-level key or array element): laid out as JSON.stringify(value, null, 2)
 * would, except that each element of a top-level array (a file, a chunk) is one compact line. That is a line to
 * grep or diff per file and per chunk, and, at a million small files, 236 MB of manifest instead of 329 MB and a
 * third of the time to write it (indenting each entry took ~10 µs).
 */
export function* manifestJsonPieces(value: object): Generator<string> {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined && typeof v !== 'function');
  if (entries.length === 0) {
    yield '{}\n';
    return;
  }
  yield '{\n';
  for (const [i, [key, member]] of entries.entries()) yield* memberPieces(key, member, i < entries.length - 1);
  yield '}\n';
}

/** manifestJsonPieces, where members may also be StreamedArray or Deferred. */
export async function* streamedJsonPieces(value: object): AsyncGenerator<string> {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined && typeof v !== 'function');
  if (entries.length === 0) {
    yield '{}\n';
    return;
  }
  yield '{\n';
  for (const [i, [key, member]] of entries.entries()) {
    const more = i < entries.length - 1;
    if (member instanceof StreamedArray) yield* streamedArrayPieces(key, member as StreamedArray<unknown>, more);
    else yield* memberPieces(key, member instanceof Deferred ? (member as Deferred<unknown>).value() : member, more);
  }
  yield '}\n';
}

function* memberPieces(key: string, member: unknown, more: boolean): Generator<string> {
  const comma = more ? ',' : '';
  const name = `  ${JSON.stringify(key)}: `;
  if (Array.isArray(member) && member.length > 0) {
    yield `${name}[\n`;
    for (const [j, element] of member.entries()) yield `${elementText(element)}${j < member.length - 1 ? ',' : ''}\n`;
    yield `  ]${comma}\n`;
  } else {
    yield `${name}${JSON.stringify(member, null, 2).replaceAll('\n', '\n  ')}${comma}\n`;
  }
}

async function* streamedArrayPieces(key: string, member: StreamedArray<unknown>, more: boolean): AsyncGenerator<string> {
  const comma = more ? ',' : '';
  const name = `  ${JSON.stringify(key)}: `;
  const items = member.items();
  if (isIterable(items)) {
    yield* syncArrayPieces(name, comma, items);
    return;
  }
  let previous: { element: unknown } | undefined;
  for await (const element of items) {
    yield previous ? `${elementText(previous.element)},\n` : `${name}[\n`;
    previous = { element };
  }
  yield previous ? `${elementText(previous.element)}\n  ]${comma}\n` : `${name}[]${comma}\n`;
}

/** Text pieces of about this many characters from an array read synchronously. */
const SYNC_PIECE_CHARS = 256 * 1024;

/**
 * An array read synchronously (from the run's spill), its elements' text joined into pieces of ~256 KiB: an
 * element each through the async generators cost more than its text (~7 µs; 0.7 s of a 100,000-file manifest).
 */
function* syncArrayPieces(name: string, comma: string, items: Iterable<unknown>): Generator<string> {
  let piece = '';
  let first = true;
  for (const element of items) {
    piece += first ? `${name}[\n${elementText(element)}` : `,\n${elementText(element)}`;
    first = false;
    if (piece.length >= SYNC_PIECE_CHARS) {
      yield piece;
      piece = '';
    }
  }
  yield first ? `${name}[]${comma}\n` : `${piece}\n  ]${comma}\n`;
}

function isIterable(items: AsyncIterable<unknown> | Iterable<unknown>): items is Iterable<unknown> {
  return Symbol.iterator in items;
}

/** An element already in JSON (a line of the run's spill), written as it is instead of parsed and written again. */
export class RawJson {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

function elementText(element: unknown): string {
  if (element instanceof RawJson) return `    ${element.text}`;
  return `    ${JSON.stringify(element === undefined ? null : element) ?? 'null'}`;
}

/** Writes a run's manifest: a Manifest, or one whose files and chunks are StreamedArray members. */
export async function writeManifest(loaded: LoadedConfig, manifest: Pick<Manifest, 'runId'> & object): Promise<string> {
  const dir = manifestDir(loaded);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${manifest.runId}.json`);
  await writeJsonAtomic(path, manifest);
  return path;
}

/** A manifest that cannot be read or is not ours: bad input, named with its path and the fix. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** The errors a manifest that cannot be used gives, each naming the file and the fix. */
export const manifestErrors = {
  unreadable: (path: string): ManifestError => new ManifestError(`Cannot read manifest ${path}. Fix: pass --manifest with a file from the runs folder, or run an ingest first.`),
  notJson: (path: string, error: unknown, where = ''): ManifestError =>
    new ManifestError(`${path} ${where ? `has ${where} that is` : 'is'} not valid JSON (${(error as Error).message}). Fix: pass a manifest a run wrote, unedited, or the latest one (omit --manifest).`),
  notOurs: (path: string): ManifestError => new ManifestError(`${path} is not a Cloud Ingest manifest (version 1). Fix: pass the JSON file a run wrote.`),
};

export async function readManifest(path: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw manifestErrors.unreadable(path);
  }
  let value: Manifest;
  try {
    value = JSON.parse(text) as Manifest;
  } catch (error) {
    throw manifestErrors.notJson(path, error);
  }
  if (typeof value !== 'object' || value === null || value.version !== 1 || !Array.isArray(value.chunks) || !Array.isArray(value.files)) {
    throw manifestErrors.notOurs(path);
  }
  return value;
}

/** The top-level members a manifest writes before its `files` (all but files, chunks, nodes and totals). */
export type ManifestHead = Omit<Manifest, 'files' | 'chunks' | 'nodes' | 'totals'>;

const HEAD_BLOCK_BYTES = 64 * 1024;
const HEAD_MAX_BYTES = 4 * 1024 * 1024;
/** A raw newline never occurs inside a JSON string, so this can only be the manifest's own top-level key. */
const FILES_MEMBER = '\n  "files": ';

/**
 * A manifest's head, read from the start of the file up to its `files` member: listing runs reads a few KB of a
 * million-file run's manifest, not all of it (236 MB). A file laid out otherwise is read whole.
 */
export async function readManifestHead(path: string): Promise<ManifestHead> {
  let head: string | undefined;
  try {
    head = await textBefore(path, FILES_MEMBER);
  } catch {
    throw manifestErrors.unreadable(path);
  }
  return head === undefined ? readManifest(path) : headOf(path, head);
}

/** The file's text before the first `marker` (ASCII), reading at most HEAD_MAX_BYTES; undefined if not there. */
async function textBefore(path: string, marker: string): Promise<string | undefined> {
  const file = await open(path, 'r');
  try {
    const block = Buffer.alloc(HEAD_BLOCK_BYTES);
    let bytes = ''; // one char per byte (latin1), so a UTF-8 sequence split across blocks is decoded whole below
    while (bytes.length < HEAD_MAX_BYTES) {
      const { bytesRead } = await file.read(block, 0, block.length, bytes.length);
      if (bytesRead === 0) return undefined;
      bytes += block.toString('latin1', 0, bytesRead);
      const end = bytes.indexOf(marker);
      if (end >= 0) return Buffer.from(bytes.slice(0, end), 'latin1').toString('utf8');
    }
    return undefined;
  } finally {
    await file.close();
  }
}

/** A raw newline never occurs inside a JSON string, and deeper keys are indented further: the top-level nodes. */
const NODES_MEMBER = '\n  "nodes": ';
const TAIL_BLOCK_BYTES = 64 * 1024;

/**
 * A manifest without its files and chunks: the head read from the start of the file, its nodes and totals from the
 * end (a million-file run's manifest is 240 MB; listing runs needs a few KB of it). An older layout is read whole.
 */
export async function readManifestSummary(path: string): Promise<Omit<Manifest, 'files' | 'chunks'>> {
  const head = await readManifestHead(path);
  const tail = await textFromLast(path, NODES_MEMBER).catch(() => undefined);
  let parsed: Pick<Manifest, 'nodes' | 'totals'> | undefined;
  try {
    parsed = tail === undefined ? undefined : (JSON.parse(`{${tail}`) as Pick<Manifest, 'nodes' | 'totals'>);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !Array.isArray(parsed.nodes) || typeof parsed.totals !== 'object' || parsed.totals === null) {
    const { files: _files, chunks: _chunks, ...whole } = await readManifest(path);
    return whole;
  }
  return { ...head, ...parsed };
}

/** The file's text from the last `marker` (ASCII) to its end, looking at most HEAD_MAX_BYTES back; undefined if not there. */
async function textFromLast(path: string, marker: string): Promise<string | undefined> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    for (let span = TAIL_BLOCK_BYTES; ; span *= 4) {
      const from = Math.max(0, size - Math.min(span, HEAD_MAX_BYTES));
      const block = Buffer.alloc(size - from);
      await file.read(block, 0, block.length, from);
      const at = block.lastIndexOf(marker, undefined, 'latin1');
      if (at >= 0) return block.toString('utf8', at);
      if (from === 0 || span >= HEAD_MAX_BYTES) return undefined;
    }
  } finally {
    await file.close();
  }
}

function headOf(path: string, members: string): ManifestHead {
  let value: unknown;
  try {
    value = JSON.parse(`${members.replace(/,\s*$/, '')}\n}`);
  } catch (error) {
    throw manifestErrors.notJson(path, error);
  }
  const head = value as ManifestHead | null;
  if (typeof head !== 'object' || head === null || head.version !== 1 || typeof head.runId !== 'string' || typeof head.startedAt !== 'string' || typeof head.status !== 'string') {
    throw manifestErrors.notOurs(path);
  }
  return head;
}

export interface ManifestEntry {
  runId: string;
  path: string;
  startedAt: string;
  status: string;
}

/**
 * Reads every file in the manifest folder whose name ends with `suffix`, in name (= run id) order, keeping what
 * `read` returns; files that cannot be read (not ours, or being written) are passed over.
 */
export async function readRunFiles<T>(loaded: LoadedConfig, suffix: string, read: (path: string) => Promise<T | undefined>): Promise<T[]> {
  const dir = manifestDir(loaded);
  const names = await readdir(dir).catch(() => [] as string[]);
  const found: T[] = [];
  for (const name of names.filter((n) => n.endsWith(suffix)).sort()) {
    const value = await read(join(dir, name)).catch(() => undefined);
    if (value !== undefined) found.push(value);
  }
  return found;
}

/** One entry per run: its latest manifest version (repair writes `RUN.v002.json` after `RUN.json`). */
export async function listManifests(loaded: LoadedConfig): Promise<ManifestEntry[]> {
  const all = await readRunFiles(loaded, '.json', async (path) => {
    const m = await readManifestHead(path);
    return { runId: m.runId, path, startedAt: m.startedAt, status: m.status };
  });
  const latest = new Map(all.map((entry) => [entry.runId, entry] as const));
  return [...latest.values()];
}

/** Where the next version of a run's manifest goes: `RUN.json` → `RUN.v002.json` → `RUN.v003.json`… */
export async function nextManifestPath(path: string): Promise<string> {
  const dir = dirname(path);
  const run = basename(path).replace(/(\.v\d{3,})?\.json$/, '');
  const names = await readdir(dir).catch(() => [] as string[]);
  const versions = names.map((n) => new RegExp(`^${escapeRegExp(run)}\\.v(\\d{3,})\\.json$`).exec(n)?.[1]).filter((v): v is string => v !== undefined).map(Number);
  const next = Math.max(1, ...versions) + 1;
  return join(dir, `${run}.v${String(next).padStart(3, '0')}.json`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export async function latestManifestPath(loaded: LoadedConfig): Promise<string | undefined> {
  return (await listManifests(loaded)).at(-1)?.path;
}
