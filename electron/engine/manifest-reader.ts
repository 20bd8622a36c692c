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
    for await (const entries of entryBlocks(path)) {
      if (!entries) return ManifestReader.parsedWhole(path);
      // Chunks are parsed here only to count their copies (a damaged line fails now); files when they are read.
      for (const entry of entries) {
        if (entry.section === 'chunks') copies += (parseEntry(path, entry.line, entry.number) as ManifestChunk).copies?.length ?? 0;
      }
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
    for await (const entries of entryBlocks(this.path)) {
      for (const entry of entries ?? []) {
        if (entry.section === wanted) yield entry;
        else if (wanted === 'files') return; // the chunks follow the files
      }
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
  // Searched for in each line's bytes (the manifest is written by JSON.stringify too): most lines are never decoded.
  const keyField = Buffer.from(`"key":${JSON.stringify(key)}`);
  const found: FileLookup = { head, nodes, file: undefined, chunks: [], someKeys: [], moreKeys: false };
  let wanted: Buffer | undefined; // the chunks' "file" (or the shard's "id") once the file is found, JSON-quoted
  for await (const entries of entryBlocks(path)) {
    if (!entries) return lookUpInWhole(await readManifest(path), key);
    for (const entry of entries) {
      if (entry.section === 'files') {
        const some = found.someKeys.length < SOME_KEYS;
        if (!some) found.moreKeys = true;
        if (!some && (found.file || !entry.bytes.includes(keyField))) continue;
        const file = parseEntry(path, entry.line, entry.number) as ManifestFile;
        if (some) found.someKeys.push(file.key);
        if (found.file || file.key !== key) continue;
        found.file = file;
        wanted = Buffer.from(JSON.stringify(file.packed ? file.packed.shard : key));
      } else if (wanted === undefined) return found; // the chunks follow the files: it is not there
      else if (entry.bytes.includes(wanted)) {
        const chunk = parseEntry(path, entry.line, entry.number) as ManifestChunk;
        if (holdsFile(chunk, found.file!)) found.chunks.push(chunk);
      }
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
  const preview = await PreviewCollector.start(path, limit);
  for await (const entries of entryBlocks(path)) {
    if (!entries) return cutPreview(await readManifest(path), limit);
    for (const entry of entries) if (preview.add(entry)) return preview.result();
  }
  return preview.result();
}

/** The first `limit` files and chunks of a manifest's entry lines, fed one at a time (a pass may feed other work too). */
export class PreviewCollector {
  private readonly files: ManifestFile[] = [];
  private readonly chunks: ManifestChunk[] = [];

  private readonly path: string;
  private readonly limit: number;
  private readonly summary: Omit<Manifest, 'files' | 'chunks'>;

  private constructor(path: string, limit: number, summary: Omit<Manifest, 'files' | 'chunks'>) {
    this.path = path;
    this.limit = limit;
    this.summary = summary;
  }

  /** Reads the manifest's head and tail first: an incomplete file fails here, naming itself. */
  static async start(path: string, limit: number): Promise<PreviewCollector> {
    return new PreviewCollector(path, limit, await readManifestSummary(path));
  }

  /** Takes an entry line if it is among the first `limit` of its section; true once no later line can be. */
  add(entry: EntryLine): boolean {
    if (entry.section === 'files') {
      if (this.files.length < this.limit) this.files.push(parseEntry(this.path, entry.line, entry.number) as ManifestFile);
      return false;
    }
    if (this.chunks.length === this.limit) return true; // the chunks follow the files
    this.chunks.push(parseEntry(this.path, entry.line, entry.number) as ManifestChunk);
    return false;
  }

  result(): ManifestPreview {
    const { summary, files, chunks } = this;
    const manifest: Manifest = { ...summary, files, chunks };
    const cutShort = files.length < summary.totals.files || chunks.length < summary.totals.chunks;
    return cutShort ? { manifest, partial: { files: summary.totals.files, chunks: summary.totals.chunks } } : { manifest };
  }
}

/** The preview of a manifest read whole (an older layout). */
export function cutPreview(manifest: Manifest, limit: number): ManifestPreview {
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

/**
 * An entry line of a manifest: its section, its bytes, where it lies in the file and its line number. Its text is
 * decoded only when asked for: a pass that wants a few lines of a million (a lookup, the page index, the chunks after
 * the files) splits the rest without making a string of each.
 */
export class EntryLine {
  readonly section: Section;
  /** The line's bytes, without its line break. */
  readonly bytes: Buffer;
  /** Byte offset of the line's first byte. */
  readonly at: number;
  /** Byte offset just past its line break (where the next line starts). */
  readonly end: number;
  /** Its line number in the file, from 1. */
  readonly number: number;
  private text: string | undefined;

  constructor(section: Section, { bytes, at, end, number }: SplitLine) {
    this.section = section;
    this.bytes = bytes;
    this.at = at;
    this.end = end;
    this.number = number;
  }

  get line(): string {
    return (this.text ??= this.bytes.toString('utf8'));
  }
}

/**
 * The entry lines of a manifest, files then chunks, with their section and place in the file (nothing else is
 * yielded), one array per block read (a MiB): a million-file manifest is two million lines, and a hop through an
 * async generator per line cost more than reading and splitting them. null, and nothing after, where the file is not
 * laid out a line per entry (an older, indented layout; JSON on one line; no end to its chunks), which the caller
 * then reads whole.
 */
export async function* entryBlocks(path: string): AsyncGenerator<EntryLine[] | null> {
  const input = createReadStream(path, { highWaterMark: 1024 * 1024 });
  try {
    const lines = new LineSplitter();
    let inside: Section | undefined;
    for await (const block of input) {
      if (!inside && lines.unended > HEAD_LINE_MAX_BYTES) break; // no need to read it all to know: read whole
      const entries: EntryLine[] = [];
      for (const split of lines.split(block as Buffer)) {
        if (inside && isIndentedEntry(split.bytes)) {
          if (!isWholeEntry(split.bytes)) {
            yield null;
            return;
          }
          entries.push(new EntryLine(inside, split));
          continue;
        }
        const text = split.bytes.toString('utf8'); // a line of the head or tail, or a section's start or end
        if (text === '  "files": [' || text === '  "chunks": [') inside = text.includes('files') ? 'files' : 'chunks';
        else if (text.startsWith('  "chunks": []') || (inside === 'chunks' && /^ {2}\],?$/.test(text))) {
          yield entries; // the lines after the chunks (the tail's nodes) are no entries
          return;
        } else if (inside && /^ {2}\],?$/.test(text)) inside = undefined;
      }
      if (entries.length > 0) yield entries;
    }
    yield null; // the end of the file, and no end of the chunks seen
  } finally {
    input.destroy(); // a reader that stops early (a lookup found its entry) closes the file now, not when collected
  }
}

/** A line as LineSplitter cuts it: its bytes (no line break), its byte offsets and its number. */
interface SplitLine {
  bytes: Buffer;
  at: number;
  end: number;
  number: number;
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

  *split(block: Buffer): Generator<SplitLine> {
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
  private line(bytes: Buffer, start: number, lf: number): SplitLine {
    const cut = lf > start && bytes[lf - 1] === 13 ? lf - 1 : lf;
    this.number += 1;
    return { bytes: bytes.subarray(start, cut), at: this.offset, end: this.offset + lf + 1 - start, number: this.number };
  }
}

/** A line longer than this before the files begin: the manifest is not laid out a line per member (JSON on one line). */
const HEAD_LINE_MAX_BYTES = 4 * 1024 * 1024;

const SPACE = 32;

/** Whether a line is indented as an entry of a section (four spaces): the other lines are the head's, the tail's, a section's start or end. */
function isIndentedEntry(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes[0] === SPACE && bytes[1] === SPACE && bytes[2] === SPACE && bytes[3] === SPACE;
}

/** Whether an entry line holds a whole entry (`    {...},`), not the first line of an indented one (older layout). */
function isWholeEntry(bytes: Buffer): boolean {
  let first = 0;
  while (first < bytes.length && isBlank(bytes[first]!)) first++;
  let last = bytes.length - 1;
  while (last > first && isBlank(bytes[last]!)) last--;
  if (bytes[first] !== OPEN_BRACE || last <= first) return false;
  return bytes[last] === CLOSE_BRACE || (bytes[last] === COMMA && bytes[last - 1] === CLOSE_BRACE);
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;

/** What String.prototype.trim takes off a manifest line's ends (the ASCII blanks; JSON is written without others). */
function isBlank(byte: number): boolean {
  return byte === SPACE || (byte >= 9 && byte <= 13);
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
