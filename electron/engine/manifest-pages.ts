// Every chunk and file of a run's manifest, a page at a time, without holding the manifest: one streamed pass over
// its chunk lines keeps, per block of BLOCK_LINES lines, where the block starts in the file and how many copies it
// holds on each node (~20 KB at a million chunks on three nodes); a page then reads and parses only the blocks it needs.
// Manifests not laid out a line per entry (an older, indented layout; JSON on one line) are read whole instead.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { ManifestChunk, ManifestFile, NodeChunkRow } from '../../shared/types.ts';
import { ManifestError, manifestErrors, readManifest } from './manifest.ts';
import { chunkEntryProblem } from './manifest-check.ts';
import { cutPreview, entryBlocks, parseEntry, PreviewCollector } from './manifest-reader.ts';
import type { EntryLine, ManifestPreview } from './manifest-reader.ts';

/** Chunk lines a block of the page index covers. */
export const BLOCK_LINES = 1_000;

/**
 * Where a manifest's chunk lines lie, a block of `blockLines` lines at a time, and how many copies each node holds
 * before each block. An older layout keeps its chunks instead (`whole`).
 */
export interface ChunkPageIndex {
  path: string;
  blockLines: number;
  /** Byte offset of each block's first line, then the offset just past the last chunk line (blocks + 1 values). */
  blockStarts: Float64Array;
  /** Line number of the first chunk line (for errors). */
  firstLine: number;
  /** How many chunk lines there are. */
  chunks: number;
  /** Per node: its copies in the blocks before each block, then in all (blocks + 1 values). */
  copiesBefore: Map<string, Uint32Array>;
  /** An older layout's chunks, parsed whole. */
  whole?: ManifestChunk[];
}

/**
 * Builds the page index of a manifest in one streamed pass over its chunk lines. Copies are counted from each line's
 * bytes, not parsed: a line is parsed and checked when a page holding it is read, so a damaged line fails that page,
 * naming the line, and every other page of the run still reads (and a million chunk lines index in a third of the time).
 */
export async function buildChunkPageIndex(path: string, blockLines = BLOCK_LINES): Promise<ChunkPageIndex> {
  const index = new PageIndexBuilder(path, blockLines);
  for await (const entries of entryBlocks(path)) {
    if (!entries) return wholeIndex(path, blockLines);
    for (const entry of entries) if (!index.add(entry)) return wholeIndex(path, blockLines);
  }
  return index.result();
}

/**
 * A manifest's preview (its first `limit` files and chunks, manifestPreview) and its page index, in one pass: what
 * the Received screen asks for when it opens a run (two passes took 2.0 s at a million chunks).
 */
export async function previewAndIndex(path: string, limit: number, blockLines = BLOCK_LINES): Promise<{ preview: ManifestPreview; index: ChunkPageIndex }> {
  const preview = await PreviewCollector.start(path, limit);
  const index = new PageIndexBuilder(path, blockLines);
  let previewDone = false;
  let indexed = true;
  for await (const entries of entryBlocks(path)) {
    if (!entries) {
      const whole = await readManifest(path);
      return { preview: cutPreview(whole, limit), index: indexOfWhole(path, whole.chunks, blockLines) };
    }
    for (const entry of entries) {
      if (!previewDone) previewDone = preview.add(entry);
      if (indexed) indexed = index.add(entry);
    }
  }
  return { preview: preview.result(), index: indexed ? index.result() : await wholeIndex(path, blockLines) };
}

/** The page index, fed a manifest's entry lines in order. */
class PageIndexBuilder {
  private readonly path: string;
  private readonly blockLines: number;
  private readonly starts: number[] = [];
  private readonly perBlock = new Map<string, number[]>(); // per node, its copies in each block
  private readonly names = new NodeNames();
  private chunks = 0;
  private firstLine = 0;
  private end = 0;

  constructor(path: string, blockLines: number) {
    this.path = path;
    this.blockLines = blockLines;
  }

  /** Counts a chunk line's copies; false when its chunk lines do not follow one another (then read the manifest whole). */
  add(entry: EntryLine): boolean {
    if (entry.section !== 'chunks') return true;
    if (this.chunks > 0 && entry.at !== this.end) return false;
    if (this.chunks % this.blockLines === 0) this.starts.push(entry.at);
    if (this.chunks === 0) this.firstLine = entry.number;
    const block = this.starts.length - 1;
    for (const nodeId of copyNodeIds(this.path, entry, this.names)) countCopy(this.perBlock, nodeId, block);
    this.chunks += 1;
    this.end = entry.end;
    return true;
  }

