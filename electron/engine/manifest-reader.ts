// A manifest read entry by entry: its head and tail are parsed, its files and chunks are streamed from disk one line
// at a time, so checking a million-file run does not hold its manifest (236 MB of text, several times that as
// objects). Manifests in the older layout (each entry indented over many lines) are parsed whole, as before.
import { createReadStream } from 'node:fs';
import type { Manifest, ManifestChunk, ManifestFile } from '../../shared/types.ts';
import { manifestErrors, RawJson, readManifest, readManifestSummary } from './manifest.ts';
import type { ManifestHead } from './manifest.ts';

export type Section = 'files' | 'chunks';
type Tail = Pick<Manifest, 'nodes' | 'totals'>;

export class ManifestReader {
  readonly path: string;
  readonly head: ManifestHead;
  readonly tail: Tail;
  /** How many copies its chunks list (for progress). */
  readonly copies: number;
  /** An older layout, parsed whole. */
  private readonly whole: Manifest | undefined;

  private constructor(path: string, head: ManifestHead, tail: Tail, copies: number, whole?: Manifest) {
    this.path = path;
    this.head = head;
    this.tail = tail;
    this.copies = copies;
    this.whole = whole;
  }

  static async open(path: string): Promise<ManifestReader> {
    // Head from the start, nodes and totals from the end (an incomplete file fails there, naming itself).
    const { nodes, totals, ...head } = await readManifestSummary(path);
    let copies = 0;
    for await (const entry of entryLines(path)) {
      if (!entry) return ManifestReader.parsedWhole(path);
      // Chunks are parsed here only to count their copies (a damaged line fails now); files when they are read.
      if (entry.section === 'chunks') copies += (parseEntry(path, entry.line, entry.number) as ManifestChunk).copies?.length ?? 0;
    }
    return new ManifestReader(path, head, { nodes, totals }, copies);
  }

  private static async parsedWhole(path: string): Promise<ManifestReader> {
    const whole = await readManifest(path);
    const copies = whole.chunks.reduce((sum, chunk) => sum + chunk.copies.length, 0);
    return new ManifestReader(path, whole, { nodes: whole.nodes, totals: whole.totals }, copies, whole);
  }

  async *files(): AsyncGenerator<ManifestFile> {
    yield* this.entries<ManifestFile>('files');
  }

  async *chunks(): AsyncGenerator<ManifestChunk> {
    yield* this.entries<ManifestChunk>('chunks');
  }

  /** A section's entries as their JSON text, as written (an older layout's entries written anew), to copy them. */
  async *rawEntries(wanted: Section): AsyncGenerator<RawJson> {
    if (this.whole) {
      for (const entry of this.whole[wanted]) yield new RawJson(JSON.stringify(entry));
      return;
    }
    for await (const { line } of this.lines(wanted)) yield new RawJson(entryText(line));
  }

  /** The file entries with these keys, and the packed files of these shards in shard order: one pass over the files. */
  async filesFor(keys: ReadonlySet<string>, shards: ReadonlySet<string>): Promise<{ byKey: Map<string, ManifestFile>; byShard: Map<string, ManifestFile[]> }> {
    const byKey = new Map<string, ManifestFile>();
    const byShard = new Map<string, ManifestFile[]>();
    for await (const file of this.files()) {
      if (keys.has(file.key)) byKey.set(file.key, file);
      const shard = file.packed?.shard;
      if (shard === undefined || !shards.has(shard)) continue;
      const members = byShard.get(shard) ?? [];
      if (members.push(file) === 1) byShard.set(shard, members);
    }
    for (const members of byShard.values()) members.sort((a, b) => a.packed!.offset - b.packed!.offset);
    return { byKey, byShard };
  }

  private async *entries<T>(wanted: Section): AsyncGenerator<T> {
    if (this.whole) {
      yield* this.whole[wanted] as T[];
      return;
    }
    for await (const { line, number } of this.lines(wanted)) yield parseEntry(this.path, line, number) as T;
  }

  /** The entry lines of one section (open() found every entry whole). */
  private async *lines(wanted: Section): AsyncGenerator<EntryLine> {
    for await (const entry of entryLines(this.path)) {
      if (entry?.section === wanted) yield entry;
      else if (entry && wanted === 'files') return; // the chunks follow the files
    }
  }
}

