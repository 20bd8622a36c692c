// @ts-check
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum GCS keeps for every object and S3 for
// objects uploaded with it; and combining for CRC-32 (IEEE, computed by zlib.crc32), which S3 keeps for what
// the current AWS SDKs upload. Plain JavaScript so the hashing threads load it without a type stripper.
// CRC-32C runs on the CPU's CRC instructions through the native @node-rs/crc32 (prebuilt binaries; ~3 GB/s on a
// busy core here, 5× MD5), else as slicing-by-8 over 32-bit words in JavaScript (~0.6–1.3 GB/s). combine() joins
// the CRCs of two adjacent byte runs, so a file's CRC follows from its chunks' without reading them again.
import { createRequire } from 'node:module';

const POLY = 0x82f63b78;
/** Eight 256-entry tables, one after another. */
const TABLE = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = /** @type {number} */ (TABLE[n]);
  for (let k = 1; k < 8; k++) {
    c = /** @type {number} */ (TABLE[c & 0xff]) ^ (c >>> 8);
    TABLE[k * 256 + n] = c;
  }
}
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** @typedef {(data: Uint8Array, initial?: number) => number} NativeCrc32c */
/** @type {NativeCrc32c | undefined | null} null: not looked for yet */
let native = null;

/**
 * The native CRC-32C, or undefined where @node-rs/crc32 has no binary for this platform (or is not installed).
 * Loaded on first use: every hashing thread imports this module, and loading the binary costs each thread
 * ~10-30 ms at start that a run without CRCs never gets back.
 * @returns {NativeCrc32c | undefined}
 */
function nativeCrc32c() {
  if (native !== null) return native;
  native = undefined;
  if (process.env.CLOUD_INGEST_CRC32C === 'js') return native;
  try {
    const loaded = /** @type {{ crc32c: NativeCrc32c }} */ (createRequire(import.meta.url)('@node-rs/crc32'));
    if (loaded.crc32c(new Uint8Array([0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39])) === 0xe3069283) native = loaded.crc32c;
  } catch {
    // no binary for this platform: the JavaScript CRC
  }
  return native;
}

/** Which CRC-32C implementation runs: 'native' (CPU instructions) or 'js' (the fallback). */
export function crc32cImplementation() {
  return nativeCrc32c() ? 'native' : 'js';
}

/**
 * The CRC-32C of the bytes so far (`crc`, 0 for none) followed by `data`.
 * @param {number} crc
 * @param {Uint8Array} data
 * @returns {number} unsigned 32-bit
 */
export function crc32cUpdate(crc, data) {
  const crc32c = nativeCrc32c();
  if (crc32c) return crc32c(data, crc) >>> 0;
  return crc32cUpdateJs(crc, data);
}

/**
 * The JavaScript CRC-32C (slicing-by-8), for platforms without the native one.
 * @param {number} crc
 * @param {Uint8Array} data
 * @returns {number} unsigned 32-bit
 */
export function crc32cUpdateJs(crc, data) {
  const t = TABLE;
  let c = ~crc;
  let i = 0;
  const n = data.length;
  if (LITTLE_ENDIAN) {
    while (i < n && ((data.byteOffset + i) & 3) !== 0) c = /** @type {number} */ (t[(c ^ /** @type {number} */ (data[i++])) & 0xff]) ^ (c >>> 8);
    const words = new Int32Array(data.buffer, data.byteOffset + i, ((n - i) >>> 3) << 1);
    for (let w = 0; w < words.length; w += 2) {
      const a = c ^ /** @type {number} */ (words[w]);
      const b = /** @type {number} */ (words[w + 1]);
      c =
        /** @type {number} */ (t[1792 + (a & 0xff)]) ^
        /** @type {number} */ (t[1536 + ((a >>> 8) & 0xff)]) ^
        /** @type {number} */ (t[1280 + ((a >>> 16) & 0xff)]) ^
        /** @type {number} */ (t[1024 + (a >>> 24)]) ^
        /** @type {number} */ (t[768 + (b & 0xff)]) ^
        /** @type {number} */ (t[512 + ((b >>> 8) & 0xff)]) ^
        /** @type {number} */ (t[256 + ((b >>> 16) & 0xff)]) ^
        /** @type {number} */ (t[b >>> 24]);
    }
    i += words.length * 4;
  }
  while (i < n) c = /** @type {number} */ (t[(c ^ /** @type {number} */ (data[i++])) & 0xff]) ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * @param {Uint32Array} matrix 32x32 over GF(2), one column per entry
 * @param {number} vector
 */
function times(matrix, vector) {
  let sum = 0;
  for (let i = 0; vector !== 0; i++, vector >>>= 1) if (vector & 1) sum ^= /** @type {number} */ (matrix[i]);
  return sum >>> 0;
}

/** @param {Uint32Array} matrix */
function squared(matrix) {
  const out = new Uint32Array(32);
  for (let i = 0; i < 32; i++) out[i] = times(matrix, /** @type {number} */ (matrix[i]));
  return out;
}

/**
 * The CRC of A followed by B, from crc(A), crc(B) and B's length, for the reflected 32-bit CRC with `poly`
 * (zlib's crc32_combine).
 * @param {number} poly
 * @param {number} crcA
 * @param {number} crcB
 * @param {number} lengthB bytes
 * @returns {number}
 */
function combine(poly, crcA, crcB, lengthB) {
  if (lengthB <= 0) return crcA >>> 0;
  // The operator for one zero bit, then squared to 2, 4 bits; each further square doubles the zeros applied.
  let odd = new Uint32Array(32);
  odd[0] = poly;
  for (let i = 1, row = 1; i < 32; i++, row <<= 1) odd[i] = row;
  let even = squared(odd);
  odd = squared(even);
  let crc = crcA >>> 0;
  let length = lengthB;
  do {
    even = squared(odd);
    if (length % 2 === 1) crc = times(even, crc);
    length = Math.floor(length / 2);
    if (length === 0) break;
    odd = squared(even);
    if (length % 2 === 1) crc = times(odd, crc);
    length = Math.floor(length / 2);
  } while (length !== 0);
  return (crc ^ crcB) >>> 0;
}

/**
 * The CRC-32C of A followed by B, from crc(A), crc(B) and B's length.
 * @param {number} crcA
 * @param {number} crcB
 * @param {number} lengthB
 */
export function crc32cCombine(crcA, crcB, lengthB) {
  return combine(POLY, crcA, crcB, lengthB);
}

/**
 * The same for CRC-32 (IEEE, zlib.crc32): the checksum S3 keeps for objects the current AWS SDKs upload.
 * @param {number} crcA
 * @param {number} crcB
 * @param {number} lengthB
 */
export function crc32Combine(crcA, crcB, lengthB) {
  return combine(0xedb88320, crcA, crcB, lengthB);
}

/**
 * Big-endian, base64: the form GCS (crc32c) and S3 (ChecksumCRC32C) use.
 * @param {number} crc
 */
export function crcBase64(crc) {
  const bytes = new Uint8Array([(crc >>> 24) & 0xff, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff]);
  return Buffer.from(bytes).toString('base64');
}
