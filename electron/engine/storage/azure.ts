// Azure Blob Storage through @azure/storage-blob.
//
// Credentials, first match wins, all from the environment by the Azure tools' own names:
//   1. AZURE_STORAGE_CONNECTION_STRING (account, key or SAS, and endpoint in one; Azurite uses this)
//   2. AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY (shared key)
//   3. AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_SAS_TOKEN (SAS appended to the account URL)
//   4. DefaultAzureCredential (env service principal, workload identity, managed identity, Azure CLI...)
//      against the account URL: the source `endpoint`, else https://<AZURE_STORAGE_ACCOUNT>.blob.core.windows.net
// The source `endpoint` overrides the account URL for 2–4 (sovereign clouds, Azurite, private links).
// Retries: `retryOptions.maxTries: 1` on the pipeline and `maxRetryRequests: 0` on downloads (the
// SDK otherwise resumes broken download streams itself); the engine's retry layer retries.
// Versions: the ETag; ranged downloads carry If-Match, and the store answers 412 when it changed.
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import { AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { BlobItem, ContainerClient, StoragePipelineOptions } from '@azure/storage-blob';
import { DefaultAzureCredential } from '@azure/identity';
import type { DataSourceConfig } from '../../../shared/config/types.ts';
import type { ByteRange, ListPage, ObjectInfo, ReadResult, SourceInfo, StorageDriver, StorageErrorCode } from './driver.ts';
import { DriverConditionError, emptyStream, errorChain, httpStatusCode, isAbortError, location, networkErrorCode, opOf, redactEndpoint, tagOp } from './cloud-common.ts';
import type { CloudDriverOptions } from './s3.ts';

function md5Hex(md5: Uint8Array | undefined): string | undefined {
  return md5 && md5.length === 16 ? Buffer.from(md5).toString('hex') : undefined;
}

/** Listings give ETags bare, HEAD/GET quoted: one form everywhere so versions compare equal. */
export function quoteEtag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function objectInfo(key: string, props: { contentLength?: number; etag?: string; contentMD5?: Uint8Array }): ObjectInfo {
  const info: ObjectInfo = { key, size: Number(props.contentLength ?? 0) };
  if (props.etag) info.etag = quoteEtag(props.etag);
  // Blobs uploaded in blocks carry no Content-MD5 unless the uploader set one.
  const md5 = md5Hex(props.contentMD5);
  if (md5) info.checksums = { md5Hex: md5 };
  return info;
}

/** Which credential source the environment selects; never includes the secret itself. */
export type AzureAuthKind = 'connection-string' | 'shared-key' | 'sas' | 'default-credential';

export function azureAuthKind(env: NodeJS.ProcessEnv = process.env): AzureAuthKind {
  if (env.AZURE_STORAGE_CONNECTION_STRING) return 'connection-string';
  if (env.AZURE_STORAGE_ACCOUNT && env.AZURE_STORAGE_KEY) return 'shared-key';
  if (env.AZURE_STORAGE_ACCOUNT && env.AZURE_STORAGE_SAS_TOKEN) return 'sas';
  return 'default-credential';
}

function connectionStringEndpoint(cs: string): string | undefined {
  const parts = new Map(
    cs
      .split(';')
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => {
        const i = p.indexOf('=');
        return [p.slice(0, i).toLowerCase(), p.slice(i + 1)] as const;
      }),
  );
  const explicit = parts.get('blobendpoint');
  if (explicit) return explicit;
  const account = parts.get('accountname');
  if (!account) return undefined;
  return `${parts.get('defaultendpointsprotocol') ?? 'https'}://${account}.blob.${parts.get('endpointsuffix') ?? 'core.windows.net'}`;
}

export class AzureBlobDriver implements StorageDriver {
  readonly info: SourceInfo;
  readonly authKind: AzureAuthKind;
  private readonly container: ContainerClient;
  private readonly containerName: string;
  private readonly pageSize: number;