  result(): ChunkPageIndex {
    const { path, blockLines, firstLine, chunks } = this;
    const starts = [...this.starts, this.end];
    return { path, blockLines, blockStarts: Float64Array.from(starts), firstLine, chunks, copiesBefore: prefixSums(this.perBlock, starts.length - 1) };
  }
}

/** Where a copy's node is written (`"nodeId":"…"`); found only in `copies`, since quotes inside strings are escaped. */
const COPY_NODE = Buffer.from('"nodeId":"');
/** How a run writes a chunk line's copies (JSON.stringify of `{ nodeId, location }`), read without a search per copy. */
const COPIES = Buffer.from('"copies":[');
const COPY_START = Buffer.from('{"nodeId":"');
const COPY_LOCATION = Buffer.from('","location":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * The nodes of a chunk line's copies, read from its bytes: as a run writes them, one search for the copies and a
 * walk along them (a million chunk lines, 2.0 s of their 3.1 s of index building went to a search per copy);
 * any other layout by a search for each `"nodeId":"`.
 */
function copyNodeIds(path: string, entry: EntryLine, names: NodeNames): string[] {
  const { bytes } = entry;
  const ids: string[] = [];
  let at = bytes.lastIndexOf(COPIES);
  if (at < 0) return searchedNodeIds(path, entry);
  at += COPIES.length;
  while (bytes[at] !== CLOSE_BRACKET) {
    if (!bytesAt(bytes, at, COPY_START)) return searchedNodeIds(path, entry);
    const start = at + COPY_START.length;
    const end = closingQuote(bytes, start);
    if (end < 0 || !bytesAt(bytes, end, COPY_LOCATION)) return searchedNodeIds(path, entry);
    const locationEnd = closingQuote(bytes, end + COPY_LOCATION.length);
    if (locationEnd < 0 || bytes[locationEnd + 1] !== CLOSE_BRACE) return searchedNodeIds(path, entry);
    ids.push(names.of(bytes, start, end) ?? (parseEntry(path, `"${bytes.toString('utf8', start, end)}"`, entry.number) as string));
    at = locationEnd + 2;
    if (bytes[at] === COMMA) at += 1;
  }
  return ids;
}

/** The nodes of a chunk line's copies, found by a search for each `"nodeId":"`. */
function searchedNodeIds(path: string, { bytes, number }: EntryLine): string[] {
  const ids: string[] = [];
  for (let at = bytes.indexOf(COPY_NODE); at >= 0; at = bytes.indexOf(COPY_NODE, at)) {
    const start = at + COPY_NODE.length;
    const end = closingQuote(bytes, start);
    if (end < 0) break; // a torn line: the page holding it names it when read
    const id = bytes.toString('utf8', start, end);
    ids.push(id.includes('\\') ? (parseEntry(path, `"${id}"`, number) as string) : id);
    at = end;
  }
  return ids;
}

/** Whether `bytes` hold `expected` at `at`. */
function bytesAt(bytes: Buffer, at: number, expected: Buffer): boolean {
  if (at + expected.length > bytes.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[at + i] !== expected[i]) return false;
  return true;
}

/** The quote that ends the JSON string whose bytes start at `start` (one preceded by an odd run of backslashes is escaped). */
function closingQuote(bytes: Buffer, start: number): number {
  for (let end = bytes.indexOf(QUOTE, start); end >= 0; end = bytes.indexOf(QUOTE, end + 1)) {
    let slashes = 0;
    while (bytes[end - 1 - slashes] === BACKSLASH) slashes += 1;
    if (slashes % 2 === 0) return end;
  }
  return -1;
}

/** The node ids met so far, matched by their bytes: a million copies of a few nodes decode a few strings. */
class NodeNames {
  private readonly known: { bytes: Buffer; id: string }[] = [];

  /** The id written from `start` to `end`; undefined when it holds an escape (then the caller parses it). */
  of(bytes: Buffer, start: number, end: number): string | undefined {
    for (const name of this.known) if (name.bytes.length === end - start && bytesAt(bytes, start, name.bytes)) return name.id;
    const written = bytes.subarray(start, end);
    if (written.includes(BACKSLASH)) return undefined;
    const id = written.toString('utf8');
    if (this.known.length < NODE_NAMES_KEPT) this.known.push({ bytes: Buffer.from(written), id });
    return id;
  }
}

/** Node ids NodeNames keeps (a manifest names a cluster's nodes, a few to a few dozen). */
const NODE_NAMES_KEPT = 64;

async function wholeIndex(path: string, blockLines: number): Promise<ChunkPageIndex> {
  return indexOfWhole(path, (await readManifest(path)).chunks, blockLines);
}

function indexOfWhole(path: string, chunks: ManifestChunk[], blockLines: number): ChunkPageIndex {
  chunks.forEach((chunk, i) => checkChunk(path, chunk, `chunk ${i + 1}`));
  const perBlock = new Map<string, number[]>();
  for (const chunk of chunks) for (const copy of chunk.copies) countCopy(perBlock, copy.nodeId, 0);
  return { path, blockLines, blockStarts: Float64Array.of(0, 0), firstLine: 0, chunks: chunks.length, copiesBefore: prefixSums(perBlock, 1), whole: chunks };
}

function countCopy(perBlock: Map<string, number[]>, nodeId: string, block: number): void {
  let counts = perBlock.get(nodeId);
  if (!counts) perBlock.set(nodeId, (counts = []));
  counts[block] = (counts[block] ?? 0) + 1;
}

function prefixSums(perBlock: Map<string, number[]>, blocks: number): Map<string, Uint32Array> {
  const out = new Map<string, Uint32Array>();
  for (const [nodeId, counts] of perBlock) {
    const before = new Uint32Array(blocks + 1);
    for (let b = 0; b < blocks; b++) before[b + 1] = before[b]! + (counts[b] ?? 0);
    out.set(nodeId, before);
  }
  return out;
}

/** How many copies each node holds, by node id (nodes the manifest lists with no copy are not named). */
export function copiesPerNode(index: ChunkPageIndex): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [nodeId, before] of index.copiesBefore) out[nodeId] = before[before.length - 1]!;
  return out;
}