/** What lookUpFile finds: the file's entry (undefined if the manifest has none) and the chunks it is rebuilt from. */
export interface FileLookup {
  head: ManifestHead;
  nodes: Manifest['nodes'];
  file: ManifestFile | undefined;
  /** A chunked file's chunks, or a packed file's shard; in manifest order. */
  chunks: ManifestChunk[];
  /** The manifest's first few keys (SOME_KEYS), to name in an error when `file` is undefined; `moreKeys` if it has others. */
  someKeys: string[];
  moreKeys: boolean;
}

/** How many of a manifest's keys a lookup keeps to name. */
const SOME_KEYS = 10;

/**
 * One file of a manifest and its chunks, in one pass that parses only the lines that can name them (and the first
 * few files): reassembling one file of a million-file run holds that file, not the manifest.
 */
export async function lookUpFile(path: string, key: string): Promise<FileLookup> {
  const { nodes, totals: _totals, ...head } = await readManifestSummary(path);
  const keyField = `"key":${JSON.stringify(key)}`;
  const found: FileLookup = { head, nodes, file: undefined, chunks: [], someKeys: [], moreKeys: false };
  let wanted: string | undefined; // the chunks' "file" (or the shard's "id") once the file is found, JSON-quoted
  for await (const entry of entryLines(path)) {
    if (!entry) return lookUpInWhole(await readManifest(path), key);
    const { section, line } = entry;
    if (section === 'files') {
      const some = found.someKeys.length < SOME_KEYS;
      if (!some) found.moreKeys = true;
      if (!some && (found.file || !line.includes(keyField))) continue;
      const file = parseEntry(path, line, entry.number) as ManifestFile;
      if (some) found.someKeys.push(file.key);
      if (found.file || file.key !== key) continue;
      found.file = file;
      wanted = JSON.stringify(file.packed ? file.packed.shard : key);
    } else if (wanted === undefined) break; // the chunks follow the files: it is not there
    else if (line.includes(wanted)) {
      const chunk = parseEntry(path, line, entry.number) as ManifestChunk;
      if (holdsFile(chunk, found.file!)) found.chunks.push(chunk);
    }
  }
  return found;
}

/** A manifest with at most `limit` of its files and of its chunks; `partial` says how many it has when that cut them. */
export interface ManifestPreview {
  manifest: Manifest;
  partial?: { files: number; chunks: number };
}

/**
 * The first `limit` files and chunks of a manifest, with its head, nodes and totals (readManifestSummary): what a
 * screen can show of a million-file run without reading it all. One pass, stopped once both are taken.
 */
export async function manifestPreview(path: string, limit: number): Promise<ManifestPreview> {
  const summary = await readManifestSummary(path);
  const files: ManifestFile[] = [];
  const chunks: ManifestChunk[] = [];
  for await (const entry of entryLines(path)) {
    if (!entry) return cut(await readManifest(path), limit);
    if (entry.section === 'files' && files.length < limit) files.push(parseEntry(path, entry.line, entry.number) as ManifestFile);
    else if (entry.section === 'chunks') {
      if (chunks.length === limit) break;
      chunks.push(parseEntry(path, entry.line, entry.number) as ManifestChunk);
    }
  }
  const manifest: Manifest = { ...summary, files, chunks };
  const cutShort = files.length < summary.totals.files || chunks.length < summary.totals.chunks;
  return cutShort ? { manifest, partial: { files: summary.totals.files, chunks: summary.totals.chunks } } : { manifest };
}

function cut(manifest: Manifest, limit: number): ManifestPreview {
  if (manifest.files.length <= limit && manifest.chunks.length <= limit) return { manifest };
  return { manifest: { ...manifest, files: manifest.files.slice(0, limit), chunks: manifest.chunks.slice(0, limit) }, partial: { files: manifest.files.length, chunks: manifest.chunks.length } };
}

/** Whether `chunk` holds bytes of `file`: one of its chunks, or the shard it is packed in. */
function holdsFile(chunk: ManifestChunk, file: ManifestFile): boolean {
  return file.packed ? chunk.id === file.packed.shard : chunk.file === file.key;
}

function lookUpInWhole(manifest: Manifest, key: string): FileLookup {
  const file = manifest.files.find((f) => f.key === key);
  const chunks = file ? manifest.chunks.filter((chunk) => holdsFile(chunk, file)) : [];
  return { head: manifest, nodes: manifest.nodes, file, chunks, someKeys: manifest.files.slice(0, SOME_KEYS).map((f) => f.key), moreKeys: manifest.files.length > SOME_KEYS };
}