  constructor(source: DataSourceConfig, options: CloudDriverOptions = {}) {
    const env = options.env ?? process.env;
    const containerName = source.container || source.bucket;
    if (!containerName) throw new DriverConditionError('invalid_argument', 'Azure source has no container: set data_sources.azure.container');
    this.containerName = containerName;
    this.pageSize = Math.min(Math.max(options.pageSize ?? 1000, 1), 5000);
    const pipeline: StoragePipelineOptions = { retryOptions: { maxTries: 1 }, keepAliveOptions: { enable: true } };
    this.authKind = azureAuthKind(env);
    const account = env.AZURE_STORAGE_ACCOUNT;
    const accountUrl = (source.endpoint || (account ? `https://${account}.blob.core.windows.net` : '')).replace(/\/+$/, '');
    let service: BlobServiceClient;
    let shownEndpoint: string | undefined;
    switch (this.authKind) {
      case 'connection-string': {
        const cs = env.AZURE_STORAGE_CONNECTION_STRING as string;
        service = BlobServiceClient.fromConnectionString(cs, pipeline);
        shownEndpoint = connectionStringEndpoint(cs);
        break;
      }
      case 'shared-key':
        service = new BlobServiceClient(accountUrl, new StorageSharedKeyCredential(account as string, env.AZURE_STORAGE_KEY as string), pipeline);
        shownEndpoint = accountUrl;
        break;
      case 'sas': {
        const sas = (env.AZURE_STORAGE_SAS_TOKEN as string).replace(/^\?/, '');
        service = new BlobServiceClient(`${accountUrl}?${sas}`, new AnonymousCredential(), pipeline);
        shownEndpoint = accountUrl;
        break;
      }
      case 'default-credential':
        if (!accountUrl) {
          throw new DriverConditionError(
            'unauthenticated',
            'Azure Blob: no storage account to connect to. Set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT (with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or an Azure identity), or data_sources.azure.endpoint',
          );
        }
        service = new BlobServiceClient(accountUrl, new DefaultAzureCredential(), pipeline);
        shownEndpoint = accountUrl;
        break;
    }
    this.container = service.getContainerClient(containerName);
    const shown = redactEndpoint(shownEndpoint);
    this.info = { kind: 'azure', bucket: containerName, location: location('azure', containerName, source.prefix), ...(shown ? { endpoint: shown } : {}) };
  }

  async listPage(prefix: string, pageToken: string | undefined, signal?: AbortSignal): Promise<ListPage> {
    try {
      const pages = this.container
        .listBlobsFlat({ ...(prefix ? { prefix } : {}), abortSignal: signal })
        .byPage({ maxPageSize: this.pageSize, ...(pageToken ? { continuationToken: pageToken } : {}) });
      const first = await pages.next();
      if (first.done) return { objects: [] };
      const page = first.value;
      const objects = page.segment.blobItems.map((b: BlobItem) => objectInfo(b.name, b.properties));
      return { objects, ...(page.continuationToken ? { nextPageToken: page.continuationToken } : {}) };
    } catch (error) {
      throw tagOp(error, 'list');
    }
  }

  async stat(key: string, signal?: AbortSignal): Promise<ObjectInfo> {
    try {
      const props = await this.container.getBlobClient(key).getProperties({ abortSignal: signal });
      return objectInfo(key, props);
    } catch (error) {
      throw tagOp(error, 'stat');
    }
  }

  async read(key: string, range: ByteRange, options: { ifMatch?: string; signal?: AbortSignal }): Promise<ReadResult> {
    const { ifMatch, signal } = options;
    const conditions = ifMatch ? { ifMatch } : undefined;
    const blob = this.container.getBlobClient(key);
    try {
      if (range.length === 0) {
        // count 0 would mean "to the end"; a conditional HEAD pins the version instead.
        const props = await blob.getProperties({ abortSignal: signal, conditions });
        return { stream: emptyStream(), etag: quoteEtag(props.etag) };
      }
      const res = await blob.download(range.offset, range.length, { abortSignal: signal, conditions, maxRetryRequests: 0 });
      const body = res.readableStreamBody as Readable | undefined;
      if (!body) throw new DriverConditionError('transient', `Azure returned no body for ${key}`);
      if (res.contentLength !== undefined && res.contentLength !== range.length) {
        body.destroy();
        throw new DriverConditionError(
          'invalid_argument',
          `Azure returned ${res.contentLength} bytes for ${key} range ${range.offset}+${range.length}: the range runs past the end of the blob`,
        );
      }
      // The SDK reports a connection closed mid-body as an AbortError; unless the run was cancelled it is
      // a dropped connection, worth another try.
      const out = new PassThrough();
      body.on('error', (error: unknown) => {
        const dropped = !signal?.aborted && isAbortError(error);
        out.destroy(dropped ? new DriverConditionError('transient', `the connection closed while reading ${key} (${range.offset}+${range.length})`, error) : (error as Error));
      });
      out.once('close', () => {
        if (!body.destroyed) body.destroy();
      });
      body.pipe(out);
      return { stream: out, etag: quoteEtag(res.etag) };
    } catch (error) {
      throw tagOp(error, 'read');
    }
  }

