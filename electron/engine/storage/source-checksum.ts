// Checks a delivered file against the checksum its store keeps for the whole object, when it keeps one.
//
// Which store checksum is checked, best first:
//   1. MD5 — S3 ETag of a single-part upload (not SSE-KMS/SSE-C), GCS md5Hash, Azure Content-MD5.
//      Free when the run's algorithm is md5 and the file is one chunk (the chunk's md5 is the file's);
//      otherwise the delivered chunks are hashed again, in order, while later chunks are still arriving
//      (SourceChecksumFollower), or read back at the end when that could not be done.
//   2. SHA-256 — S3 ChecksumSHA256 (full-object). Free for one chunk when the run uses sha256.
//   3. CRC32C / CRC32 — GCS crc32c (also on composite objects), S3 ChecksumCRC32C / ChecksumCRC32
//      (full-object). Combined from the CRCs the hashing threads take of each chunk as it is written
//      (combinedCrc); chunks without one (from a node agent, or an earlier run) are read back at the end.
// Whatever is read back is hashed on a hashing thread, never on the caller's.
// The manifest records which one was checked: kind is `<store>-<what>` (e.g. s3-etag-md5,
// gcs-md5, gcs-crc32c, azure-content-md5, s3-sha256) when the store is known, else just the algorithm.
import type { Readable } from 'node:stream';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { ChunkCrc, ManifestFile } from '../../../shared/types.ts';
import { crc32Combine, crc32cCombine, crcBase64 } from '../hash/crc32c.js';
import { isCrcKind } from '../hash/pool.ts';
import type { HashPool, SequenceAlgorithm, SequentialHash } from '../hash/pool.ts';
import type { ObjectInfo, SourceInfo } from './driver.ts';

export interface SourceChecksumInput {
  object: ObjectInfo;
  /** The file's chunks in order, with their checksums. */
  chunks: { id: string; checksum: string }[];
  algorithm: ChecksumAlgorithm;
  pool: HashPool;
  /** Where a delivered chunk can be read again: its file on this machine (hashed on a hashing thread), or a stream. */
  chunkBytes: (chunkId: string) => ChunkBytes;
  signal?: AbortSignal;
  /** The store the object came from; names the checksum kind in the manifest. */
  store?: SourceInfo['kind'];
}

/** A store checksum is checked by a hash or CRC a hashing thread can compute. */
export type SourceChecksumKind = SequenceAlgorithm;

export interface SourceChecksumPlan {
  algorithm: SourceChecksumKind;
  /** As the manifest shows it: md5/sha256 in hex, crc32c in base64 (the stores' own form). */
  value: string;
  kind: string;
}

const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function kindName(store: SourceInfo['kind'] | undefined, algorithm: SourceChecksumKind): string {
  switch (store) {
    case 's3':
      return algorithm === 'md5' ? 's3-etag-md5' : `s3-${algorithm}`;
    case 'gcs':
      return `gcs-${algorithm}`;
    case 'azure':
      return algorithm === 'md5' ? 'azure-content-md5' : `azure-${algorithm}`;
    default:
      return algorithm;
  }
}

/** Every usable whole-object checksum the store keeps for this object: MD5, SHA-256, CRC32C, CRC32. */
export function sourceChecksumPlans(object: ObjectInfo, store?: SourceInfo['kind']): SourceChecksumPlan[] {
  const sums = object.checksums;
  if (!sums) return [];
  const plans: SourceChecksumPlan[] = [];
  const md5 = object.multipart ? undefined : sums.md5Hex?.toLowerCase();
  if (md5 && /^[0-9a-f]{32}$/.test(md5)) plans.push({ algorithm: 'md5', value: md5, kind: kindName(store, 'md5') });
  if (sums.sha256Base64) {
    const hex = Buffer.from(sums.sha256Base64, 'base64').toString('hex');
    if (hex.length === 64) plans.push({ algorithm: 'sha256', value: hex, kind: kindName(store, 'sha256') });
  }
  if (sums.crc32cBase64 && Buffer.from(sums.crc32cBase64, 'base64').length === 4) {
    plans.push({ algorithm: 'crc32c', value: sums.crc32cBase64, kind: kindName(store, 'crc32c') });
  }
  if (sums.crc32Base64 && Buffer.from(sums.crc32Base64, 'base64').length === 4) {
    plans.push({ algorithm: 'crc32', value: sums.crc32Base64, kind: kindName(store, 'crc32') });
  }
  return plans;
}

