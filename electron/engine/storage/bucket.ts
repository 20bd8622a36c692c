// The portable wrapper every driver sits behind: glob filtering, key order, exact-length reads,
// version checks between reads, clear errors, and retries for metadata calls. Written once.
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import picomatch from 'picomatch';
import { withRetries } from '../retry.ts';
import type { RetryPolicy } from '../retry.ts';
import { StorageError } from './driver.ts';
import type { ByteRange, LocalFile, ObjectInfo, SourceInfo, StorageDriver, StorageErrorCode } from './driver.ts';
import { readInParts } from './read-in-parts.ts';
import type { ReadInPartsOptions } from './read-in-parts.ts';

const HINTS: Record<StorageErrorCode, string> = {
  not_found: 'the object is gone; it may have been deleted during the ingest.',
  bucket_not_found: 'check the bucket/container name in data_sources and the region or endpoint.',
  permission_denied: 'the credentials in use may not read this bucket; grant read and list access.',
  unauthenticated: "the credentials are missing, wrong or expired; refresh them in the SDK's usual place (env, profile, identity).",
  unreachable: 'the endpoint did not answer; check endpoint, network and that the service is running.',
  precondition_failed: 'the object changed while it was being ingested; run again once it is stable.',
  transient: 'a temporary failure; it was retried.',
  invalid_argument: 'a bad request; check prefix and pattern.',
  unknown: 'see the cause above.',
};

export function matcherFor(pattern: string): (key: string) => boolean {
  // A pattern without a slash matches the file name at any depth (`*.bin`); with one, the whole key.
  const isMatch = picomatch(pattern, { dot: true, basename: !pattern.includes('/') });
  // Glob regexes do not match line breaks; a key may hold one, and `*` should still cover it.
  return (key) => isMatch(key.replace(/[\r\n]/g, '\uFFFD'));
}

export class Bucket {
  readonly driver: StorageDriver;
  private readonly retry: RetryPolicy;

  constructor(driver: StorageDriver, retry: RetryPolicy) {
    this.driver = driver;
    this.retry = retry;
  }

  get info(): SourceInfo {
    return this.driver.info;
  }

  /**
   * The objects under `prefix` whose key (relative to the prefix) matches `pattern`, one driver page at a time, as
   * each page arrives: only the page being filtered is held, so a listing of a million objects never is. Empty
   * pages (nothing matched) are skipped, and a key equal to the one yielded just before it is dropped.
   *
   * The order is the store's key order: S3, GCS and Azure list lexicographically (S3 by the keys' UTF-8 bytes, which
   * orders a key with a character beyond U+FFFF differently from a JS string sort), the local driver walks its folder
   * in the order sorting the keys as JS strings gives. The same objects therefore come in the same order on every
   * listing, which is what makes a run's plan the same when it is resumed.
   */
  async *listPages(options: { pattern: string; prefix?: string; signal?: AbortSignal }): AsyncGenerator<ObjectInfo[]> {
    const prefix = options.prefix ?? '';
    const matches = matcherFor(options.pattern);
    let previousKey: string | undefined;
    let token: string | undefined;
    do {
      const page = await this.call('list', undefined, () => this.driver.listPage(prefix, token, options.signal), options.signal);
      const kept: ObjectInfo[] = [];
      for (const object of page.objects) {
        if (object.key === previousKey || !matches(object.key.slice(prefix.length))) continue;
        kept.push(object);
        previousKey = object.key;
      }
      token = page.nextPageToken;
      if (kept.length > 0) yield kept;
    } while (token);
  }

  /** Every object listPages gives, held at once, sorted by key as JS strings compare, each key once. */
  async list(options: { pattern: string; prefix?: string; signal?: AbortSignal }): Promise<ObjectInfo[]> {
    const all: ObjectInfo[] = [];
    for await (const page of this.listPages(options)) for (const object of page) all.push(object);
    all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    // Each key once, as the last page that listed it gave it.
    return all.filter((object, i) => all[i + 1]?.key !== object.key);
  }

  stat(key: string, signal?: AbortSignal): Promise<ObjectInfo> {
    return this.call('stat', key, () => this.driver.stat(key, signal), signal);
  }

  /**
   * Exactly `range.length` bytes of the version `expectedEtag` names. A short or long stream, or a read that
   * sees another version, fails with precondition_failed: two versions are never stitched together.
   * Not retried here: the engine retries whole chunk attempts, since a stream can also fail halfway.
   */
  async read(object: ObjectInfo, range: ByteRange, signal?: AbortSignal): Promise<Readable> {
    let result;
    try {
      result = await this.driver.read(object.key, range, { ...(object.etag ? { ifMatch: object.etag } : {}), ...(signal ? { signal } : {}) });
    } catch (error) {
      throw this.wrap(error, 'read', object.key);
    }
    if (object.etag && result.etag && normalizeEtag(result.etag) !== normalizeEtag(object.etag)) {
      result.stream.destroy();
      throw this.wrap(new StorageError({ code: 'precondition_failed', store: this.info.kind, bucket: this.info.bucket, key: object.key, message: `${object.key} changed since it was listed (version ${object.etag} → ${result.etag})`, hint: HINTS.precondition_failed }), 'read', object.key);
    }
    const checked = result.stream.pipe(new ExactLength(range.length, () => this.wrap(new StorageError({ code: 'precondition_failed', store: this.info.kind, bucket: this.info.bucket, key: object.key, message: `${object.key} returned a different number of bytes than listed (it grew or shrank)`, hint: HINTS.precondition_failed }), 'read', object.key)));
    result.stream.on('error', (error) => checked.destroy(this.wrap(error, 'read', object.key)));
    // pipe() does not pass a consumer's destroy upstream: close the store's stream (a file handle, a socket) too.
    checked.once('close', () => result.stream.destroyed || result.stream.destroy());
    return checked;
  }