  errorCode(error: unknown): StorageErrorCode {
    return azureErrorCode(error);
  }

  async close(): Promise<void> {
    // The pipeline's keep-alive sockets are unref'd by the SDK's HTTP client.
  }
}

const AZURE_CODES: Record<string, StorageErrorCode> = {
  ContainerNotFound: 'bucket_not_found',
  ContainerBeingDeleted: 'bucket_not_found',
  BlobNotFound: 'not_found',
  ResourceNotFound: 'not_found',
  AuthenticationFailed: 'unauthenticated',
  InvalidAuthenticationInfo: 'unauthenticated',
  NoAuthenticationInformation: 'unauthenticated',
  AuthorizationFailure: 'permission_denied',
  AuthorizationPermissionMismatch: 'permission_denied',
  AuthorizationResourceTypeMismatch: 'permission_denied',
  AuthorizationSourceIPMismatch: 'permission_denied',
  AuthorizationProtocolMismatch: 'permission_denied',
  AuthorizationServiceMismatch: 'permission_denied',
  InsufficientAccountPermissions: 'permission_denied',
  AccountIsDisabled: 'permission_denied',
  ConditionNotMet: 'precondition_failed',
  TargetConditionNotMet: 'precondition_failed',
  InvalidRange: 'invalid_argument',
  InvalidResourceName: 'invalid_argument',
  OutOfRangeInput: 'invalid_argument',
  ServerBusy: 'transient',
  InternalError: 'transient',
  OperationTimedOut: 'transient',
  // @azure/identity: no credential in the chain worked, or a token could not be obtained.
  CredentialUnavailableError: 'unauthenticated',
  AuthenticationError: 'unauthenticated',
  AggregateAuthenticationError: 'unauthenticated',
};

export function azureErrorCode(error: unknown): StorageErrorCode {
  if (error instanceof DriverConditionError) return error.code;
  if (isAbortError(error)) return 'unknown';
  for (const e of errorChain(error)) {
    const message = typeof e.message === 'string' ? e.message : '';
    // Azurite (and Azure for some SAS errors) answers a bad signature with AuthorizationFailure.
    if (/failed to authenticate the request|Signature (did not match|fields not well formed)|token (is )?expired/i.test(message)) return 'unauthenticated';
    // The SDK's download stream, when the connection ends before the range is complete.
    if (/received less data than required/i.test(message)) return 'transient';
    // DefaultAzureCredential refuses to send a bearer token over plain http.
    if (/Bearer token authentication is not permitted/i.test(message)) return 'unauthenticated';
    const details = e.details as { errorCode?: unknown } | undefined;
    for (const name of [e.code, details?.errorCode, e.name]) {
      const mapped = typeof name === 'string' ? AZURE_CODES[name] : undefined;
      if (mapped) return mapped;
    }
  }
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  const httpStatus = typeof status === 'number' ? status : undefined;
  if (httpStatus === undefined) return networkErrorCode(error) ?? 'unknown';
  if (httpStatus === 404) return opOf(error) === 'list' ? 'bucket_not_found' : 'not_found';
  if (httpStatus === 403) return 'permission_denied';
  if (httpStatus === 400) return 'invalid_argument';
  return httpStatusCode(httpStatus) ?? networkErrorCode(error) ?? 'unknown';
}
