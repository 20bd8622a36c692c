// Amazon S3 (and S3-compatible stores) through @aws-sdk/client-s3.
//
// Credentials: the AWS SDK default chain only (env, shared config/credentials files and profiles,
// SSO, web identity, container and instance roles). Nothing is read from the YAML; nothing is logged.
// Endpoint: the source's `endpoint`, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (the SDK's own
// convention); path-style addressing whenever an endpoint is set (emulators, MinIO, Ceph...).
// Retries: the SDK makes exactly one attempt (`maxAttempts: 1`); the engine's retry layer wraps
// every driver the same way.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { HeadObjectCommandOutput, _Object } from '@aws-sdk/client-s3';
import type { DataSourceConfig } from '../../../shared/config/types.ts';
import type { ByteRange, ListPage, ObjectInfo, ReadResult, SourceInfo, StorageDriver, StorageErrorCode } from './driver.ts';
import {
  DriverConditionError,
  emptyStream,
  httpStatusCode,
  isAbortError,
  location,
  networkErrorCode,
  opOf,
  redactEndpoint,
  tagOp,
} from './cloud-common.ts';

export interface CloudDriverOptions {
  /** Environment to read endpoint/region conventions from (the SDK's credential chain always reads process.env). */
  env?: NodeJS.ProcessEnv;
  /** Objects per listing page (store maximum 1000 for S3). */
  pageSize?: number;
  /** Sockets kept open to the store; defaults to 64 (reads run `max_concurrent_chunks` at a time). */
  maxSockets?: number;
}

const MD5_HEX = /^[0-9a-f]{32}$/i;

export function unquoteEtag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** The endpoint S3 requests go to, following the SDK's env conventions, or undefined for AWS itself. */
export function s3Endpoint(source: DataSourceConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (source.endpoint) return source.endpoint;
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true') return undefined;
  return env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
}

/**
 * A key as a listing with `encoding-type=url` gives it: percent-encoded UTF-8, a space possibly as `+` (as the AWS
 * SDKs that decode it read it). A key the store encoded badly is kept as it came: reading it then fails, naming it.
 */
function urlDecodedKey(key: string): string {
  try {
    return decodeURIComponent(key.replaceAll('+', ' '));
  } catch {
    return key;
  }
}

/** S3 ETag / checksum headers into the portable shape. */
function objectInfo(
  key: string,
  size: number,
  etag: string | undefined,
  extra?: Pick<HeadObjectCommandOutput, 'ChecksumCRC32' | 'ChecksumCRC32C' | 'ChecksumSHA256' | 'ChecksumType' | 'ServerSideEncryption' | 'SSECustomerAlgorithm'>,
): ObjectInfo {
  const bare = unquoteEtag(etag);
  const multipart = bare !== undefined && bare.includes('-');
  // The ETag is the MD5 of the content only for single-part uploads without SSE-KMS/SSE-C.
  const encrypted = extra?.ServerSideEncryption === 'aws:kms' || extra?.ServerSideEncryption === 'aws:kms:dsse' || !!extra?.SSECustomerAlgorithm;
  const checksums: NonNullable<ObjectInfo['checksums']> = {};
  if (bare && !multipart && !encrypted && MD5_HEX.test(bare)) checksums.md5Hex = bare.toLowerCase();
  // Composite (per-part) checksums look like "abc==-3": not a checksum of the whole object.
  const fullObject = extra?.ChecksumType !== 'COMPOSITE';
  if (fullObject && extra?.ChecksumCRC32C && !extra.ChecksumCRC32C.includes('-')) checksums.crc32cBase64 = extra.ChecksumCRC32C;
  // What the current AWS SDKs upload with by default.
  if (fullObject && extra?.ChecksumCRC32 && !extra.ChecksumCRC32.includes('-')) checksums.crc32Base64 = extra.ChecksumCRC32;
  if (fullObject && extra?.ChecksumSHA256 && !extra.ChecksumSHA256.includes('-')) checksums.sha256Base64 = extra.ChecksumSHA256;
  const info: ObjectInfo = { key, size, etag };
  if (Object.keys(checksums).length > 0) info.checksums = checksums;
  if (multipart) info.multipart = true;
  return info;
}