/** The strongest store checksum for this object, or undefined when the store keeps none usable. */
export function planSourceChecksum(object: ObjectInfo, store?: SourceInfo['kind']): SourceChecksumPlan | undefined {
  return sourceChecksumPlans(object, store)[0];
}

/**
 * How a file is checked: `free` when its one chunk's checksum is the store's; `combine` when the store keeps a
 * CRC32C or CRC32, taken per chunk during delivery and combined (no bytes read again); else `follow`, a
 * second hash over the chunks in order as they arrive (see SourceChecksumFollower).
 */
export type SourceCheckMode = 'free' | 'combine' | 'follow';

export interface SourceCheckChoice {
  plan: SourceChecksumPlan;
  mode: SourceCheckMode;
}

/** The cheapest way to check this object against its store, or undefined when the store keeps no checksum. */
export function chooseSourceCheck(object: ObjectInfo, store: SourceInfo['kind'] | undefined, chunkCount: number, algorithm: ChecksumAlgorithm): SourceCheckChoice | undefined {
  const plans = sourceChecksumPlans(object, store);
  const free = plans.find((plan) => !needsRehash(plan, chunkCount, algorithm));
  if (free) return { plan: free, mode: 'free' };
  const crc = plans.find((plan) => isCrcKind(plan.algorithm));
  if (crc) return { plan: crc, mode: 'combine' };
  return plans[0] ? { plan: plans[0], mode: 'follow' } : undefined;
}

/** Whether checking this plan needs the delivered bytes hashed again (it does unless one chunk's own checksum is it). */
function needsRehash(plan: SourceChecksumPlan, chunkCount: number, algorithm: ChecksumAlgorithm): boolean {
  return !(chunkCount <= 1 && plan.algorithm === algorithm);
}

/** The CRC (base64) of chunks of these sizes from their own CRCs of that kind, or undefined if one has none. */
export function combinedCrc(kind: ChunkCrc['kind'], chunks: readonly { size: number; crc?: ChunkCrc }[]): string | undefined {
  const join = kind === 'crc32c' ? crc32cCombine : crc32Combine;
  let crc = 0;
  for (const chunk of chunks) {
    if (chunk.crc?.kind !== kind) return undefined;
    crc = join(crc, chunk.crc.value, chunk.size);
  }
  return crcBase64(crc);
}

/**
 * undefined when the store keeps no usable whole-object checksum. `known.plan` is the checksum to check
 * (default: the strongest); `known.actual` the file's value in that checksum, already computed (combined
 * CRCs, a follower's digest). Without it the chunks are read back now.
 */
export async function checkSourceChecksum(input: SourceChecksumInput, known: { plan?: SourceChecksumPlan; actual?: string } = {}): Promise<ManifestFile['sourceChecksum']> {
  const plan = known.plan ?? planSourceChecksum(input.object, input.store);
  if (!plan) return undefined;
  const { kind, value } = plan;
  // One chunk hashed with the same algorithm: its checksum is the file's, nothing to read back.
  if (!needsRehash(plan, input.chunks.length, input.algorithm)) {
    const actual = input.chunks[0]?.checksum ?? (plan.algorithm === 'md5' ? EMPTY_MD5 : plan.algorithm === 'crc32c' ? '00000000' : EMPTY_SHA256);
    return { kind, value, matched: sameChecksum(plan, actual) };
  }
  const actual = known.actual ?? (await digestChunks(input, plan.algorithm));
  return { kind, value, matched: actual === value };
}

/** Whether a chunk checksum (lowercase hex) is the store's value of this plan (hex, or base64 for a CRC). */
export function sameChecksum(plan: SourceChecksumPlan, hex: string): boolean {
  return isCrcKind(plan.algorithm) ? /^[0-9a-f]{8}$/.test(hex) && crcBase64(parseInt(hex, 16)) === plan.value : hex.toLowerCase() === plan.value;
}

/** Where a delivered chunk's bytes can be read again: a local file (hashed on the hashing thread) or a stream. */
export type ChunkBytes = { file: string } | { stream: () => Promise<Readable> };

