// Starts and stops the real storage emulators on free loopback ports for tests and benchmarks:
// s3rver (S3), gcp-storage-emulator (GCS, from .venv) and Azurite (Azure Blob). Each runs in its own
// process group (killed as a group), with its data in a temp dir, telemetry off, and is ready when
// it answers HTTP. Seeding helpers use the official SDKs against the emulator.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { crcBase64 } from '../../electron/engine/hash/crc32c.js';
import { crcOfFile } from '../storage/data.ts';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { BlobServiceClient } from '@azure/storage-blob';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export type EmulatorKind = 's3' | 'gcs' | 'azure';

/** Azurite's published development account (documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
/** s3rver checks only the access key id. */
export const S3RVER_KEY = 'S3RVER';

export interface Emulator {
  kind: EmulatorKind;
  /** Base URL, e.g. http://127.0.0.1:4568 (for Azure: the account URL, …/devstoreaccount1). */
  endpoint: string;
  host: string;
  port: number;
  /** Environment a client (engine, SDK, rclone) needs to reach this emulator through its SDK's conventions. */
  env: Record<string, string>;
  /** Same env, pointed at another base URL (e.g. a fault proxy in front of the emulator). */
  envFor(baseUrl: string): Record<string, string>;
  createBucket(name: string): Promise<void>;
  /** Uploads a Buffer or a local file as one object (single request where the store allows it). */
  put(bucket: string, key: string, body: Buffer | { file: string }): Promise<void>;
  remove(bucket: string, key: string): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((res, rej) => {
    const req = request(url, { method: 'GET', timeout: 2000 }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

interface Proc {
  child: ChildProcess;
  output: () => string;
}

function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => out };
}

async function waitReady(proc: Proc, url: string, what: string, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited with code ${proc.child.exitCode} before it was ready:\n${proc.output()}`);
    try {
      await httpStatus(url);
      return;
    } catch {
      // not listening yet
    }
    if (Date.now() - start > timeoutMs) throw new Error(`${what} did not answer on ${url} within ${timeoutMs} ms:\n${proc.output()}`);
    await sleep(100);
  }
}

async function stopProcess(proc: Proc): Promise<void> {
  const { child } = proc;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // already gone
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}

function childEnv(): NodeJS.ProcessEnv {
  // The emulators get no cloud credentials and no proxy settings from the test process.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', NO_PROXY: '*' };
  return env;
}

/** s3rver over a fresh folder, removed when it stops; or over `directory` (its buckets as they are, kept). */
export async function startS3(directory?: string): Promise<Emulator> {
  const dir = directory ?? (await mkdtemp(join(tmpdir(), 'ci-s3rver-')));
  const port = await freePort();
  const entry = join(ROOT, 'node_modules/s3rver/bin/s3rver.js');
  // --openssl-legacy-provider: s3rver's ListObjectsV2 page tokens use DES, which OpenSSL 3 hides by default.
  const proc = startProcess(process.execPath, ['--openssl-legacy-provider', entry, '--directory', dir, '--address', '127.0.0.1', '--port', String(port), '--silent'], childEnv());
  await waitReady(proc, `http://127.0.0.1:${port}`, 's3rver');
  return s3Emulator(proc, port, S3RVER_KEY, { withCrc32: false, ...(directory ? {} : { dataDir: dir }) });
}

export function motoServerPath(): string {
  return join(ROOT, '.venv/bin/moto_server');
}

/**
 * moto's S3, for what s3rver lacks: it keeps the flexible checksums uploads carry. Objects are put with a CRC32
 * that the store keeps (ChecksumCRC32), as current AWS SDKs put them by default. Any credentials pass.
 */
export async function startMoto(): Promise<Emulator> {
  const bin = motoServerPath();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run .ci/install-emulators.sh (installs moto[server] into .venv)`);
  const port = await freePort();
  const proc = startProcess(bin, ['-H', '127.0.0.1', '-p', String(port)], { ...childEnv(), PYTHONUNBUFFERED: '1' });
  await waitReady(proc, `http://127.0.0.1:${port}/`, 'moto_server');
  return s3Emulator(proc, port, 'moto', { withCrc32: true });
}

async function crc32Base64Of(body: Buffer | { file: string }): Promise<string> {
  return Buffer.isBuffer(body) ? crcBase64(crc32(body)) : crcOfFile(body.file, 'crc32');
}

/** An S3 server started on `port`, seeded through the SDK; `withCrc32` uploads carry a CRC32 for the store to keep. */
function s3Emulator(proc: Proc, port: number, key: string, options: { withCrc32: boolean; dataDir?: string }): Emulator {
  const endpoint = `http://127.0.0.1:${port}`;
  const envFor = (base: string) => ({ AWS_ACCESS_KEY_ID: key, AWS_SECRET_ACCESS_KEY: key, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: base });
  // No checksum computed by the SDK: it would send it as an aws-chunked trailer, which s3rver stores as data and
  // moto decodes slowly (120 MiB took over a minute). moto's CRC32 is computed here and sent as a header.
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: key, secretAccessKey: key }, requestChecksumCalculation: 'WHEN_REQUIRED' });
  return {
    kind: 's3',
    endpoint,
    host: '127.0.0.1',
    port,
    env: envFor(endpoint),
    envFor,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async put(bucket, objectKey, body) {
      const length = Buffer.isBuffer(body) ? body.length : (await stat(body.file)).size;
      const checksum = options.withCrc32 ? { ChecksumAlgorithm: 'CRC32' as const, ChecksumCRC32: await crc32Base64Of(body) } : {};
      const data = Buffer.isBuffer(body) ? body : createReadStream(body.file);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey, Body: data, ContentLength: length, ...checksum }));
    },
    async remove(bucket, objectKey) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey }));
    },
    async stop() {
      client.destroy();
      await stopProcess(proc);
      if (options.dataDir) await rm(options.dataDir, { recursive: true, force: true });
    },
  };
}

