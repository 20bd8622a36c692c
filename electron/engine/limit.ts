// Bounded concurrency, written once: chunk deliveries, copy checks and metadata lookups all use it.

/**
 * Calls `fn` for every item, at most `width` at a time, starting them in order. Once `stop()` is true no new
 * item starts; those running finish. Rejects with the first error `fn` throws.
 */
export async function forEachLimited<T>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const index = next++;
      await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, lane));
}

/**
 * forEachLimited for items that arrive one by one (read from disk): at most `width` calls at a time, items taken
 * as lanes free up, so only the items in flight are held.
 */
export async function forEachStreamed<T>(items: AsyncIterable<T>, width: number, fn: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.asyncIterator]();
  let failed = false;
  const lane = async (): Promise<void> => {
    while (!failed) {
      const next = await iterator.next();
      if (next.done) return;
      try {
        await fn(next.value);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, width) }, lane));
  } finally {
    await iterator.return?.();
  }
}

/** At most `size` holders at a time; `acquire` waits its turn (first come, first served) and gives the release. */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = Math.max(1, size);
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}