/**
 * Hashes a file's delivered chunks in order while later chunks are still arriving, so the whole-object check
 * costs no pass of its own at the end. Chunk i is hashed as soon as chunks 0..i are all delivered.
 * MD5 and SHA-256 plans only (a CRC32C is combined from the chunks' own, see combinedCrc32c).
 */
export class SourceChecksumFollower {
  private readonly arrived: (ChunkBytes | undefined)[];
  private next = 0;
  private hash: SequentialHash | undefined;
  private work: Promise<void> = Promise.resolve();
  private failed = false;
  /** The chunk whose transfer was handed the hash to feed (continueFor), and what the hash had taken then. */
  private lent: { index: number; inputs: number } | undefined;
  private readonly pool: HashPool;
  private readonly algorithm: ChecksumAlgorithm;
  private readonly signal: AbortSignal | undefined;

  /** undefined when the object's check needs no follower (see chooseSourceCheck). */
  static for(choice: SourceCheckChoice | undefined, chunkCount: number, pool: HashPool, signal?: AbortSignal): SourceChecksumFollower | undefined {
    const algorithm = choice?.plan.algorithm;
    if (choice?.mode !== 'follow' || (algorithm !== 'md5' && algorithm !== 'sha256')) return undefined;
    return new SourceChecksumFollower(algorithm, chunkCount, pool, signal);
  }

  private constructor(algorithm: ChecksumAlgorithm, chunkCount: number, pool: HashPool, signal?: AbortSignal) {
    this.algorithm = algorithm;
    this.arrived = new Array<ChunkBytes | undefined>(chunkCount);
    this.pool = pool;
    this.signal = signal;
  }

  /**
   * For the transfer of chunk `index`, when every chunk before it is in the hash: the hash, for the transfer to
   * feed the chunk's bytes in the same pass (TransferOptions.continueHash), so the chunk is never read back.
   * undefined when chunks before it are still missing (it is then read back once they are in).
   */
  async continueFor(index: number): Promise<SequentialHash | undefined> {
    await this.work;
    if (this.failed || index !== this.next) return undefined;
    this.hash ??= this.pool.sequence(this.algorithm);
    this.lent = { index, inputs: this.hash.inputs };
    return this.hash;
  }

  /** Chunk `index` is delivered. */
  add(index: number, bytes: ChunkBytes): void {
    this.arrived[index] = bytes;
    while (this.next < this.arrived.length && this.arrived[this.next]) {
      const chunk = this.arrived[this.next]!;
      this.arrived[this.next] = undefined;
      const at = this.next++;
      const fedByTransfer = this.lent?.index === at && this.hash !== undefined && this.hash.inputs > this.lent.inputs;
      this.lent = undefined;
      if (!fedByTransfer) this.work = this.work.then(() => this.feed(chunk));
    }
  }

  /** The digest of all chunks, or undefined if some chunk never arrived or could not be read. */
  async result(): Promise<string | undefined> {
    await this.work;
    if (this.failed || this.next < this.arrived.length) {
      this.discard();
      return undefined;
    }
    this.hash ??= this.pool.sequence(this.algorithm);
    return await this.hash.digest();
  }

  discard(): void {
    this.failed = true;
    this.hash?.discard();
  }

  private async feed(chunk: ChunkBytes): Promise<void> {
    if (this.failed) return;
    try {
      this.hash ??= this.pool.sequence(this.algorithm);
      await addChunk(this.hash, chunk, this.signal);
    } catch {
      this.discard(); // the check at the end reads the chunks back and reports what is wrong
    }
  }
}

/** Adds one chunk's bytes to a sequential hash. */
function addChunk(hash: SequentialHash, chunk: ChunkBytes, signal?: AbortSignal): Promise<void> {
  return 'file' in chunk ? hash.addFile(chunk.file, signal) : chunk.stream().then((stream) => hash.addStream(stream));
}

/** Reads every chunk back, in order, through one hash or CRC on a hashing thread: the check when nothing was computed on the way. */
async function digestChunks(input: SourceChecksumInput, algorithm: SourceChecksumKind): Promise<string> {
  const hash = input.pool.sequence(algorithm);
  try {
    for (const chunk of input.chunks) await addChunk(hash, input.chunkBytes(chunk.id), input.signal);
    return await hash.digest();
  } finally {
    hash.discard();
  }
}
