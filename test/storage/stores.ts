// One fixture per store kind (local folder, S3 on s3rver, GCS on gcp-storage-emulator, Azure Blob on
// Azurite), so the conformance suite and the engine-level suite run the same scenarios against each.
// A fixture owns its emulator for the whole test file, a bucket to work in, and knows how to build
// drivers and engine data-source configs for it (through each SDK's env conventions).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { DataSourceConfig } from '../../shared/config/types.ts';
import type { StorageDriver } from '../../electron/engine/storage/driver.ts';
import { LocalDriver } from '../../electron/engine/storage/local.ts';
import type { HashPool } from '../../electron/engine/hash/pool.ts';
import { S3Driver } from '../../electron/engine/storage/s3.ts';
import type { CloudDriverOptions } from '../../electron/engine/storage/s3.ts';
import { GcsDriver } from '../../electron/engine/storage/gcs.ts';
import { AzureBlobDriver } from '../../electron/engine/storage/azure.ts';
import { AZURITE_ACCOUNT, startEmulator } from '../helpers/emulators.ts';
import type { Emulator } from '../helpers/emulators.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import type { FaultPlan, FaultProxy } from '../helpers/fault-proxy.ts';

export type StoreKind = 'local' | 's3' | 'gcs' | 'azure';

export interface StoreFixture {
  kind: StoreKind;
  /** Bucket/container (or, for local, the folder) the scenarios use. */
  bucket: string;
  /** The store keeps a whole-object MD5 for objects uploaded the way `put` uploads them. */
  keepsMd5: boolean;
  /** The store keeps a whole-object CRC32C (GCS): multi-chunk files are checked against it, combined from chunk CRCs. */
  keepsCrc32c: boolean;
  /** The store pages listings by the page size asked for (gcp-storage-emulator returns all at once). */
  paginates: boolean;
  /** Uploads at once when seeding. */
  concurrency: number;
  put(key: string, body: Buffer | { file: string }): Promise<void>;
  /** A driver for `bucket` (or another bucket name) through the usual env conventions. */
  driver(options?: CloudDriverOptions & { bucket?: string }): StorageDriver;
  /** Data source config as the engine reads it from YAML (no credentials in it). */
  source(bucket?: string): DataSourceConfig;
  /** Env the engine needs for this store (applied to process.env by the test file). */
  env: Record<string, string>;
  /** A driver whose credentials the store rejects, where the emulator checks credentials. */
  badCredentialsDriver?(): StorageDriver;
  /** A driver pointed at a loopback port nobody listens on. */
  unreachableDriver?(): StorageDriver;
  /** Puts a fault proxy in front of the store and returns env that routes the engine through it. */
  withFaultProxy?(plan: FaultPlan): Promise<{ proxy: FaultProxy; env: Record<string, string>; source: DataSourceConfig; driver: (o?: CloudDriverOptions) => StorageDriver }>;
  stop(): Promise<void>;
}

/** Applies env for the rest of the test file (each Vitest file runs in its own worker). */
export function applyEnv(env: Record<string, string>): void {
  Object.assign(process.env, env);
}

/** Runs fn with env temporarily changed (SDK credential chains read process.env). */
export async function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

export async function startStore(kind: StoreKind, bucket = 'ingest-test-bucket'): Promise<StoreFixture> {
  if (kind === 'local') return startLocal();
  const emulator = await startEmulator(kind);
  await emulator.createBucket(bucket);
  applyEnv(emulator.env);
  return cloudFixture(emulator, bucket);
}

function sourceFor(kind: Exclude<StoreKind, 'local'>, bucket: string, endpoint?: string): DataSourceConfig {
  switch (kind) {
    case 's3':
      return { type: 's3', bucket, region: 'us-east-1', ...(endpoint ? { endpoint } : {}) };
    case 'gcs':
      return { type: 'gcs', bucket, ...(endpoint ? { endpoint } : {}) };
    case 'azure':
      return { type: 'blob', container: bucket, ...(endpoint ? { endpoint } : {}) };
  }
}

function newDriver(kind: Exclude<StoreKind, 'local'>, source: DataSourceConfig, options?: CloudDriverOptions): StorageDriver {
  switch (kind) {
    case 's3':
      return new S3Driver(source, options);
    case 'gcs':
      return new GcsDriver(source, options);
    case 'azure':
      return new AzureBlobDriver(source, options);
  }
}

