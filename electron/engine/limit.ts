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
