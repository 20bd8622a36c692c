// Chunk ids come from object keys, which may hold anything: `../x`, `/abs`, `a\b`, newlines, unicode.
// A chunk's file name keeps letters and digits of any script readable and percent-encodes everything
// else byte by byte, so it can never contain a separator, never be `.` or `..`, and never collide.
import { createHash } from 'node:crypto';

const KEEP = /[\p{L}\p{N}_]/u;
const MAX_NAME_BYTES = 200;

export function encodeNamePart(text: string): string {
  let out = '';
  for (const char of text) {
    if (KEEP.test(char) || ((char === '.' || char === '-') && out !== '')) out += char;
    else for (const byte of Buffer.from(char, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** File name (without extension) for a chunk id; long names keep a readable head and a hash of the whole. */
export function chunkFileName(chunkId: string): string {
  const encoded = encodeNamePart(chunkId);
  if (Buffer.byteLength(encoded) <= MAX_NAME_BYTES) return encoded;
  const digest = createHash('sha256').update(chunkId).digest('hex').slice(0, 16);
  let head = encoded.slice(0, MAX_NAME_BYTES - 40);
  while (Buffer.byteLength(head) > MAX_NAME_BYTES - 40) head = head.slice(0, -1);
  return `${head.replace(/%[0-9A-F]?$/, '')}~${digest}`;
}
