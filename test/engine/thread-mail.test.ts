// Messages to a hashing thread go out together at the end of each turn of the event loop, except a stream's
// full blocks, which go at once after whatever waits: either way a thread must see each sink's open, bytes and
// close in the order they were sent. Many sinks at once, small ones and ones of several blocks, fed in
// socket-sized pieces from timers (as a cloud store's responses arrive), must each write exactly their bytes.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

const MIB = 1024 * 1024;
const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex');

/**
 * `data` in pieces of up to 96 KiB, a pause after every third: the pieces of many streams interleave. Every fourth
 * stream comes whole in its first piece, so its full blocks are sent in the very turn its sink is opened.
 */
function arriving(data: Buffer, seed: number): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0, k = seed; at < data.length; k++) {
        const piece = seed % 4 === 0 ? data.length : 1 + ((k * 40_503) % (96 * 1024));
        yield data.subarray(at, at + piece);
        at += piece;
        if (k % 3 === 0) await sleep(0);
      }
    })(),
    { objectMode: false },
  );
}

afterAll(removeTempDirs);

describe('messages to a hashing thread', () => {
  it('keep each sink in order when small sinks and sinks of several blocks are written at once', async () => {
    const dir = await tempDir('ci-thread-mail-');
    const pool = new HashPool(2);
    try {
      const sizes = [1, 300, 8_000, 65_536, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB + 7, 12_345];
      const files = Array.from({ length: 40 }, (_, i) => ({ data: randomBytes(sizes[i % sizes.length]!), path: join(dir, `sink-${i}.bin`) }));
      const digests = await Promise.all(
        files.map(async ({ data, path }, i) => {
          const sink = pool.fileSink('md5', path);
          await pipeline(arriving(data, i), sink);
          return (await sink.digest).hex;
        }),
      );
      for (const [i, { data, path }] of files.entries()) {
        expect(digests[i], `sink ${i} (${data.length} bytes): its checksum`).toBe(md5(data));
        expect(md5(await readFile(path)), `sink ${i} (${data.length} bytes): its file`).toBe(md5(data));
      }
    } finally {
      await pool.close();
    }
  });
});
