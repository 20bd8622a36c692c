// Child of heap-growth.test.ts: a streaming run's heap policy under load. Holds LIVE_MB live, then churns through
// objects that live long enough to be promoted and die in the old generation; prints the largest heap it had.
import { getHeapStatistics } from 'node:v8';
import { withRunHeapGrowth } from '../../electron/engine/heap-growth.ts';

const LIVE_MB = 16;
const RING = 2000; // objects of ~8 KB alive at once: ~16 MB, more than the young generation, so each is promoted
const CHURN_MB = 400;

const live: number[][] = Array.from({ length: (LIVE_MB * 1024) / 8 }, () => new Array<number>(1000).fill(1));
let peak = 0;
await withRunHeapGrowth(false, async () => {
  const ring: number[][] = new Array<number[]>(RING);
  for (let i = 0; i < (CHURN_MB * 1024) / 8; i++) {
    ring[i % RING] = new Array<number>(1000).fill(i);
    if (i % 16 === 0) {
      peak = Math.max(peak, getHeapStatistics().total_heap_size);
      await new Promise((resolve) => setImmediate(resolve)); // the observer's callbacks run between turns, as in a run
    }
  }
});
console.log(JSON.stringify({ peakMb: peak / 1024 / 1024, liveHeld: live.length }));
