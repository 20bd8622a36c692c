// Runtime checks for every pull-mode message, at the end that receives it: a work item at the worker, a result,
// a heartbeat and a progress note at the coordinator. A message either matches its type exactly (no unknown
// keys, bounded strings, safe integers, ranges that add up) or is refused with an error naming the field.
import { checkKit } from '../checks.ts';
import type { Check } from '../checks.ts';
import { CHECKSUM_ALGORITHMS } from '../config/types.ts';
import { CONTRACT_VERSION } from './contract.ts';
import type { FailedResult, StoreDescriptor, StoredResult, WorkerHeartbeat, WorkItem, WorkProgress, WorkResult } from './contract.ts';

export class ContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractError';
  }
}

/** Largest message either side accepts; a work item is well under 16 KiB. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_KEY = 4096;
const MAX_ID = 1024;

const { str, count, oneOf, literal, list, object, req, opt } = checkKit((message) => new ContractError(message), { maxString: MAX_KEY });

const version = literal(CONTRACT_VERSION);
const runId = str({ min: 1, max: 128, pattern: /^[A-Za-z0-9._-]+$/, what: 'a run id (letters, digits, ".", "_", "-")' });
const nodeId = str({ min: 1, max: 128, pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/, what: 'a node id (letters, digits, ".", "_", "-")' });
// eslint-disable-next-line no-control-regex
const chunkId = str({ min: 1, max: MAX_ID, pattern: /^[^\u0000-\u001f\u007f]+$/, what: 'a chunk id without control characters' });
const key = str({ min: 1, max: MAX_KEY });
const etag = str({ min: 1, max: 1024 });
const endpoint = str({ min: 1, max: 2048, pattern: /^https?:\/\/[^\s]+$/, what: 'an http(s) URL' });
const bucketName = str({ min: 1, max: 255, pattern: /^[^\s/]+$/, what: 'a bucket or container name' });
const timestamp = str({ min: 1, max: 64, pattern: /^\d{4}-\d\d-\d\dT[\d:.]+Z$/, what: 'an ISO 8601 UTC time' });
const reason = str({ min: 1, max: 4096 });
const crcKind = oneOf(['crc32c', 'crc32'] as const);
const checksumAlgorithm = oneOf(CHECKSUM_ALGORITHMS);

const HEX_LENGTH: Record<(typeof CHECKSUM_ALGORITHMS)[number], number> = { md5: 32, sha256: 64, crc32c: 8 };

const checksum: Check<StoredResult['checksum']> = (v, path) => {
  const c = object({ algorithm: req(checksumAlgorithm), hex: req(str({ min: 1, max: 64, pattern: /^[0-9a-f]+$/, what: 'a lowercase hex digest' })) })(v, path);
  if (c.hex.length !== HEX_LENGTH[c.algorithm]) throw new ContractError(`${path}.hex: a ${c.algorithm} digest has ${HEX_LENGTH[c.algorithm]} hex digits, got ${c.hex.length}`);
  return c;
};

const crc: Check<NonNullable<StoredResult['crc']>> = (v, path) => {
  const c = object({ kind: req(crcKind), value: req(count()) })(v, path);
  if (c.value > 0xffffffff) throw new ContractError(`${path}.value: a CRC is a 32-bit unsigned number`);
  return c;
};

const absolutePath = str({ min: 1, max: MAX_KEY, pattern: /^\//, what: 'an absolute path' });

export const storeDescriptor: Check<StoreDescriptor> = (v, path) => {
  const kind = typeof v === 'object' && v !== null ? (v as Record<string, unknown>).kind : undefined;
  switch (kind) {
    case 'local':
      return object({ kind: req(literal('local')), path: req(absolutePath) })(v, path);
    case 's3':
      return object({ kind: req(literal('s3')), bucket: req(bucketName), region: opt(str({ min: 1, max: 64 })), endpoint: opt(endpoint) })(v, path);
    case 'gcs':
      return object({ kind: req(literal('gcs')), bucket: req(bucketName), endpoint: opt(endpoint) })(v, path);
    case 'azure':
      return object({ kind: req(literal('azure')), container: req(bucketName), endpoint: opt(endpoint) })(v, path);
    default:
      throw new ContractError(`${path}.kind: expected one of local, s3, gcs, azure`);
  }
};

const workItemShape = object({
  v: req(version),
  runId: req(runId),
  chunkId: req(chunkId),
  key: req(key),
  index: req(count()),
  offset: req(count()),
  size: req(count()),
  objectSize: req(count()),
  etag: opt(etag),
  nodeId: req(nodeId),
  targets: req(list(nodeId, { min: 1, max: 64 })),
  checksum: req(checksumAlgorithm),
  crc: opt(crcKind),
  store: req(storeDescriptor),
});

export const workItem: Check<WorkItem> = (v, path) => {
  const item = workItemShape(v, path);
  if (item.offset + item.size > item.objectSize) throw new ContractError(`${path}: bytes ${item.offset}..${item.offset + item.size} lie past the object's ${item.objectSize} bytes`);
  if (!item.targets.includes(item.nodeId)) throw new ContractError(`${path}.targets: does not name the item's own node ${item.nodeId}`);
  return item;
};

const resultBase = {
  v: req(version),
  runId: req(runId),
  chunkId: req(chunkId),
  nodeId: req(nodeId),
  delivery: req(count({ min: 1 })),
  at: req(timestamp),
};

const storedResult: Check<StoredResult> = object({
  ...resultBase,
  status: req(oneOf(['stored', 'exists'] as const)),
  size: req(count()),
  checksum: req(checksum),
  crc: opt(crc),
  location: req(str({ min: 1, max: MAX_ID * 3 + 64 })),
  bytesRead: req(count()),
  elapsedMs: req(count()),
});

const failedResult: Check<FailedResult> = object({
  ...resultBase,
  status: req(literal('failed')),
  code: req(str({ min: 1, max: 64, pattern: /^[a-z_]+$/, what: 'an error code (lowercase letters and "_")' })),
  reason: req(reason),
});

export const workResult: Check<WorkResult> = (v, path) => {
  const status = typeof v === 'object' && v !== null ? (v as Record<string, unknown>).status : undefined;
  return status === 'failed' ? failedResult(v, path) : storedResult(v, path);
};

export const workerHeartbeat: Check<WorkerHeartbeat> = object({
  v: req(version),
  nodeId: req(nodeId),
  at: req(timestamp),
  startedAt: req(timestamp),
  inFlight: req(count()),
  stored: req(count()),
  existed: req(count()),
  failed: req(count()),
  bytesRead: req(count()),
  chunkCount: req(count()),
  bytesHeld: req(count()),
  freeBytes: req(count()),
});

export const workProgress: Check<WorkProgress> = object({
  v: req(version),
  runId: req(runId),
  chunkId: req(chunkId),
  nodeId: req(nodeId),
  delivery: req(count({ min: 1 })),
  bytes: req(count()),
});

/** Parses one message body (UTF-8 JSON) and checks it; throws ContractError naming what is wrong. */
export function decode<T>(check: Check<T>, body: Uint8Array | string, what: string): T {
  const size = typeof body === 'string' ? body.length : body.byteLength;
  if (size > MAX_MESSAGE_BYTES) throw new ContractError(`${what}: ${size} bytes, more than the ${MAX_MESSAGE_BYTES} a message may have`);
  let data: unknown;
  try {
    data = JSON.parse(typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new ContractError(`${what}: not UTF-8 JSON`);
  }
  return check(data, what);
}

/** Checks a message before it is sent, so a sender never puts on the wire what the other end would refuse. */
export function encode<T>(check: Check<T>, message: T, what: string): Uint8Array {
  check(message, what);
  const bytes = new TextEncoder().encode(JSON.stringify(message));
  if (bytes.byteLength > MAX_MESSAGE_BYTES) throw new ContractError(`${what}: ${bytes.byteLength} bytes, more than the ${MAX_MESSAGE_BYTES} a message may have`);
  return bytes;
}
