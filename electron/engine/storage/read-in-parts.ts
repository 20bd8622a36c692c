// A byte range read as consecutive ranged reads ("parts"), several open at once and consumed in order, each
// asked for again from its first byte not yet given when it breaks. Written once, over Bucket.read, for every
// store: the engine reads each cloud chunk through it (one part per chunk, or 8 MiB parts for a file whose
// store check hashes it in order).
import { Readable } from 'node:stream';
import type { Slots } from '../limit.ts';
import { linkedAbort } from '../linked-abort.ts';
import type { LinkedAbort } from '../linked-abort.ts';
import { backoffDelayMs, sleep } from '../retry.ts';
import type { RetryPolicy } from '../retry.ts';
import { StorageError } from './driver.ts';
import type { ByteRange } from './driver.ts';

export interface ReadInPartsOptions {
  partSize: number;
  /** Parts open at once. */
  ahead: number;
  /** Shared with the run's other reads: each open part holds one. */
  slots: Slots;
  signal?: AbortSignal;
  /** Called before a failed part is asked for again (also when its first request fails). */
  onRetry?: (error: StorageError) => void;
}

/** One checked ranged read (Bucket.read): exactly the range's bytes of the pinned version, or an error. */
export type RangeRead = (range: ByteRange, signal: AbortSignal) => Promise<Readable>;

export function splitRange(range: ByteRange, partSize: number): ByteRange[] {
  const parts: ByteRange[] = [];
  for (let offset = range.offset; offset < range.offset + range.length; offset += partSize) {
    parts.push({ offset, length: Math.min(partSize, range.offset + range.length - offset) });
  }
  return parts;
}

/**
 * `range` (not empty) as one stream of its parts in order. Parts not being consumed yet wait in their sockets'
 * buffers (nothing is buffered here), so the bytes arrive in order at the speed of several parallel reads. A part
 * that fails with a retryable error is asked for again from its first byte not yet given, as often as `retry`
 * allows; one that still fails fails the stream, once every other part is closed. Resolves once the first part
 * has answered, so a missing object or a refused request fails here, before any byte is sent anywhere.
 */
export function readInParts(read: RangeRead, retry: RetryPolicy, range: ByteRange, options: ReadInPartsOptions): Promise<Readable> {
  return new PartReader(read, retry, options).start(splitRange(range, options.partSize));
}

interface OpenedPart {
  part: ByteRange;
  stream: Promise<Readable>;
  /** Failed reads of this part so far. */
  failures: number;
}

class PartReader {
  private readonly read: RangeRead;
  private readonly retry: RetryPolicy;
  private readonly o: ReadInPartsOptions;
  /** Called off when the caller's signal aborts, or when the stream ends early (parts being opened are not left running). */
  private readonly stop: LinkedAbort;
  private readonly opened: OpenedPart[] = [];

  constructor(read: RangeRead, retry: RetryPolicy, options: ReadInPartsOptions) {
    this.read = read;
    this.retry = retry;
    this.o = options;
    this.stop = linkedAbort(options.signal);
  }

  async start(parts: ByteRange[]): Promise<Readable> {
    let first: { stream: Readable; failures: number };
    try {
      first = await this.openFirst(parts[0]!);
    } catch (error) {
      this.stop.release();
      throw error;
    }
    this.opened.push({ part: parts[0]!, stream: Promise.resolve(first.stream), failures: first.failures });
    const out = Readable.from(this.inOrder(parts.slice(1)), { objectMode: false });
    out.once('close', () => {
      this.stop.release();
      // Dropped before anything was read, the generator never ran: the first part is still open.
      if (!first.stream.destroyed) first.stream.destroy();
    });
    return out;
  }

  private async openFirst(part: ByteRange): Promise<{ stream: Readable; failures: number }> {
    for (let failures = 0; ; ) {
      try {
        return { stream: await this.open(part), failures };
      } catch (error) {
        if (!(await this.tryAgain(error, ++failures))) throw error;
      }
    }
  }

  private async open(part: ByteRange): Promise<Readable> {
    const release = await this.o.slots.acquire();
    try {
      this.stop.signal.throwIfAborted();
      const stream = await this.read(part, this.stop.signal);
      stream.once('close', release);
      // A part waiting its turn can fail before anyone reads it; its error is met when it is read (or dropped).
      stream.on('error', () => undefined);
      return stream;
    } catch (error) {
      release();
      throw error;
    }
  }

  /** After a part's `failures`-th failed read: whether to ask again (after the backoff), or give up. */
  private async tryAgain(error: unknown, failures: number): Promise<boolean> {
    if (!(error instanceof StorageError) || !error.retryable || failures > this.retry.retries || this.stop.signal.aborted) return false;
    this.o.onRetry?.(error);
    await sleep(backoffDelayMs(this.retry, failures), this.stop.signal);
    return true;
  }

  private async *inOrder(rest: ByteRange[]): AsyncGenerator<Buffer> {
    let next = 0;
    const openMore = (): void => {
      while (this.opened.length < this.o.ahead && next < rest.length) {
        const part = rest[next++]!;
        const stream = this.open(part);
        stream.catch(() => undefined); // awaited in its turn, where a failure is retried or fails the stream
        this.opened.push({ part, stream, failures: 0 });
      }
    };
    try {
      openMore();
      while (this.opened.length > 0) {
        const head = this.opened.shift()!;
        openMore();
        yield* this.bytesOf(head);
      }
    } finally {
      if (this.opened.length > 0) {
        this.stop.controller.abort();
        await Promise.allSettled(this.opened.map(({ stream }) => stream.then((s) => s.destroy())));
      }
    }
  }

  private async *bytesOf({ part, stream, failures }: OpenedPart): AsyncGenerator<Buffer> {
    let given = 0;
    for (let pending = stream; ; ) {
      try {
        for await (const bytes of await pending) {
          given += (bytes as Buffer).length;
          yield bytes as Buffer;
        }
        return;
      } catch (error) {
        if (!(await this.tryAgain(error, ++failures))) throw error;
        pending = this.open({ offset: part.offset + given, length: part.length - given });
      }
    }
  }
}