function cloudFixture(emulator: Emulator, bucket: string): StoreFixture {
  const kind = emulator.kind;
  const fixture: StoreFixture = {
    kind,
    bucket,
    keepsMd5: true,
    keepsCrc32c: kind === 'gcs',
    paginates: kind !== 'gcs',
    concurrency: kind === 'gcs' ? 8 : 16,
    put: (key, body) => emulator.put(bucket, key, body),
    driver: (options = {}) => newDriver(kind, sourceFor(kind, options.bucket ?? bucket), options),
    source: (b = bucket) => sourceFor(kind, b),
    env: emulator.env,
    unreachableDriver() {
      // Port 9 (discard), where nothing listens, as for the metadata endpoints in test/setup/env.ts: a port
      // found free a moment ago may already serve a test running in parallel.
      const port = 9;
      const endpoint = kind === 'azure' ? `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}` : `http://127.0.0.1:${port}`;
      if (kind === 'azure') {
        // The endpoint in the config replaces the account URL for key-based auth.
        const env = { AZURE_STORAGE_ACCOUNT: AZURITE_ACCOUNT, AZURE_STORAGE_KEY: Buffer.from('unused-key').toString('base64') };
        return new AzureBlobDriver(sourceFor(kind, bucket, endpoint), { env });
      }
      return newDriver(kind, sourceFor(kind, bucket, endpoint));
    },
    async withFaultProxy(plan) {
      const proxy = await startFaultProxy({ host: emulator.host, port: emulator.port }, plan);
      // S3 and GCS: the source endpoint goes through the proxy. Azure: the connection string does.
      const env = kind === 'azure' ? emulator.envFor(`${proxy.url}/${AZURITE_ACCOUNT}`) : {};
      const source = kind === 'azure' ? sourceFor(kind, bucket) : sourceFor(kind, bucket, proxy.url);
      return { proxy, env, source, driver: (options?: CloudDriverOptions) => newDriver(kind, source, { ...options, env: { ...process.env, ...env } }) };
    },
    stop: () => emulator.stop(),
  };
  if (kind === 's3') {
    // s3rver checks the access key id.
    fixture.badCredentialsDriver = () => {
      const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
      process.env.AWS_ACCESS_KEY_ID = 'AKIAWRONGWRONGWRONG0';
      process.env.AWS_SECRET_ACCESS_KEY = 'wrong-secret';
      const driver = new S3Driver(sourceFor('s3', bucket));
      // The default chain reads env on first use: keep the wrong keys until the driver has resolved them.
      const restore = () => {
        process.env.AWS_ACCESS_KEY_ID = saved.id;
        process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      };
      return { ...bindDriver(driver), listPage: (...args) => driver.listPage(...args).finally(restore) };
    };
  }
  if (kind === 'gcs') {
    // gcp-storage-emulator accepts anything, so test the credentials failure the SDK itself detects: an
    // https endpoint (which gets application default credentials) with GOOGLE_APPLICATION_CREDENTIALS
    // naming a file that is not there. (Nothing here may reach a real token endpoint.)
    fixture.badCredentialsDriver = () => {
      const saved = process.env.GOOGLE_APPLICATION_CREDENTIALS;
      process.env.GOOGLE_APPLICATION_CREDENTIALS = '/nonexistent/cloud-ingest-test/adc.json';
      const driver = new GcsDriver(sourceFor('gcs', bucket, 'https://127.0.0.1:9'));
      const restore = () => {
        if (saved === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
        else process.env.GOOGLE_APPLICATION_CREDENTIALS = saved;
      };
      return { ...bindDriver(driver), listPage: (...args) => driver.listPage(...args).finally(restore) };
    };
  }
  if (kind === 'azure') {
    // Azurite checks the shared-key signature.
    fixture.badCredentialsDriver = () =>
      new AzureBlobDriver(sourceFor('azure', bucket, emulator.endpoint), {
        env: { AZURE_STORAGE_ACCOUNT: AZURITE_ACCOUNT, AZURE_STORAGE_KEY: Buffer.from('not-the-account-key').toString('base64') },
      });
  }
  return fixture;
}

/** The driver's methods bound to it, so one can be replaced. */
export function bindDriver(driver: StorageDriver): StorageDriver {
  return {
    info: driver.info,
    listPage: (...args) => driver.listPage(...args),
    stat: (...args) => driver.stat(...args),
    read: (...args) => driver.read(...args),
    errorCode: (e) => driver.errorCode(e),
    close: () => driver.close(),
  };
}

/** Set by a test file: its local folder stores stat a listing's files on these hashing threads (statFiles). */
let statPool: HashPool | undefined;

/** Local folder stores this test file starts list through `pool`'s stat (LocalDriverOptions.statFiles). */
export function statLocalOnThreads(pool: HashPool): void {
  statPool = pool;
}

async function startLocal(): Promise<StoreFixture> {
  const root = await mkdtemp(join(tmpdir(), 'ci-local-src-'));
  const bucket = 'bucket';
  await mkdir(join(root, bucket));
  return {
    kind: 'local',
    bucket,
    keepsMd5: false,
    keepsCrc32c: false,
    paginates: true,
    concurrency: 16,
    async put(key, body) {
      const path = join(root, bucket, ...key.split('/'));
      await mkdir(dirname(path), { recursive: true });
      if (Buffer.isBuffer(body)) await writeFile(path, body);
      else await copyFile(body.file, path);
    },
    driver: (options = {}) => {
      const pool = statPool;
      return new LocalDriver(join(root, options.bucket ?? bucket), { ...(options.pageSize ? { pageSize: options.pageSize } : {}), ...(pool ? { statFiles: (paths) => pool.statFiles(paths) } : {}) });
    },
    source: (b = bucket) => ({ type: 'local', path: join(root, b) }),
    env: {},
    stop: () => rm(root, { recursive: true, force: true }),
  };
}
