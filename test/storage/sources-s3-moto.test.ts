// S3 on moto: objects uploaded the way current AWS SDKs upload them carry a CRC32 that S3 keeps. A multi-chunk
// file is checked against it by combining the chunks' CRC32s, taken while they were written: no second pass.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../electron/engine/config.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import type { DetectionResult } from '../../shared/types.ts';
import { writeCloudProject } from '../helpers/cloud-project.ts';
import { startMoto } from '../helpers/emulators.ts';
import type { Emulator } from '../helpers/emulators.ts';
import { crcOfFile, makeRandomFile, md5, MiB } from './data.ts';

const BUCKET = 'moto-ingest-bucket';
/**
 * Keys an XML listing cannot carry as they are: XML turns a carriage return into a line feed, so `cr\rx` came back
 * as `cr\nx` (another key, or none). Listed URL-encoded (`encoding-type=url`), then decoded: `+`, `%` and spaces too.
 */
const XML_KEYS = ['xml/cr\rx.bin', 'xml/cr\r\rtwo.bin', 'xml/ctl\u0001\u001fx.bin', 'xml/plus+and space%2B%.bin', 'xml/é\u0301 ü.bin'];
const detection: DetectionResult = { cloud: 'aws', signal: 'flag', detail: 'test', elapsedMs: 0, probes: [] };

let moto: Emulator;
let work: string;
let bigFile: string;
let bigMd5: string;

async function project(replicas = 1): Promise<string> {
  const root = await mkdtemp(join(work, 'project-'));
  await writeCloudProject(root, 'aws', { type: 's3', bucket: BUCKET, region: 'us-east-1' }, { chunk_size_mb: 50, max_concurrent_chunks: 4, retry_attempts: 2, retry_delay_seconds: 0.05, replicas });
  return root;
}

async function ingest(root: string, pattern: string) {
  const loaded = await loadConfig(join(root, 'config', 'data_sources.yml'));
  const saved = { ...process.env };
  Object.assign(process.env, moto.env);
  try {
    return { loaded, ...(await runIngest({ loaded, detection, pattern })) };
  } finally {
    for (const key of Object.keys(moto.env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ci-moto-'));
  moto = await startMoto();
  await moto.createBucket(BUCKET);
  bigFile = join(work, 'big.bin');
  bigMd5 = await makeRandomFile(bigFile, 120 * MiB + 12_345);
  await moto.put(BUCKET, 'big/object.bin', { file: bigFile });
  await moto.put(BUCKET, 'small/one.txt', Buffer.from('one chunk, checked by its own MD5'));
  for (const key of XML_KEYS) await moto.put(BUCKET, key, Buffer.from(`bytes of ${JSON.stringify(key)}`));
}, 180_000);

afterAll(async () => {
  await moto?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('S3 objects with a CRC32 (moto)', () => {
  it('a 3-chunk object is checked against the store CRC32, combined from the chunks, and reassembles byte-exact', async () => {
    const root = await project();
    const { manifest, manifestPath, loaded } = await ingest(root, 'big/**');
    expect(manifest.status).toBe('complete');
    const file = manifest.files[0]!;
    expect(file).toMatchObject({ key: 'big/object.bin', chunkCount: 3, status: 'complete' });
    expect(file.sourceChecksum).toEqual({ kind: 's3-crc32', value: await crcOfFile(bigFile, 'crc32'), matched: true });
    const chunks = manifest.chunks.filter((c) => c.file === 'big/object.bin');
    expect(chunks.every((c) => c.crc?.kind === 'crc32')).toBe(true);
    const out = join(root, 'out.bin');
    const report = await reassembleFile({ loaded, manifestPath, key: 'big/object.bin', outPath: out });
    expect(report.md5Hex).toBe(bigMd5);
  }, 120_000);

  it('with replicas: 2 (each chunk streamed to two nodes at once) the chunks still carry their CRC32', async () => {
    const root = await project(2);
    const { manifest } = await ingest(root, 'big/**');
    expect(manifest.files[0]!.sourceChecksum).toEqual({ kind: 's3-crc32', value: await crcOfFile(bigFile, 'crc32'), matched: true });
    const chunks = manifest.chunks.filter((c) => c.file === 'big/object.bin');
    expect(chunks.map((c) => c.copies.length)).toEqual([2, 2, 2]);
    expect(chunks.every((c) => c.crc?.kind === 'crc32')).toBe(true);
  }, 120_000);

  it('a one-chunk object is checked by its ETag MD5, which its chunk checksum already is', async () => {
    const root = await project();
    const { manifest } = await ingest(root, 'small/**');
    const file = manifest.files[0]!;
    expect(file.sourceChecksum).toEqual({ kind: 's3-etag-md5', value: md5('one chunk, checked by its own MD5'), matched: true });
    expect(manifest.chunks[0]!.crc).toBeUndefined();
  }, 60_000);
});

describe('S3 keys an XML listing would change (moto)', () => {
  it('are listed URL-encoded and decoded, so each is ingested under its own key and reassembles byte-exact', async () => {
    const root = await project();
    const { manifest, manifestPath, loaded } = await ingest(root, 'xml/**');
    expect(manifest.files.map((f) => f.key).sort()).toEqual([...XML_KEYS].sort());
    expect(manifest.files.filter((f) => f.status !== 'complete')).toEqual([]);
    for (const [i, key] of XML_KEYS.entries()) {
      const report = await reassembleFile({ loaded, manifestPath, key, outPath: join(root, `out-${i}`) });
      expect(report.md5Hex, JSON.stringify(key)).toBe(md5(`bytes of ${JSON.stringify(key)}`));
    }
  }, 60_000);
});
