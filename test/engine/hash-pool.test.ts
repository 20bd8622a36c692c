// A hashing thread that dies (terminated, or throwing) fails only the jobs it held, promptly and with a
// retryable HashThreadLost, and is replaced: later jobs run, the process lives on. Real threads, real files.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, readlink, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool, HashThreadLost, isHashThreadLost } from '../../electron/engine/hash/pool.ts';
import { FolderNode } from '../../electron/engine/nodes/folder-node.ts';
import type { ChunkMeta } from '../../electron/engine/nodes/node.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { folderTemps } from '../nodes/folder-layout.ts';

const MIB = 1024 * 1024;
/** A dead thread's jobs must fail well within this; a hang turns into a failure here, not a stuck run. */
const PROMPTLY_MS = 10_000;
const POOL_MODULE = fileURLToPath(new URL('../../electron/engine/hash/pool.ts', import.meta.url));

let dir: string;
/** 24 MiB of random bytes in a real file, and its MD5. */
let dataFile: string;
let dataMd5: string;
/** A 2 GiB sparse file: long to copy or hash, nothing on disk. */
let bigFile: string;

beforeAll(async () => {
  dir = await tempDir('ci-hash-pool-');
  const data = randomBytes(24 * MIB);
  dataFile = join(dir, 'data.bin');
  await writeFile(dataFile, data);
  dataMd5 = md5(data);
  bigFile = join(dir, 'big-sparse.bin');
  await writeFile(bigFile, '');
  await truncate(bigFile, 2048 * MIB);
});
afterAll(removeTempDirs);

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** Settles as `promise` does, or rejects once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still unsettled after ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error `promise` rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  return within(
    promise.then(
      () => expect.fail(`${what} succeeded`),
      (error: unknown) => error,
    ),
    PROMPTLY_MS,
    what,
  );
}

/** The data file over and over, until destroyed: a stream that never ends on its own. */
function endless(path: string): Readable {
  return Readable.from(
    (async function* () {
      for (;;) for await (const piece of createReadStream(path, { highWaterMark: MIB })) yield piece as Buffer;
    })(),
    { objectMode: false },
  );
}

