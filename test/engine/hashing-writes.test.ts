// Streams hashed and written on a hashing thread (FileSink, FolderNode.writeHashing), and a file's checksum
// taken from its chunks in order while they arrive (SequentialHash, SourceChecksumFollower).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCopyError, HashPool } from '../../electron/engine/hash/pool.ts';
import type { SequentialHash } from '../../electron/engine/hash/pool.ts';
import { chunkLineHead, parseLine } from '../../electron/engine/nodes/folder-index.ts';
import { FolderNode } from '../../electron/engine/nodes/folder-node.ts';
import { memberHeader } from '../../electron/engine/pack/tar.js';
import { NodeError } from '../../electron/engine/nodes/node.ts';
import { chooseSourceCheck, combinedCrc, SourceChecksumFollower } from '../../electron/engine/storage/source-checksum.ts';
import type { ObjectInfo } from '../../electron/engine/storage/driver.ts';
import { Crc32c } from '../storage/data.ts';
import { folderTemps } from '../nodes/folder-layout.ts';

const pool = new HashPool(2);
/** Threads that open source files and rename finished ones with Linux's own calls from the first file (linux-calls.js). */
const linuxCallsPool = new HashPool(2, { linuxCallsAfter: 0 });
/** File copies behave alike whichever calls a thread makes them with. */
const COPYING_POOLS = [
  ['Node calls', pool],
  ['Linux calls', linuxCallsPool],
] as const;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ci-hashing-writes-'));
});
afterAll(async () => {
  await Promise.all([pool.close(), linuxCallsPool.close()]);
  await rm(dir, { recursive: true, force: true });
});

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** Yields `data` in pieces of odd sizes, as a socket would. */
function pieces(data: Buffer, size = 61_441): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) return void this.push(null);
      this.push(data.subarray(offset, offset + size));
      offset += size;
    },
  });
}

/** Yields `good` bytes, then fails as a dropped connection does. */
function failingAfter(good: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= good) return void this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      const piece = randomBytes(Math.min(65_536, good - sent));
      sent += piece.length;
      this.push(piece);
    },
  });
}

describe.each(COPYING_POOLS)('HashPool.copyFile (%s)', (_, pool) => {
  let here: string;
  beforeAll(async () => {
    here = await mkdtemp(join(dir, 'copies-'));
  });

  it('copies and hashes a range, reports every byte, and with renameTo renames the copy unless the name is taken', async () => {
    const data = randomBytes(9 * 1024 * 1024 + 3);
    const source = join(here, 'copy-source.bin');
    await writeFile(source, data);
    const range = { offset: 1000, length: data.length - 2000 };
    const expected = data.subarray(range.offset, range.offset + range.length);
    const [temp, final] = [join(here, 'copy.part'), join(here, 'copy.bin')];
    let reported = 0;
    const copied = await pool.copyFile({ algorithm: 'md5', source, ...range, target: temp, renameTo: final }, { onBytes: (n) => (reported += n) });
    expect(copied).toEqual({ checksum: { algorithm: 'md5', hex: md5(expected) }, renamed: true, indexed: false });
    expect(reported).toBe(range.length);
    expect((await readFile(final)).equals(expected)).toBe(true);

    const again = await pool.copyFile({ algorithm: 'md5', source, offset: 0, length: 10, target: temp, renameTo: final });
    expect(again.renamed).toBe(false);
    expect((await readFile(temp)).equals(data.subarray(0, 10))).toBe(true);
    expect((await readFile(final)).equals(expected), 'the file that had the name is left as it was').toBe(true);
    expect((await pool.copyFile({ algorithm: 'md5', source, offset: 0, length: 10, target: join(here, 'plain.bin') })).renamed).toBe(false);
  });

  it('with an index line, appends it completed with the checksum once renamed, and only then', async () => {
    const source = join(here, 'indexed-source.bin');
    await writeFile(source, randomBytes(5000));
    const index = { path: join(here, 'index.jsonl'), head: chunkLineHead({ id: 'x_chunk_0', file: 'x', index: 0, offset: 0, size: 5000 }) };
    const first = await pool.copyFile({ algorithm: 'md5', source, offset: 0, length: 5000, target: join(here, 'indexed.part'), renameTo: join(here, 'indexed.bin'), index });
    expect(first).toMatchObject({ renamed: true, indexed: true });
    const taken = await pool.copyFile({ algorithm: 'md5', source, offset: 0, length: 10, target: join(here, 'indexed.part'), renameTo: join(here, 'indexed.bin'), index });
    expect(taken).toMatchObject({ renamed: false, indexed: false });
    const sink = pool.fileSink('md5', join(here, 'indexed-sink.part'), { crc: 'crc32c', renameTo: join(here, 'indexed-sink.bin'), index: { ...index, head: chunkLineHead({ id: 'y_chunk_0', file: 'y', index: 0, offset: 0, size: 3 }) } });
    await pipeline(Readable.from([Buffer.from('abc')]), sink);
    await sink.digest;
    expect(sink.indexed).toBe(true);
    const lines = (await readFile(index.path, 'utf8')).split('\n').filter(Boolean).map((line) => parseLine(line));
    expect(lines).toEqual([
      { id: 'x_chunk_0', file: 'x', index: 0, offset: 0, size: 5000, checksum: first.checksum },
      { id: 'y_chunk_0', file: 'y', index: 0, offset: 0, size: 3, checksum: { algorithm: 'md5', hex: md5(Buffer.from('abc')) }, crc: { kind: 'crc32c', value: new Crc32c().update(Buffer.from('abc')).value() } },
    ]);
  });
});

