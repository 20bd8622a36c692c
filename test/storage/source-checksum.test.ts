// Which store checksum a file is checked against, and computing it from delivered chunks.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { checkSourceChecksum, chooseSourceCheck, combinedCrc, planSourceChecksum } from '../../electron/engine/storage/source-checksum.ts';
import type { ObjectInfo } from '../../electron/engine/storage/driver.ts';
import { Crc32c } from './data.ts';

const pool = new HashPool(2);
afterAll(() => pool.close());

function chunksOf(data: Buffer, size: number): { id: string; bytes: Buffer; checksum: string }[] {
  const out = [];
  for (let i = 0, n = 0; i < data.length; i += size, n++) {
    const bytes = data.subarray(i, i + size);
    out.push({ id: `f_chunk_${n}`, bytes, checksum: createHash('md5').update(bytes).digest('hex') });
  }
  return out;
}

describe('CRC32C', () => {
  it('matches the published check value and what GCS reports', () => {
    expect(new Crc32c().update(Buffer.from('123456789')).value()).toBe(0xe3069283);
    // gcp-storage-emulator (google_crc32c) reported this for "hello world".
    expect(new Crc32c().update(Buffer.from('hello world')).base64()).toBe('yZRlqg==');
    expect(new Crc32c().base64()).toBe('AAAAAA==');
  });

  it('gives the same value however the bytes are split', () => {
    const data = randomBytes(100_003);
    const whole = new Crc32c().update(data).value();
    const split = new Crc32c();
    for (let i = 0; i < data.length; i += 7_777) split.update(data.subarray(i, i + 7_777));
    expect(split.value()).toBe(whole);
  });
});

describe('planSourceChecksum', () => {
  const md5 = 'd41d8cd98f00b204e9800998ecf8427e';
  it('prefers the MD5, names it per store', () => {
    const o: ObjectInfo = { key: 'k', size: 0, checksums: { md5Hex: md5, crc32cBase64: 'AAAAAA==' } };
    expect(planSourceChecksum(o, 's3')).toEqual({ algorithm: 'md5', value: md5, kind: 's3-etag-md5' });
    expect(planSourceChecksum(o, 'gcs')?.kind).toBe('gcs-md5');
    expect(planSourceChecksum(o, 'azure')?.kind).toBe('azure-content-md5');
  });

  it('never trusts an MD5 on a multipart object, falls back to SHA-256 then CRC32C, else nothing', () => {
    const sha = createHash('sha256').update('x').digest();
    expect(planSourceChecksum({ key: 'k', size: 1, multipart: true, checksums: { md5Hex: md5, sha256Base64: sha.toString('base64') } }, 's3')).toEqual({
      algorithm: 'sha256',
      value: sha.toString('hex'),
      kind: 's3-sha256',
    });
    expect(planSourceChecksum({ key: 'k', size: 1, checksums: { crc32cBase64: 'yZRlqg==' } }, 'gcs')).toEqual({ algorithm: 'crc32c', value: 'yZRlqg==', kind: 'gcs-crc32c' });
    expect(planSourceChecksum({ key: 'k', size: 1, multipart: true, checksums: { md5Hex: md5 } }, 's3')).toBeUndefined();
    expect(planSourceChecksum({ key: 'k', size: 1 }, 'local')).toBeUndefined();
  });
});