const discard = (): Writable => new Writable({ write: (_chunk, _encoding, done) => done() });

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > PROMPTLY_MS) throw new Error(`${what}: not after ${PROMPTLY_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** MD5 of the data file through `pool`, `n` taps at once (spread over every thread). */
async function hashDataFile(pool: HashPool, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const tap = pool.tap('md5');
      await pipeline(createReadStream(dataFile), tap, discard());
      return (await tap.digest).hex;
    }),
  );
}

/** File descriptors of this process that point into `folder`. */
async function openFdsUnder(folder: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith(folder));
}

function meta(id: string, size: number): ChunkMeta {
  return { id, file: 'big-sparse.bin', index: 0, offset: 0, size };
}

describe('a hashing thread terminated mid-job', () => {
  it('fails a stream it was hashing with a retryable HashThreadLost, and its replacement takes the next jobs', async () => {
    const pool = new HashPool(2);
    try {
      const tap = pool.tap('md5');
      const hashing = pipeline(endless(dataFile), tap, discard());
      await waitFor(() => tap.bytes >= 16 * MIB, 'bytes through the tap');
      const killedAt = performance.now();
      expect(await pool.terminateThread()).toBe(0);
      const error = await rejection(hashing, 'the stream on the terminated thread');
      const failedAfterMs = performance.now() - killedAt;
      expect(error).toBeInstanceOf(HashThreadLost);
      expect((error as HashThreadLost).retryable).toBe(true);
      expect((error as Error).message).toMatch(/hashing thread .*(stopped|lost)/);
      expect(await rejection(tap.digest, 'the digest')).toBeInstanceOf(HashThreadLost);
      expect(failedAfterMs).toBeLessThan(PROMPTLY_MS);
      console.log(`hash-pool: stream failed ${failedAfterMs.toFixed(1)} ms after its thread was terminated`);

      expect(pool.size).toBe(2);
      expect(pool.lostThreads).toBe(1);
      expect(await within(hashDataFile(pool, 4), PROMPTLY_MS, 'jobs after the loss')).toEqual([dataMd5, dataMd5, dataMd5, dataMd5]);
      expect(pool.jobsPerThread()).toEqual([0, 0]);
    } finally {
      await pool.close();
    }
  });

  it('fails a copy it was making; the temp file never becomes a chunk, and a job on the other thread goes on', async () => {
    const pool = new HashPool(2);
    const nodeDir = join(dir, 'node-copy');
    const node = new FolderNode('n1', nodeDir);
    try {
      // Thread 0: a stream hashed in two halves, with the copy killed between them.
      const data = await readFile(dataFile);
      const feed = new PassThrough();
      const other = pool.tap('md5');
      const otherDone = pipeline(feed, other, discard());
      feed.write(data.subarray(0, data.length / 2));
      await waitFor(() => other.bytes === data.length / 2, 'the first half through the other tap');
      // Thread 1 (the least busy): a copy of 2 GiB, stopped at its first progress report.
      let killed: Promise<number | undefined> | undefined;
      const copy = node.writeFromFile(meta('copy-chunk', 2048 * MIB), { path: bigFile, offset: 0, length: 2048 * MIB }, {
        pool,
        algorithm: 'md5',
        onBytes: () => void (killed ??= pool.terminateThread(1)),
      });
      await waitFor(() => pool.jobsPerThread()[1] === 1, 'the copy claimed the other thread');
      const error = await rejection(copy, 'the copy on the terminated thread');
      expect(await killed).toBe(1);
      expect(isHashThreadLost(error)).toBe(true);

      expect((await readdir(nodeDir, { recursive: true })).filter((name) => name.endsWith('.chunk'))).toEqual([]);
      expect(await node.find('copy-chunk')).toBeUndefined();
      expect(await folderTemps(nodeDir)).toEqual([]);
      expect(await openFdsUnder(nodeDir)).toEqual([]); // Node closes the files a stopped worker opened

      feed.end(data.subarray(data.length / 2));
      await within(otherDone, PROMPTLY_MS, 'the job on the other thread');
      expect((await other.digest).hex).toBe(dataMd5);

      const again = await within(pool.copyFile({ algorithm: 'md5', source: dataFile, offset: 0, length: data.length, target: join(dir, 'copy-again.bin') }), PROMPTLY_MS, 'a copy after the loss');
      expect(again.checksum.hex).toBe(dataMd5);
      expect(pool.size).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('fails a hashing write it was making, closing its file, and the node keeps no chunk', async () => {
    const pool = new HashPool(2);
    const nodeDir = join(dir, 'node-sink');
    const node = new FolderNode('n2', nodeDir);
    try {
      let sent = 0;
      const source = endless(dataFile).on('data', (piece: Buffer) => (sent += piece.length));
      let killed: Promise<number | undefined> | undefined;
      const write = node.writeHashing(meta('sink-chunk', 1024 * MIB), source, {
        pool,
        algorithm: 'md5',
        onBytes: () => void (sent >= 16 * MIB && (killed ??= pool.terminateThread())),
      });
      const error = await rejection(write, 'the hashing write on the terminated thread');
      expect(await killed).toBe(0);
      expect(isHashThreadLost(error)).toBe(true);
      expect(await node.find('sink-chunk')).toBeUndefined();
      expect(await folderTemps(nodeDir)).toEqual([]);
      expect(await openFdsUnder(nodeDir)).toEqual([]);
      expect(await within(hashDataFile(pool, 2), PROMPTLY_MS, 'jobs after the loss')).toEqual([dataMd5, dataMd5]);
    } finally {
      await pool.close();
    }
  });

  it('fails a whole-file hash (a CRC read-back) it was taking, from a file and from a stream', async () => {
    const pool = new HashPool(2);
    try {
      const fromFile = pool.sequence('crc32c');
      const reading = fromFile.addFile(bigFile);
      await waitFor(() => pool.jobsPerThread()[0] === 1, 'the read-back claimed a thread');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await pool.terminateThread(0)).toBe(0);
      expect(await rejection(reading, 'the file read-back')).toBeInstanceOf(HashThreadLost);
      expect(await rejection(fromFile.digest(), 'its digest')).toBeInstanceOf(HashThreadLost);

      const fromStream = pool.sequence('md5');
      let taken = 0;
      const adding = fromStream.addStream(endless(dataFile).on('data', (piece: Buffer) => (taken += piece.length)));
      await waitFor(() => taken >= 16 * MIB, 'bytes into the stream read-back');
      await pool.terminateThread();
      expect(await rejection(adding, 'the stream read-back')).toBeInstanceOf(HashThreadLost);

      const after = pool.sequence('md5');
      await within(after.addFile(dataFile), PROMPTLY_MS, 'a read-back after the loss');
      expect(await after.digest()).toBe(dataMd5);
      expect(pool.lostThreads).toBe(2);
      expect(pool.size).toBe(2);
    } finally {
      await pool.close();
    }
  });
});

describe('renewing grown threads once the pool is idle', () => {
  it('leaves every thread while a hash is open, then stops the grown ones; fresh threads start with the next jobs', async () => {
    const pool = new HashPool(2);
    try {
      await hashDataFile(pool, 2);
      const first = pool.threadIds();
      const open = pool.sequence('md5');
      await open.addFile(dataFile);
      expect(await pool.renewGrownThreads(0)).toBe(0); // a job is open: nothing is replaced under it
      expect(pool.threadIds()).toEqual(first);
      expect(await open.digest()).toBe(dataMd5);

      expect(await pool.renewGrownThreads(Number.MAX_SAFE_INTEGER)).toBe(0); // none has grown that far
      expect(pool.threadIds()).toEqual(first);
      expect(await pool.renewGrownThreads(0)).toBe(2);
      expect(pool.running).toBe(0); // nothing runs until there is work
      expect(pool.size).toBe(2);
      expect(pool.lostThreads).toBe(0);
      expect(await within(hashDataFile(pool, 4), PROMPTLY_MS, 'hashing on the new threads')).toEqual(Array(4).fill(dataMd5));
      const renewed = pool.threadIds();
      expect(renewed).toHaveLength(2);
      expect(renewed.filter((id) => first.includes(id))).toEqual([]);
      const copy = await pool.copyFile({ algorithm: 'md5', source: dataFile, offset: 0, length: 24 * MIB, target: join(dir, 'after-renewal.bin') });
      expect(copy.checksum.hex).toBe(dataMd5);
      expect(pool.threadIds()).toEqual(renewed);
    } finally {
      await pool.close();
    }
  });
});

describe('renewing in a process with nothing else to do', () => {
  it('keeps the process up until the threads have answered (an idle pool does not hold it open)', async () => {
    const script = join(dir, 'renew-alone.mjs');
    await writeFile(
      script,
      `import { HashPool } from ${JSON.stringify(POOL_MODULE)};
      const pool = new HashPool(1);
      const copy = await pool.copyFile({ algorithm: 'md5', source: ${JSON.stringify(dataFile)}, offset: 0, length: 4096, target: ${JSON.stringify(join(dir, 'renew-alone.bin'))} });
      console.log('renewed:', await pool.renewGrownThreads(0), 'copied:', copy.checksum.hex.length);
    `,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await within(new Promise<number | null>((resolve) => child.once('exit', resolve)), 20_000, 'the child');
    expect({ code, out: out.trim() }).toEqual({ code: 0, out: 'renewed: 1 copied: 32' }); // not exit 13 (a top-level await left unsettled)
  });
});

describe('cancelling a copy', () => {
  it('stops the copy it was making with CANCELLED, and the copies after it on the same thread run to the end', async () => {
    const pool = new HashPool(1);
    try {
      for (let round = 0; round < 3; round++) {
        const stop = new AbortController();
        const copy = pool.copyFile({ algorithm: 'md5', source: bigFile, offset: 0, length: 2048 * MIB, target: join(dir, `cancelled-${round}.bin`) }, { signal: stop.signal, onBytes: () => stop.abort() });
        const error = await rejection(copy, 'the cancelled copy');
        expect((error as { code?: string }).code).toBe('CANCELLED');
        // The next copy is given the flag the cancelled one had: it must start lowered.
        const next = await within(pool.copyFile({ algorithm: 'md5', source: dataFile, offset: 0, length: 24 * MIB, target: join(dir, `after-${round}.bin`) }, { signal: new AbortController().signal }), PROMPTLY_MS, 'the copy after a cancel');
        expect(next.checksum.hex).toBe(dataMd5);
      }
    } finally {
      await pool.close();
    }
  });

  it('reports progress of a copy posted with others at once (one message), so it can still be cancelled part way', async () => {
    const pool = new HashPool(1);
    try {
      const stop = new AbortController();
      // Posted in the same turn: the thread takes them as one batch and answers them together, but not the progress.
      const big = pool.copyFile({ algorithm: 'md5', source: bigFile, offset: 0, length: 2048 * MIB, target: join(dir, 'batched-big.bin') }, { signal: stop.signal, onBytes: () => stop.abort() });
      const small = pool.copyFile({ algorithm: 'md5', source: dataFile, offset: 0, length: 24 * MIB, target: join(dir, 'batched-small.bin') });
      const error = await rejection(big, 'the big copy');
      expect((error as { code?: string }).code).toBe('CANCELLED');
      expect((await within(small, PROMPTLY_MS, 'the small copy')).checksum.hex).toBe(dataMd5);
    } finally {
      await pool.close();
    }
  });
});

describe('a hashing thread that throws', () => {
  it('fails the jobs it held instead of crashing the process, and is replaced', async () => {
    const pool = new HashPool(1);
    try {
      const tap = pool.tap('md5');
      const hashing = pipeline(endless(dataFile), tap, discard());
      await waitFor(() => tap.bytes >= 4 * MIB, 'bytes through the tap');
      // A message the thread cannot handle (a block it was never given) stands for any bug that throws there.
      const { id, slot } = pool.claim(() => undefined);
      slot.worker.postMessage({ op: 'update', id, block: 1_000_000, length: 1 });
      const error = await rejection(hashing, 'the stream on the thread that threw');
      expect(error).toBeInstanceOf(HashThreadLost);
      expect(String((error as Error).cause)).toMatch(/TypeError/);
      expect(await within(hashDataFile(pool, 2), PROMPTLY_MS, 'jobs after the loss')).toEqual([dataMd5, dataMd5]);
      expect(pool.size).toBe(1);
    } finally {
      await pool.close();
    }
  });
});

describe('CLOUD_INGEST_FAULT_KILL_HASH_THREAD_AFTER_MS', () => {
  /** Runs a small program in a child Node with `env`: a never-ending hash, then the data file's MD5. */
  async function runChild(value: string): Promise<{ code: number | null; out: string; err: string }> {
    const program = `
      import { createReadStream, existsSync } from 'node:fs';
      import { Readable, Writable } from 'node:stream';
      import { pipeline } from 'node:stream/promises';
      import { HashPool, isHashThreadLost } from ${JSON.stringify(POOL_MODULE)};
      const file = ${JSON.stringify(dataFile)};
      const pool = new HashPool(2);
      const discard = () => new Writable({ write: (_c, _e, done) => done() });
      const endless = Readable.from((async function* () { for (;;) for await (const p of createReadStream(file)) yield p; })());
      const timer = setTimeout(() => { console.log('no kill came'); process.exit(3); }, 3000);
      await pipeline(endless, pool.tap('md5'), discard()).catch((error) => console.log('lost:', isHashThreadLost(error)));
      clearTimeout(timer);
      const tap = pool.tap('md5');
      await pipeline(createReadStream(file), tap, discard());
      console.log('next:', (await tap.digest).hex, 'threads:', pool.size, 'lost:', pool.lostThreads);
    `;
    const script = join(dir, `fault-kill-${value}.mjs`);
    await writeFile(script, program);
    const child = spawn(process.execPath, [script], { env: { ...process.env, CLOUD_INGEST_FAULT_KILL_HASH_THREAD_AFTER_MS: value }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.once('exit', (code) => resolve({ code, out, err })));
    return within(exited, 20_000, 'the child').finally(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
  }

  it('terminates one busy hashing thread once, after that many ms, in a process started with it', async () => {
    const { code, out, err } = await runChild('300');
    expect(err).toMatch(/fault injection: terminating hashing thread 0 .*CLOUD_INGEST_FAULT_KILL_HASH_THREAD_AFTER_MS=300/);
    expect(out).toContain('lost: true');
    expect(out).toContain(`next: ${dataMd5} threads: 2 lost: 1`);
    expect(code).toBe(0);
  });

  it('names the variable and the fix when its value is not a number of ms', async () => {
    const { code, out, err } = await runChild('soon');
    expect(err).toContain("CLOUD_INGEST_FAULT_KILL_HASH_THREAD_AFTER_MS='soon' is not a positive number of milliseconds");
    expect(out).toContain('no kill came');
    expect(code).toBe(3);
  });
});

describe('an aborted file sink', () => {
  it('leaves no file behind, even when its thread makes the file after the sender removed it', async () => {
    const pool = new HashPool(1);
    try {
      // The thread hashes 96 MiB first: the sink's open, its abort and the sender's rm all happen before it gets to them.
      const busy = pool.copyFile({ algorithm: 'sha256', source: bigFile, offset: 0, length: 96 * MIB, target: join(dir, 'busy.bin') });
      const temp = join(dir, 'aborted-sink.part');
      const sink = pool.fileSink('md5', temp);
      sink.on('error', () => undefined);
      sink.destroy(new Error('the source failed'));
      await rm(temp, { force: true });
      await busy;
      // Jobs run in order on the thread: by this stat, the sink was opened and aborted.
      expect(await pool.statFiles([temp])).toEqual([undefined]);
      expect(existsSync(temp)).toBe(false);
    } finally {
      await pool.close();
    }
  });
});