/** An entry line of a manifest: its section, its text, where it lies in the file (bytes) and its line number. */
export interface EntryLine {
  section: Section;
  line: string;
  /** Byte offset of the line's first byte. */
  at: number;
  /** Byte offset just past its line break (where the next line starts). */
  end: number;
  /** Its line number in the file, from 1. */
  number: number;
}

/**
 * Each entry line of a manifest, files then chunks, with its section and place in the file (nothing else is
 * yielded: one hop per entry, a million-file manifest is two million lines); null, and nothing after, where the file
 * is not laid out a line per entry (an older, indented layout; JSON on one line; no end to its chunks), which the
 * caller then reads whole. Lines are split from the file's blocks here (a read per MiB), so each keeps its offset.
 */
export async function* entryLines(path: string): AsyncGenerator<EntryLine | null> {
  const input = createReadStream(path, { highWaterMark: 1024 * 1024 });
  try {
    const lines = new LineSplitter();
    let inside: Section | undefined;
    for await (const block of input) {
      if (!inside && lines.unended > HEAD_LINE_MAX_BYTES) break; // no need to read it all to know: read whole
      for (const { text, at, end, number } of lines.split(block as Buffer)) {
        if (text === '  "files": [' || text === '  "chunks": [') inside = text.includes('files') ? 'files' : 'chunks';
        else if (text.startsWith('  "chunks": []')) return; // lines after the chunks (the tail's nodes) are no entries
        else if (inside && text.startsWith('    ')) {
          if (!isWholeEntry(text)) {
            yield null;
            return;
          }
          yield { section: inside, line: text, at, end, number };
        } else if (inside && /^ {2}\],?$/.test(text)) {
          if (inside === 'chunks') return;
          inside = undefined;
        }
      }
    }
    yield null; // the end of the file, and no end of the chunks seen
  } finally {
    input.destroy(); // a reader that stops early (a lookup found its entry) closes the file now, not when collected
  }
}

/**
 * A file's lines from its blocks as they are read, each with its byte offsets and number (a last line without a line
 * break is not one). The blocks of a line not yet ended are kept apart and joined once its end comes, so a very
 * long line (JSON on one line) costs one copy, not one per block.
 */
class LineSplitter {
  private pending: Buffer[] = [];
  /** Bytes of the line not ended yet. */
  unended = 0;
  /** Byte offset of the first pending byte. */
  private offset = 0;
  private number = 0;

  *split(block: Buffer): Generator<{ text: string; at: number; end: number; number: number }> {
    const firstBreak = block.indexOf(10);
    if (firstBreak < 0) {
      this.pending.push(block);
      this.unended += block.length;
      return;
    }
    let start = 0;
    if (this.unended > 0) {
      // Only the line that spans blocks is joined; the rest is read where it lies.
      const first = Buffer.concat([...this.pending, block.subarray(0, firstBreak + 1)]);
      yield this.line(first, 0, first.length - 1);
      this.offset += first.length;
      start = firstBreak + 1;
    }
    for (let lf = block.indexOf(10, start); lf >= 0; lf = block.indexOf(10, start)) {
      yield this.line(block, start, lf);
      this.offset += lf + 1 - start;
      start = lf + 1;
    }
    this.pending = start < block.length ? [block.subarray(start)] : [];
    this.unended = block.length - start;
  }

  /** The line of `bytes` from `start` to its line break at `lf` (a CRLF's CR left out: an older manifest saved on Windows). */
  private line(bytes: Buffer, start: number, lf: number): { text: string; at: number; end: number; number: number } {
    const cut = lf > start && bytes[lf - 1] === 13 ? lf - 1 : lf;
    this.number += 1;
    return { text: bytes.toString('utf8', start, cut), at: this.offset, end: this.offset + lf + 1 - start, number: this.number };
  }
}

/** A line longer than this before the files begin: the manifest is not laid out a line per member (JSON on one line). */
const HEAD_LINE_MAX_BYTES = 4 * 1024 * 1024;

/** Whether an entry line holds a whole entry (`    {...},`), not the first line of an indented one (older layout). */
function isWholeEntry(line: string): boolean {
  const text = line.trimEnd();
  return text.trimStart().startsWith('{') && (text.endsWith('}') || text.endsWith('},'));
}

/** An entry line's JSON (`    {...},` without its indent and comma). */
function entryText(line: string): string {
  return line.trim().replace(/,$/, '');
}

/** An entry line (`    {...},`, or any JSON value on it) parsed; an error names the manifest and the line. */
export function parseEntry(path: string, line: string, number: number): unknown {
  const text = entryText(line);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw manifestErrors.notJson(path, error, `an entry on line ${number}`);
  }
}