/**
 * `count` copies on `nodeId` from its `start`-th (from 0), in manifest order, and how many it holds: only the blocks
 * holding them are read. A manifest changed since the index was built is refused (build the index again).
 */
export async function chunksOnNode(index: ChunkPageIndex, nodeId: string, start: number, count: number): Promise<{ rows: NodeChunkRow[]; total: number }> {
  const before = index.copiesBefore.get(nodeId);
  const total = before ? before[before.length - 1]! : 0;
  if (!before || start >= total || count <= 0) return { rows: [], total };
  if (index.whole) return { rows: rowsOf(index.whole, nodeId).slice(start, start + count), total };
  const rows: NodeChunkRow[] = [];
  const file = await openToRead(index.path);
  try {
    for (let block = blockHolding(before, start); block < before.length - 1 && rows.length < count; block++) {
      const held = before[block + 1]! - before[block]!;
      if (held === 0) continue;
      const found = rowsOf(await readBlock(file, index, block), nodeId);
      if (found.length !== held) throw changedSinceIndexed(index.path);
      const skip = Math.max(0, start - before[block]!);
      rows.push(...found.slice(skip, skip + count - rows.length));
    }
  } finally {
    await file.close();
  }
  return { rows, total };
}

/** Where a chunk's copy on `nodeId` sits among the node's copies (from 0), or null when the node holds no copy of it. */
export async function locateChunk(index: ChunkPageIndex, nodeId: string, chunkId: string): Promise<number | null> {
  const before = index.copiesBefore.get(nodeId);
  if (!before) return null;
  if (index.whole) return positionIn(index.whole, nodeId, chunkId);
  const needle = Buffer.from(`"id":${JSON.stringify(chunkId)}`);
  const file = await openToRead(index.path);
  try {
    for (let block = 0; block < before.length - 1; block++) {
      if (before[block + 1] === before[block]) continue;
      const bytes = await readBlockBytes(file, index, block);
      if (bytes.indexOf(needle) < 0) continue; // most blocks: a search of their bytes, nothing parsed
      const at = positionIn(parseBlock(index, block, bytes), nodeId, chunkId);
      if (at !== null) return before[block]! + at;
    }
    return null;
  } finally {
    await file.close();
  }
}

function positionIn(chunks: ManifestChunk[], nodeId: string, chunkId: string): number | null {
  let position = 0;
  for (const chunk of chunks) {
    for (const copy of chunk.copies) {
      if (copy.nodeId !== nodeId) continue;
      if (chunk.id === chunkId) return position;
      position += 1;
    }
  }
  return null;
}

function rowsOf(chunks: ManifestChunk[], nodeId: string): NodeChunkRow[] {
  const rows: NodeChunkRow[] = [];
  for (const chunk of chunks) for (const copy of chunk.copies) if (copy.nodeId === nodeId) rows.push({ chunk, location: copy.location });
  return rows;
}

/** The first block whose copies on the node reach past `start` (a binary search of the node's running counts). */
function blockHolding(before: Uint32Array, start: number): number {
  let low = 0;
  let high = before.length - 2;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (before[mid]! <= start) low = mid;
    else high = mid - 1;
  }
  return low;
}

