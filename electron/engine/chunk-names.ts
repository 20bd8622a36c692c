// Chunk ids come from object keys, which may hold anything: `../x`, `/abs`, `a\b`, newlines, unicode.
// A chunk's file name keeps letters and digits of any script readable and percent-encodes everything
// else byte by byte, so it can never contain a separator, never be `.` or `..`, and never collide.
// Names are built and cut on code points, never on UTF-16 units: a cut through a surrogate pair would leave a
// lone surrogate, which the file system stores as U+FFFD, and the name read back would no longer match the id.
import { createHash, hash } from 'node:crypto';

const KEEP = /[\p{L}\p{N}_]/u;
const MAX_NAME_BYTES = 200;
/** Long names: a readable head of at most this many bytes, then `~` and a hash of the whole id. */
const HEAD_BYTES = MAX_NAME_BYTES - 40;

/**
 * The encoded pieces of `text`, the units a long name may be cut between: a kept character (one code point), or
 * the percent escape of one UTF-8 byte (as names were always cut, so stored names keep matching).
 */
function encodedPieces(text: string): string[] {
  const pieces: string[] = [];
  for (const char of text) {
    if (KEEP.test(char) || ((char === '.' || char === '-') && pieces.length > 0)) pieces.push(char);
    else for (const byte of Buffer.from(char, 'utf8')) pieces.push(`%${byte.toString(16).toUpperCase().padStart(2, '0')}`);
  }
  return pieces;
}

/** The piece of each ASCII character (see encodedPieces): itself when kept, else its percent escape. */
const ASCII_PIECES = Array.from({ length: 128 }, (_, code) => {
  const char = String.fromCharCode(code);
  return KEEP.test(char) ? char : `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
});

/** Whether each ASCII character is kept as it is (see encodedPieces; `.` and `-` only after the first). */
const ASCII_KEPT = ASCII_PIECES.map((piece) => piece.length === 1);

/**
 * encodedPieces(text).join('') for ASCII text without building the pieces (most keys); undefined for any other.
 * Runs of kept characters are taken as slices, not a character at a time: a small file's name is built for every
 * file of a run.
 */
function encodeAscii(text: string): string | undefined {
  let encoded = '';
  let keptFrom = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 128) return undefined;
    if (ASCII_KEPT[code] || ((code === 0x2e || code === 0x2d) && i > 0)) continue;
    encoded += text.slice(keptFrom, i) + ASCII_PIECES[code];
    keptFrom = i + 1;
  }
  return keptFrom === 0 ? text : encoded + text.slice(keptFrom);
}

export function encodeNamePart(text: string): string {
  return encodeAscii(text) ?? encodedPieces(text).join('');
}

/**
 * File name (without extension) for a chunk id; long names keep a readable head and a hash of the whole. `~` is
 * always encoded in short names, so a short name never equals a long one.
 */
export function chunkFileName(chunkId: string): string {
  const ascii = encodeAscii(chunkId);
  if (ascii !== undefined && ascii.length <= MAX_NAME_BYTES) return ascii;
  const pieces = encodedPieces(chunkId);
  const encoded = pieces.join('');
  if (Buffer.byteLength(encoded) <= MAX_NAME_BYTES) return encoded;
  const digest = createHash('sha256').update(chunkId).digest('hex').slice(0, 16);
  let head = '';
  let bytes = 0;
  for (const piece of pieces) {
    const size = Buffer.byteLength(piece);
    if (bytes + size > HEAD_BYTES) break;
    head += piece;
    bytes += size;
  }
  return `${head}~${digest}`;
}

/**
 * Whether `name` is stored and listed by the file system as exactly this string: it converts to UTF-8 and back
 * unchanged (a lone surrogate would come back as U+FFFD).
 */
export function nameRoundTrips(name: string): boolean {
  return Buffer.from(name, 'utf8').toString('utf8') === name;
}

/**
 * The subfolder a node keeps chunk `chunkId` in (a folder node, the agent's store): the first two hex digits of its
 * id's SHA-256, so 256 subfolders share the chunks evenly whatever their names. Only hex digits: nothing in an id
 * can steer it out of the store.
 */
export function chunkSubfolder(chunkId: string): string {
  return hash('sha256', chunkId, 'hex').slice(0, 2);
}

/** Whether `name` is one of chunkSubfolder's names: the only subfolders a store reads chunks from. */
export function isSubfolderName(name: string): boolean {
  return /^[0-9a-f]{2}$/.test(name);
}
