// Google Cloud Storage through @google-cloud/storage.
//
// Credentials: Google application default credentials only (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
// ADC file, workload identity / the metadata server). STORAGE_EMULATOR_HOST is honoured the way the
// SDK defines it (no auth). A source `endpoint` over plain http is treated as an emulator (no bearer
// token is ever sent in clear text); over https it is used with ADC (private/sovereign endpoints).
// Retries: `retryOptions.autoRetry: false` — the SDK makes one attempt; the engine's retry layer
// retries for every driver alike.
//
// Connections: the SDK's default keep-alive agent is shared by every request in the process, and the
// SDK destroys that whole agent when any read stream fails, so one dropped connection would cut every
// other read in flight. Requests here use Node's global keep-alive agent instead, which the SDK leaves
// alone (`forever: false`); a broken read then costs only itself.
//
// Versions: the object's generation is its version marker. Ranged reads are pinned to the generation
// seen in the listing (`?generation=`), so a real GCS answers 404 once that version is replaced.
// Stores that ignore the pin and send no x-goog-generation header (emulators) are checked by reading
// the object's metadata once the body has arrived: the bytes were produced before that moment, so an
// unchanged generation then proves they came from the expected version (the stream fails otherwise).
import type { IncomingMessage } from 'node:http';
import { Transform, pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { Storage } from '@google-cloud/storage';
import type { File, FileMetadata } from '@google-cloud/storage';
import type { DataSourceConfig } from '../../../shared/config/types.ts';
import type { ByteRange, ListPage, ObjectInfo, ReadResult, SourceInfo, StorageDriver, StorageErrorCode } from './driver.ts';
import { DriverConditionError, emptyStream, httpStatusCode, isAbortError, location, networkErrorCode, opOf, redactEndpoint, tagOp } from './cloud-common.ts';
import type { CloudDriverOptions } from './s3.ts';

function base64ToHex(b64: string): string {
  return Buffer.from(b64, 'base64').toString('hex');
}

function objectInfo(key: string, meta: FileMetadata): ObjectInfo {
  const checksums: NonNullable<ObjectInfo['checksums']> = {};
  // Composite objects carry crc32c only; md5Hash is present exactly when it is the content's MD5.
  if (typeof meta.md5Hash === 'string' && meta.md5Hash) checksums.md5Hex = base64ToHex(meta.md5Hash);
  if (typeof meta.crc32c === 'string' && meta.crc32c) checksums.crc32cBase64 = meta.crc32c;
  const info: ObjectInfo = { key, size: Number(meta.size ?? 0) };
  if (meta.generation !== undefined && meta.generation !== null) info.etag = String(meta.generation);
  if (Object.keys(checksums).length > 0) info.checksums = checksums;
  return info;
}

/**
 * The SDK lets STORAGE_EMULATOR_HOST (read once, in its constructor) override even an explicit
 * apiEndpoint; an endpoint written in the source config is the more specific choice, so it wins.
 */
function withoutEmulatorHost<T>(build: () => T): T {
  const saved = process.env.STORAGE_EMULATOR_HOST;
  if (saved === undefined) return build();
  delete process.env.STORAGE_EMULATOR_HOST;
  try {
    return build();
  } finally {
    process.env.STORAGE_EMULATOR_HOST = saved;
  }
}

type Interceptor = Storage['interceptors'][number];

/** See "Connections" above. The SDK passes every request's options through here (the same object it sends). */
const withoutSharedAgent: Interceptor = {
  request: (options) => Object.assign(options, { forever: false }) as ReturnType<Interceptor['request']>,
};

export class GcsDriver implements StorageDriver {
  readonly info: SourceInfo;
  private readonly storage: Storage;
  private readonly bucketName: string;
  private readonly pageSize: number;

  constructor(source: DataSourceConfig, options: CloudDriverOptions = {}) {
    const env = options.env ?? process.env;
    if (!source.bucket) throw new DriverConditionError('invalid_argument', 'GCS source has no bucket: set data_sources.gcp.bucket');
    this.bucketName = source.bucket;
    this.pageSize = Math.min(Math.max(options.pageSize ?? 1000, 1), 5000);
    const endpoint = source.endpoint || undefined;
    const plainHttp = endpoint?.startsWith('http:') ?? false;
    const storageOptions = {
      ...(endpoint ? { apiEndpoint: endpoint, useAuthWithCustomEndpoint: !plainHttp } : {}),
      ...(env.GOOGLE_CLOUD_PROJECT ? { projectId: env.GOOGLE_CLOUD_PROJECT } : {}),
      retryOptions: { autoRetry: false, maxRetries: 0 },
    };
    this.storage = endpoint ? withoutEmulatorHost(() => new Storage(storageOptions)) : new Storage(storageOptions);
    this.storage.interceptors.push(withoutSharedAgent);
    const shown = redactEndpoint(endpoint ?? env.STORAGE_EMULATOR_HOST);
    this.info = { kind: 'gcs', bucket: this.bucketName, location: location('gs', this.bucketName, source.prefix), ...(shown ? { endpoint: shown } : {}) };
  }

  async listPage(prefix: string, pageToken: string | undefined, signal?: AbortSignal): Promise<ListPage> {
    signal?.throwIfAborted();
    try {
      const [files, nextQuery] = await this.storage.bucket(this.bucketName).getFiles({
        autoPaginate: false,
        maxResults: this.pageSize,
        ...(prefix ? { prefix } : {}),
        ...(pageToken ? { pageToken } : {}),
      });
      const next = (nextQuery as { pageToken?: string } | null | undefined)?.pageToken;
      return { objects: files.map((f: File) => objectInfo(f.name, f.metadata)), ...(next ? { nextPageToken: next } : {}) };
    } catch (error) {
      throw tagOp(error, 'list');
    }
  }

  async stat(key: string, signal?: AbortSignal): Promise<ObjectInfo> {
    signal?.throwIfAborted();
    try {
      const [meta] = await this.storage.bucket(this.bucketName).file(key).getMetadata();
      return objectInfo(key, meta);
    } catch (error) {
      throw tagOp(error, 'stat');
    }
  }

  async read(key: string, range: ByteRange, options: { ifMatch?: string; signal?: AbortSignal }): Promise<ReadResult> {
    const { ifMatch, signal } = options;
    signal?.throwIfAborted();
    try {
      if (range.length === 0) {
        const info = await this.stat(key, signal);
        this.checkVersion(key, ifMatch, info.etag);
        return { stream: emptyStream(), etag: info.etag };
      }
      const file = this.storage.bucket(this.bucketName).file(key, ifMatch ? { generation: Number(ifMatch) } : {});
      const sdkStream = file.createReadStream({
        start: range.offset,
        end: range.offset + range.length - 1,
        validation: false,
        decompress: false,
      });
      // When the store sends no x-goog-generation header (emulators), the version is checked once the
      // whole body has arrived: a metadata read then still showing the expected generation proves the
      // bytes came from it (generations only move forward). Not before: a single-threaded emulator
      // would be busy writing this body and never answer.
      let checkAtEnd = false;
      const out = new Transform({
        transform: (chunk: Buffer, _enc, done) => done(null, chunk),
        flush: (done) => {
          if (!checkAtEnd) return done();
          this.stat(key, signal).then(
            (now) => {
              try {
                this.checkVersion(key, ifMatch, now.etag);
                done();
              } catch (error) {
                done(error as Error);
              }
            },
            (error: unknown) => done(tagOp(error, 'read') as Error),
          );
        },
      });
      const onAbort = () => sdkStream.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        sdkStream.once('error', reject);
        sdkStream.once('response', (res: IncomingMessage) => {
          // Error statuses are turned into an 'error' event by the SDK once it has read the body.
          if ((res.statusCode ?? 0) < 400) resolve(res);
        });
        pipeline(sdkStream, out, () => signal?.removeEventListener('abort', onAbort));
      });
      try {
        const header = response.headers['x-goog-generation'];
        const etag = typeof header === 'string' ? header : undefined;
        if (etag === undefined) checkAtEnd = ifMatch !== undefined;
        this.checkVersion(key, ifMatch, etag);
        const length = Number(response.headers['content-length']);
        if (Number.isFinite(length) && length !== range.length) {
          throw new DriverConditionError(
            'invalid_argument',
            `GCS returned ${length} bytes for ${key} range ${range.offset}+${range.length}: the range runs past the end of the object`,
          );
        }
        return { stream: out as Readable, ...(etag !== undefined ? { etag } : {}) };
      } catch (error) {
        sdkStream.destroy();
        out.destroy();
        throw error;
      }
    } catch (error) {
      if (ifMatch !== undefined && gcsStatus(error) === 404) {
        // The pinned generation is gone: the object was replaced or deleted since it was listed.
        const message = `gs://${this.bucketName}/${key} generation ${ifMatch} no longer exists: the object was replaced or deleted`;
        throw tagOp(new DriverConditionError('precondition_failed', message, error), 'read');
      }
      throw tagOp(error, 'read');
    }
  }

  private checkVersion(key: string, ifMatch: string | undefined, seen: string | undefined): void {
    if (ifMatch !== undefined && seen !== undefined && seen !== ifMatch) {
      throw new DriverConditionError('precondition_failed', `gs://${this.bucketName}/${key} changed: generation ${seen}, expected ${ifMatch}`);
    }
  }

  errorCode(error: unknown): StorageErrorCode {
    return gcsErrorCode(error);
  }

  async close(): Promise<void> {
    // The SDK keeps no open handles beyond its keep-alive agent, which unrefs its sockets.
  }
}

