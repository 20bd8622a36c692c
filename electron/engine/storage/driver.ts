// The one small interface every object store implements (local folder, S3, GCS, Azure Blob).
// Drivers only translate; listing order, glob filtering, error wording and retries live in the
// portable wrapper (bucket.ts) and its layers, written once for every driver.
import type { Readable } from 'node:stream';

export interface SourceInfo {
  kind: 'local' | 's3' | 'gcs' | 'azure';
  /** Bucket, container or folder, as a user would name it: `s3://bucket/prefix`, `/data/sim`. */
  location: string;
  /** Endpoint actually used, when not the store's default. */
  endpoint?: string;
  /** Bucket or container name, for error messages. */
  bucket: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** Version marker compared between reads: ETag, GCS generation, or size+mtime for local files. */
  etag?: string;
  /** Checksums the store keeps for the whole object (hex for md5, base64 for crc32c/crc32/sha256, as stores give them). */
  checksums?: { md5Hex?: string; crc32cBase64?: string; crc32Base64?: string; sha256Base64?: string };
  /** S3 multipart uploads: the ETag is not an MD5 of the content. */
  multipart?: boolean;
  /** The listing said the store keeps checksums it did not show (S3 lists only their names); stat() has them. */
  checksumsOnStat?: boolean;
  /**
   * Listed, but no key can name it exactly (a local file whose name is not valid UTF-8): why, naming it. The run
   * fails this object alone with this message and never reads it (nor packs it with others).
   */
  unreadable?: string;
}

export interface ListPage {
  objects: ObjectInfo[];
  nextPageToken?: string;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ReadResult {
  stream: Readable;
  /** Version marker the store returned with this read, compared against the listing's. */
  etag?: string;
}

/** A key's file on this machine (StorageDriver.localPath). */
export interface LocalFile {
  path: string;
  /** The source folder's real path: the file opened at `path` must lie inside it (LocalRange.inside, FileCopyJob.inside). */
  inside: string;
}

export type StorageErrorCode =
  | 'not_found'
  | 'bucket_not_found'
  | 'permission_denied'
  | 'unauthenticated'
  | 'unreachable'
  | 'precondition_failed'
  | 'transient'
  | 'invalid_argument'
  | 'unknown';

export interface StorageDriver {
  readonly info: SourceInfo;
  /** One page of objects whose keys start with `prefix`. Order within and across pages is the store's. */
  listPage(prefix: string, pageToken: string | undefined, signal?: AbortSignal): Promise<ListPage>;
  stat(key: string, signal?: AbortSignal): Promise<ObjectInfo>;
  /** A stream of exactly `range.length` bytes from `range.offset`. `ifMatch` makes the read conditional on the version. */
  read(key: string, range: ByteRange, options: { ifMatch?: string; signal?: AbortSignal }): Promise<ReadResult>;
  /**
   * Optional: the local file behind a key, for drivers whose objects are files on this machine. Lets a node on the
   * same machine copy the bytes on a hashing thread instead of streaming them through JavaScript. The path is not
   * resolved or checked here: whoever opens it must check that the file it opened lies inside `inside`.
   */
  localPath?(key: string): Promise<LocalFile>;
  /** Maps a provider error to a portable code; the wrapper decides wording and whether to retry. */
  errorCode(error: unknown): StorageErrorCode;
  close(): Promise<void>;
}

const RETRYABLE: ReadonlySet<StorageErrorCode> = new Set(['transient', 'unreachable']);

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  readonly store: SourceInfo['kind'];
  readonly bucket: string;
  readonly key: string | undefined;
  readonly hint: string;

  constructor(init: { code: StorageErrorCode; store: SourceInfo['kind']; bucket: string; key?: string; message: string; hint: string; cause?: unknown }) {
    super(init.message, { cause: init.cause });
    this.name = 'StorageError';
    this.code = init.code;
    this.store = init.store;
    this.bucket = init.bucket;
    this.key = init.key;
    this.hint = init.hint;
  }

  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
}