describe.each(COPYING_POOLS)('a local copy checked to stay inside its source folder (FileCopyJob.inside; %s)', (_, pool) => {
  it('copies a file inside, or reached through a link that stays inside; a link or .. that leads out fails on the source side', async () => {
    const root = await mkdtemp(join(dir, 'inside-'));
    const outside = await mkdtemp(join(dir, 'outside-'));
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'sub', 'in.bin'), 'inside');
    await writeFile(join(outside, 'secret.bin'), 'secret');
    await symlink(join(root, 'sub', 'in.bin'), join(root, 'alias.bin'));
    await symlink(join(outside, 'secret.bin'), join(root, 'leak.bin'));
    await symlink(outside, join(root, 'out'));
    const real = await realpath(root);
    const copy = (source: string) => pool.copyFile({ algorithm: 'md5', source, inside: real, offset: 0, length: 6, target: join(dir, 'inside-copy.bin') });
    for (const source of [join(real, 'sub', 'in.bin'), join(real, 'alias.bin')]) expect((await copy(source)).checksum.hex).toBe(md5(Buffer.from('inside')));
    for (const source of [join(real, 'leak.bin'), join(real, 'out', 'secret.bin'), join(real, 'sub', '..', '..', basename(outside), 'secret.bin')]) {
      const error = await copy(source).catch((e: unknown) => e);
      expect(error, source).toBeInstanceOf(FileCopyError);
      expect(error).toMatchObject({ code: 'EACCES', side: 'source' });
    }
  });

  it('a shard member that leads out of the source folder fails the shard, naming the member', async () => {
    const root = await realpath(await mkdtemp(join(dir, 'shard-root-')));
    const outside = await mkdtemp(join(dir, 'shard-outside-'));
    await writeFile(join(root, 'a.txt'), 'aaaa');
    await writeFile(join(outside, 'b.txt'), 'bbbb');
    await symlink(join(outside, 'b.txt'), join(root, 'b.txt'));
    const shard = (keys: string[]) => ({ root, keys, sizes: keys.map(() => 4), etags: keys.map(() => undefined), headers: Buffer.concat(keys.map((k) => memberHeader(k, 4))), headerLengths: keys.map((k) => memberHeader(k, 4).length) });
    const job = { algorithm: 'md5' as const, source: '', offset: 0, length: 0, target: join(dir, 'shard.tar') };
    await expect(pool.copyFile({ ...job, pack: shard(['a.txt']) })).resolves.toMatchObject({ checksum: { algorithm: 'md5' } });
    await expect(pool.copyFile({ ...job, pack: shard(['a.txt', 'b.txt']) })).rejects.toMatchObject({ code: 'EACCES', side: 'source', key: 'b.txt' });
  });
});

