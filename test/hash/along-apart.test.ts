// A chunk written with a whole-file hash fed along (continueHash): the chunk's CRC and write on one hashing
// thread, the whole-file MD5 on the hash's own thread at the same time, from the same shared blocks (issue 15).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool, isHashThreadLost } from '../../electron/engine/hash/pool.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ci-along-apart-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');
const MiB = 1024 * 1024;

/** A stream of `data` in 64 KiB pieces that stops at `holdAt` bytes until `release()` is called. */
function held(data: Buffer, holdAt: number): { stream: Readable; reached: Promise<void>; release: () => void } {
  let offset = 0;
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const at = new Promise<void>((resolve) => (reached = resolve));
  const stream = new Readable({
    read() {
      if (offset >= data.length) return void this.push(null);
      if (offset >= holdAt && holdAt > 0) {
        const resume = offset;
        holdAt = 0;
        reached();
        void gate.then(() => {
          offset = resume + 64 * 1024;
          this.push(data.subarray(resume, resume + 64 * 1024));
        });
        return;
      }
      this.push(data.subarray(offset, offset + 64 * 1024));
      offset += 64 * 1024;
    },
  });
  return { stream, reached: at, release };
}

describe('a whole-file hash fed along on its own thread', () => {
  it("a crc32c chunk's write and the file's MD5 run on two threads at once, and the MD5 is the whole file's", async () => {
    const pool = new HashPool(2);
    try {
      const whole = pool.sequence('md5');
      const chunks = [randomBytes(3 * MiB + 17), randomBytes(2 * MiB + 5)];
      for (const [i, bytes] of chunks.entries()) {
        const { stream, reached, release } = held(bytes, 2 * MiB);
        const sink = pool.fileSink('crc32c', join(dir, `apart-${i}.bin`), { crc: 'crc32c', continues: whole });
        const written = pipeline(stream, sink);
        await reached;
        // Mid-chunk: the sink on one thread, the hash (and the feeder of its copy) on the other.
        expect(pool.jobsPerThread().every((jobs) => jobs > 0)).toBe(true);
        release();
        await written;
        await sink.digest;
        expect(await readFile(join(dir, `apart-${i}.bin`))).toEqual(bytes);
        expect(whole.inputs).toBe(i + 1);
      }
      expect(await whole.digest()).toBe(md5(Buffer.concat(chunks)));
      // Every hasher is closed: no thread holds a job.
      expect(pool.jobsPerThread()).toEqual([0, 0]);
    } finally {
      await pool.close();
    }
  });

  it('an md5 chunk 0 stays on the hash\'s thread: its own hash becomes the whole-file hash, nothing hashed twice', async () => {
    const pool = new HashPool(2);
    try {
      const whole = pool.sequence('md5');
      const bytes = randomBytes(3 * MiB);
      const { stream, reached, release } = held(bytes, MiB);
      const sink = pool.fileSink('md5', join(dir, 'own-0.bin'), { continues: whole });
      const written = pipeline(stream, sink);
      await reached;
      expect([...pool.jobsPerThread()].sort()).toEqual([0, 2]);
      release();
      await written;
      expect((await sink.digest).hex).toBe(md5(bytes));
      expect(whole.inputs).toBe(1);
      expect(await whole.digest()).toBe(md5(bytes));
    } finally {
      await pool.close();
    }
  });

  it("losing the hash's thread mid-chunk fails the write (retryable); after the write, the chunk is stored and only the hash is gone", async () => {
    const pool = new HashPool(2);
    try {
      const hashThread = (): number => pool.jobsPerThread().indexOf(Math.max(...pool.jobsPerThread()));
      const whole = pool.sequence('md5');
      const bytes = randomBytes(3 * MiB);
      const { stream, reached } = held(bytes, MiB);
      const sink = pool.fileSink('crc32c', join(dir, 'lost-mid.bin'), { continues: whole });
      const written = pipeline(stream, sink).catch((error: unknown) => error);
      await reached;
      await pool.terminateThread(hashThread());
      const error = await written;
      expect(isHashThreadLost(error)).toBe(true);
      await expect(sink.digest).rejects.toSatisfy(isHashThreadLost);
      expect(whole.usable).toBe(false);

      // A new hash, its thread lost once its chunk is written: the chunk is stored, the hash counts nothing.
      const again = pool.sequence('md5');
      const sink2 = pool.fileSink('crc32c', join(dir, 'lost-after.bin'), { continues: again });
      await pipeline(Readable.from([bytes]), sink2);
      await sink2.digest;
      expect(await readFile(join(dir, 'lost-after.bin'))).toEqual(bytes);
      expect(again.inputs).toBe(1);
      const tap = pool.tap('crc32c', { continues: again });
      const passed = pipeline(Readable.from([bytes]), tap, new Writable({ write: (_c, _e, done) => done() }));
      await passed;
      await tap.digest;
      await pool.terminateThread(pool.jobsPerThread().findIndex((jobs) => jobs > 0));
      await tap.settleAlong(true);
      expect(again.usable).toBe(false);
    } finally {
      await pool.close();
    }
  });

  it('blocks sent to two threads come back to one free list: many chunks, a few blocks', async () => {
    const pool = new HashPool(2);
    try {
      const whole = pool.sequence('md5');
      const all: Buffer[] = [];
      for (let i = 0; i < 12; i++) {
        const bytes = randomBytes(MiB + 1000 * i);
        all.push(bytes);
        const sink = pool.fileSink('crc32c', join(dir, `many-${i}.bin`), { continues: whole });
        await pipeline(Readable.from([bytes]), sink);
        await sink.digest;
      }
      expect(await whole.digest()).toBe(md5(Buffer.concat(all)));
      expect(pool.blocks.created).toBeLessThanOrEqual(4);
    } finally {
      await pool.close();
    }
  });
});
