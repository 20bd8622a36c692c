// Child of heap-growth.test.ts: a run's heap policy under load. Holds LIVE_MB live, then churns through objects
// that live long enough to be promoted and die in the old generation; prints the largest heap it had.
// `node --expose-gc heap-growth-child.ts local` runs under a local run's growth, anything else under a streaming run's.
import { getHeapStatistics } from 'node:v8';
import { withRunHeapGrowth } from '../../electron/engine/heap-growth.ts';

const local = process.argv[2] === 'local';
/** A streaming run from s3rver holds ~16-32 MB live; a local run ~11-15 MB. */
const LIVE_MB = local ? 12 : 16;
/** Objects of ~8 KB alive at once: more than the young generation, so each is promoted. */
const RING = local ? 500 : 2000;
const CHURN_MB = local ? 160 : 400;

const live: number[][] = Array.from({ length: (LIVE_MB * 1024) / 8 }, () => new Array<number>(1000).fill(1));
let peak = 0;
await withRunHeapGrowth(local, async () => {
  // A run's first full collection comes early (its start is small); from then on the growth sets each limit.
  (globalThis as { gc?: () => void }).gc?.();
  const ring: number[][] = new Array<number[]>(RING);
  for (let i = 0; i < (CHURN_MB * 1024) / 8; i++) {
    ring[i % RING] = new Array<number>(1000).fill(i);
    if (i % 16 === 0) {
      peak = Math.max(peak, getHeapStatistics().total_heap_size);
      // The observer's callbacks run between turns, as in a run; a local run's engine thread allocates at ~100 MB/s.
      await new Promise((resolve) => (local ? setTimeout(resolve, 1) : setImmediate(resolve)));
    }
  }
});
console.log(JSON.stringify({ peakMb: peak / 1024 / 1024, liveHeld: live.length }));