export class S3Driver implements StorageDriver {
  readonly info: SourceInfo;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly pageSize: number;
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(source: DataSourceConfig, options: CloudDriverOptions = {}) {
    const env = options.env ?? process.env;
    if (!source.bucket) throw new DriverConditionError('invalid_argument', 'S3 source has no bucket: set data_sources.aws.bucket');
    this.bucket = source.bucket;
    this.pageSize = Math.min(Math.max(options.pageSize ?? 1000, 1), 1000);
    const endpoint = s3Endpoint(source, env);
    // Emulators and most S3-compatible stores need no particular region; AWS itself resolves it by chain.
    const region = source.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? 'us-east-1' : undefined);
    const https = !endpoint || endpoint.startsWith('https:');
    const maxSockets = options.maxSockets ?? 64;
    this.agent = https ? new HttpsAgent({ keepAlive: true, maxSockets }) : new HttpAgent({ keepAlive: true, maxSockets });
    this.client = new S3Client({
      ...(region ? { region } : {}),
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      maxAttempts: 1,
      // No flexible-checksum work on requests, and none on responses: ranged reads are checked by
      // the engine's own chunk hashes and the whole-file source checksum.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: https
        ? { httpsAgent: this.agent as HttpsAgent, connectionTimeout: 10_000, requestTimeout: 120_000 }
        : { httpAgent: this.agent as HttpAgent, connectionTimeout: 10_000, requestTimeout: 120_000 },
    });
    const shownEndpoint = redactEndpoint(endpoint);
    this.info = { kind: 's3', bucket: this.bucket, location: location('s3', this.bucket, source.prefix), ...(shownEndpoint ? { endpoint: shownEndpoint } : {}) };
  }

  async listPage(prefix: string, pageToken: string | undefined, signal?: AbortSignal): Promise<ListPage> {
    try {
      // Keys come URL-encoded: XML cannot carry every key as it is (a carriage return is read back as a line feed,
      // most control characters not at all). A store that ignores the request sends them plain and says nothing.
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix || undefined, ContinuationToken: pageToken, MaxKeys: this.pageSize, EncodingType: 'url' }),
        { abortSignal: signal },
      );
      const encoded = out.EncodingType === 'url';
      const objects = (out.Contents ?? [])
        .filter((o: _Object): o is _Object & { Key: string } => typeof o.Key === 'string')
        .map((o) => ({ ...objectInfo(encoded ? urlDecodedKey(o.Key) : o.Key, Number(o.Size ?? 0), o.ETag), ...(o.ChecksumAlgorithm?.length ? { checksumsOnStat: true } : {}) }));
      return { objects, ...(out.IsTruncated && out.NextContinuationToken ? { nextPageToken: out.NextContinuationToken } : {}) };
    } catch (error) {
      throw tagOp(error, 'list');
    }
  }

  async stat(key: string, signal?: AbortSignal): Promise<ObjectInfo> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }), { abortSignal: signal });
      return objectInfo(key, Number(out.ContentLength ?? 0), out.ETag, out);
    } catch (error) {
      throw tagOp(error, 'stat');
    }
  }

  async read(key: string, range: ByteRange, options: { ifMatch?: string; signal?: AbortSignal }): Promise<ReadResult> {
    const { ifMatch, signal } = options;
    try {
      if (range.length === 0) {
        // An empty range cannot be asked for with a Range header; a conditional HEAD still pins the version.
        const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, IfMatch: ifMatch }), { abortSignal: signal });
        this.checkVersion(key, ifMatch, head.ETag);
        return { stream: emptyStream(), etag: head.ETag };
      }
      const out = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${range.offset}-${range.offset + range.length - 1}`, IfMatch: ifMatch }),
        { abortSignal: signal },
      );
      const body = out.Body as Readable | undefined;
      if (!body) throw new DriverConditionError('transient', `S3 returned no body for ${key}`);
      try {
        // Some S3-compatible stores ignore If-Match; the ETag the read saw is compared here as well.
        this.checkVersion(key, ifMatch, out.ETag);
        if (out.ContentLength !== undefined && out.ContentLength !== range.length) {
          throw new DriverConditionError(
            'invalid_argument',
            `S3 returned ${out.ContentLength} bytes for ${key} range ${range.offset}+${range.length}: the range runs past the end of the object`,
          );
        }
      } catch (error) {
        body.destroy();
        throw error;
      }
      return { stream: body, etag: out.ETag };
    } catch (error) {
      throw tagOp(error, 'read');
    }
  }

  private checkVersion(key: string, ifMatch: string | undefined, seen: string | undefined): void {
    if (ifMatch !== undefined && seen !== undefined && unquoteEtag(seen) !== unquoteEtag(ifMatch)) {
      throw new DriverConditionError('precondition_failed', `s3://${this.bucket}/${key} changed: ETag ${seen}, expected ${ifMatch}`);
    }
  }

  errorCode(error: unknown): StorageErrorCode {
    return s3ErrorCode(error);
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.agent.destroy();
  }
}

const S3_CODES: Record<string, StorageErrorCode> = {
  NoSuchBucket: 'bucket_not_found',
  NoSuchKey: 'not_found',
  AccessDenied: 'permission_denied',
  AllAccessDisabled: 'permission_denied',
  AccountProblem: 'permission_denied',
  InvalidObjectState: 'permission_denied',
  InvalidAccessKeyId: 'unauthenticated',
  SignatureDoesNotMatch: 'unauthenticated',
  ExpiredToken: 'unauthenticated',
  ExpiredTokenException: 'unauthenticated',
  TokenRefreshRequired: 'unauthenticated',
  InvalidToken: 'unauthenticated',
  InvalidSecurity: 'unauthenticated',
  MissingSecurityHeader: 'unauthenticated',
  CredentialsProviderError: 'unauthenticated',
  PreconditionFailed: 'precondition_failed',
  InvalidRange: 'invalid_argument',
  InvalidBucketName: 'invalid_argument',
  PermanentRedirect: 'invalid_argument',
  AuthorizationHeaderMalformed: 'invalid_argument',
  SlowDown: 'transient',
  ServiceUnavailable: 'transient',
  InternalError: 'transient',
  RequestTimeout: 'transient',
  RequestTimeTooSkewed: 'transient',
  TimeoutError: 'transient',
  Throttling: 'transient',
  ThrottlingException: 'transient',
};

export function s3ErrorCode(error: unknown): StorageErrorCode {
  if (error instanceof DriverConditionError) return error.code;
  if (isAbortError(error)) return 'unknown';
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: string;
    Code?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    $response?: { statusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  for (const name of [e.Code, e.name]) {
    const mapped = name ? S3_CODES[name] : undefined;
    if (mapped) return mapped;
  }
  if (status === undefined) {
    const net = networkErrorCode(error);
    if (net) return net;
    // The credential chain found nothing usable.
    if (/credential/i.test(String((error as { message?: unknown }).message ?? ''))) return 'unauthenticated';
  }
  if (status === 404) return opOf(error) === 'list' ? 'bucket_not_found' : 'not_found';
  if (status === 301 || status === 400) return 'invalid_argument';
  return httpStatusCode(status) ?? networkErrorCode(error) ?? 'unknown';
}