describe('FileSink', () => {
  it('writes exactly the bytes it is given and hashes them, across many blocks', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 12_345);
    const target = join(dir, 'sink.bin');
    const sink = pool.fileSink('md5', target);
    let counted = 0;
    sink.onBytes = (n) => (counted += n);
    await pipeline(pieces(data), sink);
    expect((await sink.digest).hex).toBe(md5(data));
    expect((await readFile(target)).equals(data)).toBe(true);
    expect(counted).toBe(data.length);
  });

  it('asked for one, also gives the CRC (CRC-32C or CRC-32) of what it wrote', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 5);
    const sink = pool.fileSink('md5', join(dir, 'crc.bin'), { crc: 'crc32c' });
    await pipeline(pieces(data), sink);
    expect((await sink.digest).hex).toBe(md5(data));
    expect(sink.crc).toEqual({ kind: 'crc32c', value: new Crc32c().update(data).value() });
    const ieee = pool.fileSink('md5', join(dir, 'crc32.bin'), { crc: 'crc32' });
    await pipeline(pieces(data), ieee);
    await ieee.digest;
    expect(ieee.crc).toEqual({ kind: 'crc32', value: crc32(data) });
    const plain = pool.fileSink('md5', join(dir, 'plain.bin'));
    await pipeline(pieces(data), plain);
    await plain.digest;
    expect(plain.crc).toBeUndefined();
  });

  it('with renameTo, renames the closed file there in the same job, unless the name is taken', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 7);
    const [temp, final] = [join(dir, 'rename-me.part'), join(dir, 'renamed.bin')];
    const sink = pool.fileSink('md5', temp, { renameTo: final });
    await pipeline(pieces(data), sink);
    expect((await sink.digest).hex).toBe(md5(data));
    expect(sink.renamed).toBe(true);
    expect((await readFile(final)).equals(data)).toBe(true);
    expect((await readdir(dir)).includes('rename-me.part')).toBe(false);

    const other = randomBytes(1000);
    const taken = pool.fileSink('md5', temp, { renameTo: final });
    await pipeline(pieces(other), taken);
    expect((await taken.digest).hex).toBe(md5(other));
    expect(taken.renamed).toBe(false);
    expect((await readFile(final)).equals(data), 'the file that had the name is left as it was').toBe(true);
    expect((await readFile(temp)).equals(other)).toBe(true);
  });

  it('an empty stream gives an empty file and the empty digest', async () => {
    const target = join(dir, 'empty.bin');
    const sink = pool.fileSink('sha256', target);
    await pipeline(Readable.from([]), sink);
    expect((await sink.digest).hex).toBe(createHash('sha256').digest('hex'));
    expect((await readFile(target)).length).toBe(0);
  });

  it('a target that cannot be written fails the stream with the errno, without reading the whole source', async () => {
    const sink = pool.fileSink('md5', join(dir, 'no-such-folder', 'x.bin'));
    let produced = 0;
    const endless = new Readable({
      read() {
        produced += 65_536;
        this.push(Buffer.alloc(65_536));
      },
    });
    const error = await pipeline(endless, sink).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(FileCopyError);
    expect(error).toMatchObject({ code: 'ENOENT', side: 'target' });
    await expect(sink.digest).rejects.toThrow();
    expect(produced).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('HashTap', () => {
  it('many streams at once share the hashing threads and their blocks without mixing bytes', async () => {
    const inputs = Array.from({ length: 40 }, (_, i) => randomBytes(50_000 + i * 40_013));
    const results = await Promise.all(
      inputs.map(async (data, i) => {
        const tap = pool.tap(i % 2 ? 'md5' : 'sha256');
        tap.resume();
        await pipeline(pieces(data, 7_919 + i), tap);
        return (await tap.digest).hex;
      }),
    );
    expect(results).toEqual(inputs.map((data, i) => createHash(i % 2 ? 'md5' : 'sha256').update(data).digest('hex')));
  });

  it('asked for one, also gives the CRC of what passed through it', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 77);
    const tap = pool.tap('sha256', { crc: 'crc32c' });
    const out: Buffer[] = [];
    tap.on('data', (piece: Buffer) => out.push(piece));
    await pipeline(pieces(data), tap);
    expect((await tap.digest).hex).toBe(createHash('sha256').update(data).digest('hex'));
    expect(tap.crc).toEqual({ kind: 'crc32c', value: new Crc32c().update(data).value() });
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });
});