async function readBlock(file: FileHandle, index: ChunkPageIndex, block: number): Promise<ManifestChunk[]> {
  return parseBlock(index, block, await readBlockBytes(file, index, block));
}

/**
 * A block's lines as bytes, checked to be whole lines still (the byte before them and their last byte are line
 * breaks): a manifest rewritten since the index was built is refused, not parsed from the middle of a line.
 */
async function readBlockBytes(file: FileHandle, index: ChunkPageIndex, block: number): Promise<Buffer> {
  const from = index.blockStarts[block]! - 1; // the line break before the block
  const bytes = Buffer.alloc(index.blockStarts[block + 1]! - from);
  const { bytesRead } = await file.read(bytes, 0, bytes.length, from);
  if (bytesRead !== bytes.length || bytes[0] !== 10 || bytes[bytes.length - 1] !== 10) throw changedSinceIndexed(index.path);
  return bytes.subarray(1);
}

function parseBlock(index: ChunkPageIndex, block: number, bytes: Buffer): ManifestChunk[] {
  const lines = bytes.toString('utf8').split('\n');
  lines.pop(); // after the last line break
  const expected = Math.min(index.blockLines, index.chunks - block * index.blockLines);
  if (lines.length !== expected) throw changedSinceIndexed(index.path);
  const firstLine = index.firstLine + block * index.blockLines;
  return lines.map((line, i) => parseChunkLine(index.path, line.replace(/\r$/, ''), firstLine + i));
}

async function openToRead(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch {
    throw manifestErrors.unreadable(path);
  }
}

function changedSinceIndexed(path: string): ManifestError {
  return new ManifestError(`${path} changed since its chunks were indexed. Fix: open the run again.`);
}

/** The first `limit` file keys that contain `query` (any case), in manifest order, and whether more do: one streamed pass over the files. */
export async function findFiles(path: string, query: string, limit: number): Promise<{ keys: string[]; more: boolean }> {
  const wanted = query.toLowerCase();
  const keys: string[] = [];
  for await (const entries of entryBlocks(path)) {
    if (!entries) return findInWhole(path, wanted, limit);
    for (const entry of entries) {
      if (entry.section !== 'files') return { keys, more: false }; // the chunks follow the files
      const key = keyOf(path, entry);
      if (!key.toLowerCase().includes(wanted)) continue;
      if (keys.length === limit) return { keys, more: true };
      keys.push(parseFileLine(path, entry.line, entry.number).key); // a match is checked whole
    }
  }
  return { keys, more: false };
}

async function findInWhole(path: string, wanted: string, limit: number): Promise<{ keys: string[]; more: boolean }> {
  const { files } = await readManifest(path);
  files.forEach((file, i) => checkFile(path, file, `file ${i + 1}`));
  const matches = files.map((f) => f.key).filter((key) => key.toLowerCase().includes(wanted));
  return { keys: matches.slice(0, limit), more: matches.length > limit };
}

/** A file line's key as written (`{"key":"…",` first), read without parsing the line; other lines are parsed whole. */
const KEY_FIRST = /^\s*\{"key":("(?:[^"\\]|\\.)*")[,}]/;

function keyOf(path: string, { line, number }: EntryLine): string {
  const quoted = KEY_FIRST.exec(line)?.[1];
  if (quoted === undefined) return parseFileLine(path, line, number).key;
  return quoted.includes('\\') ? (parseEntry(path, quoted, number) as string) : quoted.slice(1, -1);
}

function parseFileLine(path: string, line: string, number: number): ManifestFile {
  const file = parseEntry(path, line, number);
  checkFile(path, file, `line ${number}`);
  return file;
}

function parseChunkLine(path: string, line: string, number: number): ManifestChunk {
  const chunk = parseEntry(path, line, number);
  checkChunk(path, chunk, `line ${number}`);
  return chunk;
}

function checkFile(path: string, file: unknown, where: string): asserts file is ManifestFile {
  if (!isObject(file) || typeof file.key !== 'string') throw badEntry(path, where, 'a file entry without a "key"');
}

function checkChunk(path: string, chunk: unknown, where: string): asserts chunk is ManifestChunk {
  if (chunkEntryProblem(chunk) !== undefined) throw badEntry(path, where, 'a chunk entry without one of "id", "file", "index", "offset", "size", "checksum" or "copies"');
  for (const copy of (chunk as ManifestChunk).copies) {
    if (typeof copy.location !== 'string') throw badEntry(path, where, `a copy of chunk ${(chunk as ManifestChunk).id} without its "nodeId" and "location"`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badEntry(path: string, where: string, what: string): ManifestError {
  return new ManifestError(`${path} has ${what} on ${where}. Fix: pass a manifest a run wrote, unedited, or the latest one.`);
}