export function gcsEmulatorPath(): string {
  return join(ROOT, '.venv/bin/gcp-storage-emulator');
}

export async function startGcs(): Promise<Emulator> {
  const bin = gcsEmulatorPath();
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run .ci/install-emulators.sh (creates .venv with gcp-storage-emulator)`);
  const port = await freePort();
  // Through test/helpers/gcs_emulator.py: threaded server, no O(n^2) index rewrites (see that file).
  const python = join(ROOT, '.venv/bin/python');
  const launcher = join(ROOT, 'test/helpers/gcs_emulator.py');
  const proc = startProcess(python, [launcher, 'start', '--host', '127.0.0.1', '--port', String(port), '--in-memory'], { ...childEnv(), PYTHONUNBUFFERED: '1' });
  const endpoint = `http://127.0.0.1:${port}`;
  await waitReady(proc, endpoint + '/', 'gcp-storage-emulator');
  const envFor = (base: string) => ({ STORAGE_EMULATOR_HOST: base, GOOGLE_CLOUD_PROJECT: 'cloud-ingest-test' });
  const saved = process.env.STORAGE_EMULATOR_HOST;
  process.env.STORAGE_EMULATOR_HOST = endpoint;
  const storage = new Storage({ projectId: 'cloud-ingest-test', apiEndpoint: endpoint });
  if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
  else process.env.STORAGE_EMULATOR_HOST = saved;
  return {
    kind: 'gcs',
    endpoint,
    host: '127.0.0.1',
    port,
    env: envFor(endpoint),
    envFor,
    async createBucket(name) {
      await storage.createBucket(name);
    },
    async put(bucket, key, body) {
      // A plain `uploadType=media` upload (the JSON API's simple upload), streamed: the emulator
      // parses the SDK's multipart uploads very slowly (150 MiB took minutes).
      const size = Buffer.isBuffer(body) ? body.length : (await stat(body.file)).size;
      // The emulator cannot take an empty media upload (it reads no body as "no data"): the SDK's multipart one works.
      if (size === 0) {
        await storage.bucket(bucket).file(key).save(Buffer.alloc(0), { resumable: false, validation: false });
        return;
      }
      const url = `${endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=media&name=${encodeURIComponent(key)}`;
      await new Promise<void>((res, rej) => {
        const req = request(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } }, (r) => {
          r.resume();
          r.on('end', () => (r.statusCode === 200 ? res() : rej(new Error(`GCS emulator upload of ${key}: HTTP ${r.statusCode}`))));
        });
        req.on('error', rej);
        if (Buffer.isBuffer(body)) req.end(body);
        else createReadStream(body.file).pipe(req);
      });
    },
    async remove(bucket, key) {
      await storage.bucket(bucket).file(key).delete();
    },
    async stop() {
      await stopProcess(proc);
    },
  };
}

export async function startAzure(): Promise<Emulator> {
  const dir = await mkdtemp(join(tmpdir(), 'ci-azurite-'));
  const port = await freePort();
  const entry = join(ROOT, 'node_modules/azurite/dist/src/blob/main.js');
  const proc = startProcess(
    process.execPath,
    [entry, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dir, '--silent', '--skipApiVersionCheck', '--loose', '--disableTelemetry'],
    childEnv(),
  );
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  await waitReady(proc, endpoint + '?comp=list', 'Azurite');
  const connectionString = (base: string) =>
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${base};`;
  const envFor = (base: string) => ({ AZURE_STORAGE_CONNECTION_STRING: connectionString(base) });
  const service = BlobServiceClient.fromConnectionString(connectionString(endpoint));
  return {
    kind: 'azure',
    endpoint,
    host: '127.0.0.1',
    port,
    env: envFor(endpoint),
    envFor: (base: string) => envFor(base.replace(/\/+$/, '') + (base.includes(AZURITE_ACCOUNT) ? '' : `/${AZURITE_ACCOUNT}`)),
    async createBucket(name) {
      await service.getContainerClient(name).create();
    },
    async put(bucket, key, body) {
      const blob = service.getContainerClient(bucket).getBlockBlobClient(key);
      if (Buffer.isBuffer(body)) {
        // One Put Blob request: the store then keeps a Content-MD5 for the blob.
        await blob.upload(body, body.length);
      } else {
        const { size } = await stat(body.file);
        // One Put Blob request streamed from the file (no blocks), so the blob carries a Content-MD5.
        await blob.upload(() => createReadStream(body.file), size);
      }
    },
    async remove(bucket, key) {
      await service.getContainerClient(bucket).getBlockBlobClient(key).delete();
    },
    async stop() {
      await stopProcess(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function startEmulator(kind: EmulatorKind): Promise<Emulator> {
  switch (kind) {
    case 's3':
      return startS3();
    case 'gcs':
      return startGcs();
    case 'azure':
      return startAzure();
  }
}
