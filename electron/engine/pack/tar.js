// @ts-check
// POSIX tar (ustar, with a pax extended header for names ustar cannot hold), as WebDataset shards use it.
// Headers are pure functions of a member's name and size: the same members always give the same bytes, so a
// shard can be rebuilt, resumed or repaired byte for byte. mtime, uid and gid are 0; mode is 0644.
// Plain JavaScript so the hashing threads load it without a type stripper: they write each member's header as
// they reach it, so a shard's headers are never built up front or posted between threads.

export const BLOCK = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = 2 * BLOCK;
/** Largest size an ustar size field holds (11 octal digits); members are far smaller (pack_below_mb ≤ a chunk). */
const MAX_USTAR_SIZE = 8 ** 11 - 1;

/** @param {number} size */
export function padded(size) {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/**
 * Whether `name` fits the ustar name field as it is: printable ASCII, at most 100 bytes.
 * @param {string} name
 */
function fitsUstar(name) {
  return name.length <= 100 && /^[\x20-\x7e]*$/.test(name);
}

/**
 * The header bytes that come before a member's data: a pax header (when needed) and the ustar header.
 * @param {string} name
 */
export function headerLength(name) {
  return fitsUstar(name) ? BLOCK : BLOCK + padded(Buffer.byteLength(paxRecord('path', name))) + BLOCK;
}

/**
 * The bytes a member takes in the archive: its headers and its data padded to a block.
 * @param {string} name
 * @param {number} size
 */
export function memberLength(name, size) {
  return headerLength(name) + padded(size);
}

/**
 * The headers of a regular-file member of `size` bytes named `name` (exactly headerLength(name) bytes).
 * @param {string} name
 * @param {number} size
 */
export function memberHeader(name, size) {
  const header = Buffer.alloc(headerLength(name));
  writeMemberHeader(header, 0, name, size);
  return header;
}

/**
 * Writes memberHeader(name, size) into `target` (zero-filled there) at `at`; returns its length.
 * @param {Buffer} target
 * @param {number} at
 * @param {string} name
 * @param {number} size
 */
export function writeMemberHeader(target, at, name, size) {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_USTAR_SIZE) throw new RangeError(`tar member ${name}: size ${size} does not fit a ustar header`);
  if (fitsUstar(name)) {
    writeUstar(target, at, name, size, '0');
    return BLOCK;
  }
  const record = Buffer.from(paxRecord('path', name), 'utf8');
  writeUstar(target, at, paxName(name), record.length, 'x');
  record.copy(target, at + BLOCK);
  const length = BLOCK + padded(record.length) + BLOCK;
  writeUstar(target, at + length - BLOCK, paxName(name), size, '0');
  return length;
}

/**
 * A pax record `"<len> <key>=<value>\n"`, whose decimal length counts itself.
 * @param {string} key
 * @param {string} value
 */
function paxRecord(key, value) {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body);
  let digits = 1;
  while (String(digits + bodyBytes).length !== digits) digits++;
  return `${digits + bodyBytes}${body}`;
}

/**
 * The ustar name readers that ignore pax see: printable ASCII, at most 100 bytes.
 * @param {string} name
 */
function paxName(name) {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_');
  return ascii.length <= 100 ? ascii : ascii.slice(ascii.length - 100);
}

/**
 * One ustar header block at `at` of a zero-filled `target`.
 * @param {Buffer} target
 * @param {number} at
 * @param {string} name
 * @param {number} size
 * @param {'0' | 'x'} type
 */
function writeUstar(target, at, name, size, type) {
  const header = target.subarray(at, at + BLOCK);
  header.write(name, 0, 100, 'latin1');
  header.write('0000644\0', 100, 'latin1');
  header.write('0000000\0', 108, 'latin1');
  header.write('0000000\0', 116, 'latin1');
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  header.write('00000000000\0', 136, 'latin1');
  header.write(type, 156, 'latin1');
  header.write('ustar\x0000', 257, 'latin1');
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += /** @type {number} */ (header[i]);
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}