describe('FolderNode.writeHashing', () => {
  const meta = (id: string, size: number) => ({ id, file: 'f.bin', index: 0, offset: 0, size, sourceEtag: 'v1' });

  it('stores the chunk under its name with the checksum of its bytes; nothing is left in .tmp', async () => {
    const node = new FolderNode('n1', join(dir, 'node-1'));
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const stored = await node.writeHashing(meta('f.bin_chunk_0', data.length), pieces(data), { pool, algorithm: 'md5' });
    expect(stored.checksum).toEqual({ algorithm: 'md5', hex: md5(data) });
    expect((await readFile(stored.location)).equals(data)).toBe(true);
    expect(await node.find('f.bin_chunk_0')).toMatchObject({ size: data.length, checksum: { hex: md5(data) } });
    expect(await folderTemps(join(dir, 'node-1'))).toEqual([]);
  });

  it("a source that fails midway rejects with the source's own error, and leaves no chunk and no temp file", async () => {
    const node = new FolderNode('n2', join(dir, 'node-2'));
    const error = await node.writeHashing(meta('g.bin_chunk_0', 4 * 1024 * 1024), failingAfter(1024 * 1024), { pool, algorithm: 'md5' }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(NodeError);
    expect(error).toMatchObject({ code: 'ECONNRESET' });
    expect(await node.find('g.bin_chunk_0')).toBeUndefined();
    expect(await folderTemps(join(dir, 'node-2'))).toEqual([]);
  });

  it('asked to keep its hash, hands over one that has taken the chunk and can go on with the next', async () => {
    const node = new FolderNode('n4', join(dir, 'node-4'));
    const first = randomBytes(2 * 1024 * 1024 + 3);
    const second = randomBytes(1024 * 1024 + 11);
    const kept: SequentialHash[] = [];
    const stored = await node.writeHashing(meta('k.bin_chunk_0', first.length), pieces(first), { pool, algorithm: 'md5', keepHash: (h) => kept.push(h) });
    expect(stored.checksum.hex).toBe(md5(first));
    expect(kept).toHaveLength(1);
    expect(kept[0]!.inputs, 'the chunk counts as its first input').toBe(1);
    // The next chunk's write can carry it on (continueHash), as it would one it had fed itself.
    const next = await node.writeHashing(meta('k.bin_chunk_1', second.length), pieces(second), { pool, algorithm: 'md5', continueHash: kept[0]! });
    expect(next.checksum.hex).toBe(md5(second));
    expect(kept[0]!.inputs).toBe(2);
    expect(await kept[0]!.digest()).toBe(md5(Buffer.concat([first, second])));

    const failed: SequentialHash[] = [];
    await node.writeHashing(meta('k.bin_chunk_1', 4 * 1024 * 1024), failingAfter(1024 * 1024), { pool, algorithm: 'md5', keepHash: (h) => failed.push(h) }).catch(() => undefined);
    expect(failed).toEqual([]);
  });

  it("a folder that cannot take the chunk is the node's error (NodeError), naming the node", async () => {
    const root = join(dir, 'node-3');
    const node = new FolderNode('n3', root);
    expect((await node.probe()).ok).toBe(true);
    await rm(join(root, '.tmp'), { recursive: true });
    await writeFile(join(root, '.tmp'), 'not a folder');
    const error = await node.writeHashing(meta('h.bin_chunk_0', 1000), pieces(randomBytes(1000)), { pool, algorithm: 'md5' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeError);
    expect((error as NodeError).code).toBe('io');
    expect((error as NodeError).message).toMatch(/node n3: writing h\.bin_chunk_0 failed/);
  });
});

describe('SourceChecksumFollower', () => {
  const chunkSize = 1024 * 1024;
  const data = randomBytes(4 * chunkSize + 999);
  const chunks = Array.from({ length: 5 }, (_, i) => data.subarray(i * chunkSize, (i + 1) * chunkSize));
  const object: ObjectInfo = { key: 'f.bin', size: data.length, etag: 'e', checksums: { md5Hex: md5(data) } };

  async function chunkFiles(name: string): Promise<string[]> {
    const paths = chunks.map((_, i) => join(dir, `${name}-${i}.chunk`));
    await Promise.all(paths.map((p, i) => writeFile(p, chunks[i]!)));
    return paths;
  }

  const follow = (o: ObjectInfo, chunkCount: number) => SourceChecksumFollower.for(chooseSourceCheck(o, 's3', chunkCount, 'md5'), chunkCount, pool);

  it('each file is checked the cheapest way its store allows', () => {
    const small = { ...object, size: 10 };
    const withCrc = { ...object, checksums: { md5Hex: md5(data), crc32cBase64: 'AAAAAA==' } };
    const withCrc32 = { ...object, checksums: { md5Hex: md5(data), crc32Base64: 'AAAAAA==' } };
    // One chunk hashed with the store's algorithm already is the file's checksum.
    expect(chooseSourceCheck(small, 'gcs', 1, 'md5')?.mode).toBe('free');
    // Several chunks and a store CRC32C: the chunks' CRCs are combined, nothing is hashed twice.
    expect(chooseSourceCheck(withCrc, 'gcs', 5, 'md5')).toMatchObject({ mode: 'combine', plan: { kind: 'gcs-crc32c' } });
    // What current AWS SDKs upload with: S3 keeps a CRC32 (IEEE), combined the same way.
    expect(chooseSourceCheck(withCrc32, 's3', 5, 'md5')).toMatchObject({ mode: 'combine', plan: { kind: 's3-crc32' } });
    // Only an MD5: hashed again in order.
    expect(chooseSourceCheck(object, 's3', 5, 'md5')).toMatchObject({ mode: 'follow', plan: { kind: 's3-etag-md5' } });
    expect(chooseSourceCheck(small, 's3', 1, 'sha256')?.mode).toBe('follow');
    expect(chooseSourceCheck({ key: 'x', size: 10 }, 'local', 1, 'md5')).toBeUndefined();
    expect(follow(object, 5)).toBeDefined();
    expect(follow(small, 1)).toBeUndefined();
    expect(SourceChecksumFollower.for(chooseSourceCheck(withCrc, 'gcs', 5, 'md5'), 5, pool)).toBeUndefined();
  });

  it("a file's CRC follows from its chunks' CRCs and sizes, and needs every one of them, of the same kind", () => {
    const crcs = chunks.map((c) => ({ size: c.length, crc: { kind: 'crc32c' as const, value: new Crc32c().update(c).value() } }));
    expect(combinedCrc('crc32c', crcs)).toBe(new Crc32c().update(data).base64());
    expect(combinedCrc('crc32c', [])).toBe(new Crc32c().base64());
    expect(combinedCrc('crc32c', [crcs[0]!, { size: crcs[1]!.size }])).toBeUndefined();
    const ieee = chunks.map((c) => ({ size: c.length, crc: { kind: 'crc32' as const, value: crc32(c) } }));
    const whole = Buffer.alloc(4);
    whole.writeUInt32BE(crc32(data));
    expect(combinedCrc('crc32', ieee)).toBe(whole.toString('base64'));
    expect(combinedCrc('crc32', crcs)).toBeUndefined();
  });

  it('chunks arriving out of order, from files and from streams, give the MD5 of the whole object', async () => {
    const paths = await chunkFiles('order');
    const follower = follow(object, 5)!;
    for (const i of [3, 1, 4, 0, 2]) {
      follower.add(i, i === 1 ? { stream: async () => pieces(chunks[1]!, 4096) } : { file: paths[i]! });
    }
    expect(await follower.result()).toBe(md5(data));
  });

  it("a chunk its own write fed to the file's hash (continueFor) is not read again, and the MD5 is still the whole object's", async () => {
    const paths = await chunkFiles('fed');
    const follower = follow(object, 5)!;
    const hash = (await follower.continueFor(0))!;
    expect(await follower.continueFor(1)).toBeUndefined(); // chunk 0 is not in yet
    const sink = pool.fileSink('md5', join(dir, 'fed-0.bin'), { continues: hash });
    await pipeline(pieces(chunks[0]!), sink);
    await sink.digest;
    // Chunk 0 is said to be somewhere unreadable: reading it would spoil the result.
    for (const i of [2, 0, 4, 1, 3]) follower.add(i, { file: i === 0 ? join(dir, 'gone.chunk') : paths[i]! });
    expect(await follower.result()).toBe(md5(data));
  });

  it('a chunk that never arrived, or cannot be read, gives no result (the check then reads everything back)', async () => {
    const paths = await chunkFiles('gaps');
    const missing = follow(object, 5)!;
    for (const i of [0, 1, 2, 4]) missing.add(i, { file: paths[i]! });
    expect(await missing.result()).toBeUndefined();

    const unreadable = follow(object, 5)!;
    paths.forEach((p, i) => unreadable.add(i, { file: i === 2 ? join(dir, 'gone.chunk') : p }));
    expect(await unreadable.result()).toBeUndefined();
  });
});

describe('a whole-file hash carried along chunk writes (continueHash)', () => {
  const chunkSize = 3 * 1024 * 1024;
  const chunksOf = (data: Buffer): Buffer[] => Array.from({ length: Math.ceil(data.length / chunkSize) }, (_, i) => data.subarray(i * chunkSize, (i + 1) * chunkSize));
  const meta = (key: string, i: number, size: number) => ({ id: `${key}_chunk_${i}`, file: key, index: i, offset: i * chunkSize, size });

  const firstPath = ['a local copy', 'a file sink', 'a tap'];
  for (const [algorithm, rotation] of [['crc32c', 0], ['md5', 0], ['md5', 1], ['md5', 2]] as const) {
    // md5 chunks: chunk 0's own hash is the whole-file hash so far (nothing hashed twice), by whichever path it goes.
    it(`a file checksummed ${algorithm} per chunk gets its whole-file MD5 in the same pass, through every write path (chunk 0 through ${firstPath[rotation]})`, async () => {
      const data = randomBytes(4 * chunkSize + 4321);
      const source = join(dir, `carried-${algorithm}-${rotation}.bin`);
      await writeFile(source, data);
      const node = new FolderNode('carry', join(dir, `carry-node-${algorithm}-${rotation}`));
      const whole = pool.sequence('md5');
      const chunks = chunksOf(data);
      const chunkChecksum = (bytes: Buffer): string => (algorithm === 'md5' ? md5(bytes) : new Crc32c().update(bytes).value().toString(16).padStart(8, '0'));
      for (const [i, bytes] of chunks.entries()) {
        expect(whole.inputs).toBe(i);
        const options = { pool, algorithm, continueHash: whole };
        const chunk = meta(`carried-${algorithm}-${rotation}.bin`, i, bytes.length);
        let checksum: string;
        if ((i + rotation) % 3 === 0) checksum = (await node.writeFromFile(chunk, { path: source, offset: i * chunkSize, length: bytes.length }, options)).checksum.hex;
        else if ((i + rotation) % 3 === 1) checksum = (await node.writeHashing(chunk, pieces(bytes), options)).checksum.hex;
        else {
          // As a teed transfer does it: a tap, then the word that a copy was stored.
          const tap = pool.tap(algorithm, { continues: whole });
          await pipeline(pieces(bytes), tap, new Writable({ write: (_chunk, _encoding, done) => done() }));
          checksum = (await tap.digest).hex;
          await tap.settleAlong(true);
        }
        expect(checksum).toBe(chunkChecksum(bytes));
      }
      expect(whole.inputs).toBe(chunks.length);
      expect(await whole.digest()).toBe(md5(data));
      await node.close();
    });
  }

  it('a write that fails part way leaves the hash as it was; its retry feeds it once', async () => {
    const data = randomBytes(2 * chunkSize + 99);
    const source = join(dir, 'retried.bin');
    await writeFile(source, data);
    const node = new FolderNode('carry-retry', join(dir, 'carry-retry-node'));
    const whole = pool.sequence('md5');
    const [first, second, third] = chunksOf(data) as [Buffer, Buffer, Buffer];
    const options = { pool, algorithm: 'crc32c' as const, continueHash: whole };
    await node.writeFromFile(meta('retried.bin', 0, first.length), { path: source, offset: 0, length: first.length }, options);
    // A local file that shrank mid-read, then a stream that drops: both fail after some of their bytes went by.
    const shrunk = join(dir, 'retried-short.bin');
    await writeFile(shrunk, data.subarray(0, chunkSize + 1000));
    await expect(node.writeFromFile(meta('retried.bin', 1, second.length), { path: shrunk, offset: chunkSize, length: second.length }, options)).rejects.toBeInstanceOf(FileCopyError);
    await expect(node.writeHashing(meta('retried.bin', 1, second.length), failingAfter(2 * 1024 * 1024), options)).rejects.toThrow('socket hang up');
    expect(whole.inputs).toBe(1);
    await node.writeHashing(meta('retried.bin', 1, second.length), pieces(second), options);
    await node.writeFromFile(meta('retried.bin', 2, third.length), { path: source, offset: 2 * chunkSize, length: third.length }, options);
    expect(whole.inputs).toBe(3);
    expect(await whole.digest()).toBe(md5(data));
    await node.close();
  });

  it('teed to two nodes, the bytes count once a copy is stored: not for an attempt no node kept', async () => {
    const data = randomBytes(2 * chunkSize + 5);
    const whole = pool.sequence('md5');
    const [first, second, third] = chunksOf(data) as [Buffer, Buffer, Buffer];
    const tapped = async (bytes: Buffer, stored: boolean): Promise<void> => {
      const inputsBefore = whole.inputs;
      const tap = pool.tap('crc32c', { continues: whole });
      await pipeline(pieces(bytes), tap, new Writable({ write: (_chunk, _encoding, done) => done() }));
      await tap.digest;
      await tap.settleAlong(stored);
      expect(whole.inputs, 'counted once settled').toBe(inputsBefore + (stored ? 1 : 0));
    };
    await tapped(first, true);
    await tapped(second, false); // every node failed: the run sends the chunk again
    await tapped(second, true);
    await tapped(third, true);
    await whole.digest().then((hex) => expect(hex).toBe(md5(data)));
    expect(whole.inputs).toBe(3);
  });
});