  /**
   * `range` as one stream read in parts, each as `read` checks it (see readInParts in read-in-parts.ts): several
   * ranged reads at once, consumed in order, each resumed from its first byte not yet given when it breaks.
   */
  readInParts(object: ObjectInfo, range: ByteRange, options: ReadInPartsOptions): Promise<Readable> {
    if (range.length === 0) return this.read(object, range, options.signal);
    return readInParts((part, signal) => this.read(object, part, signal), this.retry, range, options);
  }

  /**
   * The local file behind an object, when the driver has one (see StorageDriver.localPath), and the folder it must
   * lie inside, checked by whoever opens it: a failure to open it (gone, or leading out) comes through copyError.
   */
  async localFile(object: ObjectInfo): Promise<LocalFile | undefined> {
    if (!this.driver.localPath) return undefined;
    try {
      return await this.driver.localPath(object.key);
    } catch (error) {
      throw this.wrap(error, 'read', object.key);
    }
  }

  /** Turns a failed local copy's source-side error into the same StorageError a streamed read would give. */
  copyError(error: { code: string; message: string }, key: string): StorageError {
    if (error.code === 'CHANGED') {
      return this.wrap(new StorageError({ code: 'precondition_failed', store: this.info.kind, bucket: this.info.bucket, key, message: `${key}: ${error.message}`, hint: HINTS.precondition_failed }), 'read', key);
    }
    // The hashing thread's containment check (FileCopyJob.inside) fails with EACCES and says so: not a permission
    // the user could grant, so not that hint.
    if (error.code === 'EACCES' && error.message.endsWith('outside the source folder')) {
      return this.wrap(new StorageError({ code: 'permission_denied', store: this.info.kind, bucket: this.info.bucket, key, message: `${key} resolves outside the source folder`, hint: 'symlinks and .. may not leave the data folder.' }), 'read', key);
    }
    return this.wrap(error, 'read', key);
  }

  close(): Promise<void> {
    return this.driver.close();
  }

  /** Turns any driver error into a StorageError that names the store, the bucket and a hint. */
  wrap(error: unknown, operation: string, key?: string): StorageError {
    if (error instanceof StorageError && error.message.includes(this.info.bucket)) return error;
    const code = error instanceof StorageError ? error.code : this.driver.errorCode(error);
    const detail = errorDetail(error);
    const what = key ? `${operation} ${key}` : operation;
    return new StorageError({
      code,
      store: this.info.kind,
      bucket: this.info.bucket,
      ...(key ? { key } : {}),
      message: `${this.info.kind} ${this.info.location}${this.info.endpoint ? ` (endpoint ${this.info.endpoint})` : ''}: ${what} failed: ${detail}`,
      hint: error instanceof StorageError && error.hint ? error.hint : HINTS[code],
      cause: error,
    });
  }

  private call<T>(operation: string, key: string | undefined, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withRetries(
      async () => {
        try {
          return await fn();
        } catch (error) {
          throw this.wrap(error, operation, key);
        }
      },
      this.retry,
      { isRetryable: (e) => e instanceof StorageError && e.retryable, ...(signal ? { signal } : {}) },
    );
  }
}

function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/"/g, '');
}

/** Passes bytes through and fails the stream if it ends short of, or runs past, the expected length. */
class ExactLength extends Transform {
  private seen = 0;
  private readonly expected: number;
  private readonly failure: () => Error;

  constructor(expected: number, failure: () => Error) {
    super();
    this.expected = expected;
    this.failure = failure;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.expected) return callback(this.failure());
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(this.seen === this.expected ? null : this.failure());
  }
}

/**
 * What an error says, for a message: its own text, or when it has none (an SDK's error for an answer it could not
 * read, such as Azurite's empty 500 on a blob name XML cannot carry) its kind, code and HTTP status.
 */
function errorDetail(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.message.trim() !== '') return error.message;
  const { code, statusCode } = error as Error & { code?: unknown; statusCode?: unknown };
  const parts = [error.name, typeof code === 'string' ? code : undefined, typeof statusCode === 'number' ? `HTTP ${statusCode}` : undefined];
  return `${parts.filter((p) => p !== undefined && p !== '').join(', ')} with no message from the store`;
}