function gcsStatus(error: unknown): number | undefined {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; status?: unknown; response?: { status?: number } };
  return typeof e.code === 'number' ? e.code : typeof e.status === 'number' ? e.status : e.response?.status;
}

export function gcsErrorCode(error: unknown): StorageErrorCode {
  if (error instanceof DriverConditionError) return error.code;
  if (isAbortError(error)) return 'unknown';
  const status = gcsStatus(error);
  const rawMessage = (error as { message?: unknown } | null)?.message;
  const message = typeof rawMessage === 'string' ? rawMessage : '';
  if (status === undefined) {
    const net = networkErrorCode(error);
    if (net) return net;
    // google-auth-library: no ADC found, an unreadable credential file, or a token that could not be refreshed.
    if (/default credentials|credential file|GOOGLE_APPLICATION_CREDENTIALS|invalid_grant|Could not refresh access token|invalid_client|unauthorized_client/i.test(message)) return 'unauthenticated';
    return 'unknown';
  }
  if (status === 404) {
    if (opOf(error) === 'list' || /bucket does not exist|No such bucket/i.test(message)) return 'bucket_not_found';
    return 'not_found';
  }
  if (status === 400 && /invalid_grant|expired/i.test(message)) return 'unauthenticated';
  if (status === 400) return 'invalid_argument';
  return httpStatusCode(status) ?? 'unknown';
}