describe('checkSourceChecksum', () => {
  const data = randomBytes(3 * 65_536 + 123);
  const chunks = chunksOf(data, 65_536);
  const chunkBytes = (id: string) => ({ stream: async () => Readable.from([chunks.find((c) => c.id === id)!.bytes]) });
  const base = { chunks: chunks.map(({ id, checksum }) => ({ id, checksum })), algorithm: 'md5' as const, pool, chunkBytes };
  const noReads = () => ({ stream: () => Promise.reject(new Error('must not read back')) });

  it('reads multi-chunk files back through one MD5 and reports a match or a mismatch', async () => {
    const good = createHash('md5').update(data).digest('hex');
    expect(await checkSourceChecksum({ ...base, object: { key: 'f', size: data.length, checksums: { md5Hex: good } }, store: 'gcs' })).toEqual({ kind: 'gcs-md5', value: good, matched: true });
    const bad = createHash('md5').update('other').digest('hex');
    expect((await checkSourceChecksum({ ...base, object: { key: 'f', size: data.length, checksums: { md5Hex: bad } } }))?.matched).toBe(false);
  });

  it('reads chunk files on this machine back on a hashing thread, in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ci-readback-'));
    try {
      const files = new Map(chunks.map((c) => [c.id, join(dir, c.id)]));
      await Promise.all(chunks.map((c) => writeFile(files.get(c.id)!, c.bytes)));
      const good = createHash('md5').update(data).digest('hex');
      const fromFiles = { ...base, chunkBytes: (id: string) => ({ file: files.get(id)! }), object: { key: 'f', size: data.length, checksums: { md5Hex: good } }, store: 's3' as const };
      expect(await checkSourceChecksum(fromFiles)).toEqual({ kind: 's3-etag-md5', value: good, matched: true });
      const crc = new Crc32c().update(data).base64();
      expect((await checkSourceChecksum({ ...fromFiles, object: { key: 'f', size: data.length, checksums: { crc32cBase64: crc } } }))?.matched).toBe(true);
      const ieee = Buffer.alloc(4);
      ieee.writeUInt32BE(crc32(data));
      expect(await checkSourceChecksum({ ...fromFiles, object: { key: 'f', size: data.length, checksums: { crc32Base64: ieee.toString('base64') } } })).toEqual({
        kind: 's3-crc32',
        value: ieee.toString('base64'),
        matched: true,
      });
      const otherCrc = new Crc32c().update(Buffer.from('other')).base64();
      expect((await checkSourceChecksum({ ...fromFiles, object: { key: 'f', size: data.length, checksums: { crc32cBase64: otherCrc } } }))?.matched).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('computes CRC32C over the chunks when that is all the store keeps', async () => {
    const crc = new Crc32c().update(data).base64();
    expect(await checkSourceChecksum({ ...base, object: { key: 'f', size: data.length, checksums: { crc32cBase64: crc } }, store: 'gcs' })).toEqual({ kind: 'gcs-crc32c', value: crc, matched: true });
  });

  it('checks a CRC32C combined from the chunks without reading them back, and reports a mismatch', async () => {
    const object = { key: 'f', size: data.length, checksums: { md5Hex: createHash('md5').update(data).digest('hex'), crc32cBase64: new Crc32c().update(data).base64() } };
    const choice = chooseSourceCheck(object, 'gcs', chunks.length, 'md5')!;
    expect(choice.mode).toBe('combine');
    const unread = { ...base, chunkBytes: noReads, object, store: 'gcs' as const };
    const crcs = chunks.map((c) => ({ size: c.bytes.length, crc: { kind: 'crc32c' as const, value: new Crc32c().update(c.bytes).value() } }));
    expect(await checkSourceChecksum(unread, { plan: choice.plan, actual: combinedCrc('crc32c', crcs)! })).toEqual({ kind: 'gcs-crc32c', value: object.checksums.crc32cBase64, matched: true });
    // One chunk's bytes were not the store's: its CRC differs, and so does the combination.
    crcs[1] = { size: crcs[1]!.size, crc: { kind: 'crc32c', value: new Crc32c().update(randomBytes(crcs[1]!.size)).value() } };
    expect((await checkSourceChecksum(unread, { plan: choice.plan, actual: combinedCrc('crc32c', crcs)! }))?.matched).toBe(false);
  });

  it('reads chunks back through CRC32 (IEEE) when an S3 CRC32 must be checked and the chunks carry none', async () => {
    const whole = Buffer.alloc(4);
    whole.writeUInt32BE(crc32(data));
    const object = { key: 'f', size: data.length, checksums: { crc32Base64: whole.toString('base64') } };
    expect(await checkSourceChecksum({ ...base, object, store: 's3' })).toEqual({ kind: 's3-crc32', value: whole.toString('base64'), matched: true });
  });

  it('compares a one-chunk file without reading it back', async () => {
    const one = chunks[0]!;
    const result = await checkSourceChecksum({
      ...base,
      chunks: [{ id: one.id, checksum: one.checksum }],
      chunkBytes: noReads,
      object: { key: 'f', size: one.bytes.length, checksums: { md5Hex: one.checksum } },
      store: 's3',
    });
    expect(result).toEqual({ kind: 's3-etag-md5', value: one.checksum, matched: true });
  });
});
