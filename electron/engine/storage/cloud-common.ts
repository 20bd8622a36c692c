// Small pieces the S3, GCS and Azure drivers share: classifying network-level failures (the same
// Node socket errors surface through every SDK), tagging an error with the operation that raised it,
// and zero-length reads. Nothing here knows about a particular store.
import { Readable } from 'node:stream';
import type { StorageErrorCode } from './driver.ts';

/** Connection could not be made at all: wrong host/port, nothing listening, DNS failure. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ERR_INVALID_URL']);
/** Connection made, then lost or too slow: worth another try. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'ESOCKETTIMEDOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_HTTP2_STREAM_ERROR',
]);

type Dict = Record<string, unknown>;

function asDict(v: unknown): Dict | undefined {
  return typeof v === 'object' && v !== null ? (v as Dict) : undefined;
}

/** Walks `cause` / `errors` (AggregateError) chains, nearest first, bounded. */
export function errorChain(error: unknown): Dict[] {
  const out: Dict[] = [];
  const queue: unknown[] = [error];
  while (queue.length > 0 && out.length < 12) {
    const d = asDict(queue.shift());
    if (!d || out.includes(d)) continue;
    out.push(d);
    if (d.cause !== undefined) queue.push(d.cause);
    if (Array.isArray(d.errors)) queue.push(...(d.errors as unknown[]));
  }
  return out;
}

/** 'unreachable' / 'transient' for socket-level failures anywhere in the chain, else undefined. */
export function networkErrorCode(error: unknown): StorageErrorCode | undefined {
  for (const e of errorChain(error)) {
    const code = typeof e.code === 'string' ? e.code : typeof e.errno === 'string' ? e.errno : undefined;
    if (code && UNREACHABLE_CODES.has(code)) return 'unreachable';
    if (code && TRANSIENT_CODES.has(code)) return 'transient';
  }
  for (const e of errorChain(error)) {
    const msg = typeof e.message === 'string' ? e.message : '';
    if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/.test(msg)) return 'unreachable';
    if (/ECONNRESET|EPIPE|ETIMEDOUT|socket hang up|aborted|premature close|terminated|other side closed/i.test(msg)) return 'transient';
  }
  return undefined;
}

/** HTTP statuses every store uses the same way. */
export function httpStatusCode(status: number | undefined): StorageErrorCode | undefined {
  if (status === undefined) return undefined;
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'permission_denied';
  if (status === 412) return 'precondition_failed';
  if (status === 416) return 'invalid_argument';
  if (status === 408 || status === 429 || status >= 500) return 'transient';
  return undefined;
}

export function isAbortError(error: unknown): boolean {
  return errorChain(error).some((e) => e.name === 'AbortError' || e.code === 'ABORT_ERR');
}

/** Which driver call raised an error: a 404 from a listing means the bucket is missing, from a read the object. */
export type DriverOp = 'list' | 'stat' | 'read';
const OP = Symbol.for('cloud-ingest.driver-op');

export function tagOp<T>(error: T, op: DriverOp): T {
  const d = asDict(error);
  if (d && !(OP in d)) {
    try {
      Object.defineProperty(d, OP, { value: op, enumerable: false });
    } catch {
      // frozen error objects keep their own classification
    }
  }
  return error;
}

export function opOf(error: unknown): DriverOp | undefined {
  const d = asDict(error);
  return d ? ((d as Record<symbol, unknown>)[OP] as DriverOp | undefined) : undefined;
}

/** Raised by a driver itself (not the SDK) when it detects a problem the SDK did not report. */
export class DriverConditionError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DriverConditionError';
    this.code = code;
  }
}

export function emptyStream(): Readable {
  return Readable.from([]);
}

/** Rejects with the signal's reason if it is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}

/** `s3://bucket/prefix` style location for messages and the manifest. */
export function location(scheme: string, bucket: string, prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '');
  return `${scheme}://${bucket}${p ? `/${p}` : ''}`;
}

/** An endpoint with any credentials or query (SAS) removed, safe to show. */
export function redactEndpoint(endpoint: string | undefined): string | undefined {
  if (!endpoint) return undefined;
  try {
    const u = new URL(endpoint);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return endpoint.replace(/\?.*$/, '');
  }
}
