// How far V8 lets the old generation grow past what is live, chosen per run by where its bytes flow.
//
// Bytes streamed through the engine thread (a cloud store's socket reads, a node agent's requests) are a new
// 64 KiB buffer each: with V8's own growing factor the limit sat ~12 MB above the live heap and a full
// mark-compact ran every ~80 ms in some runs. Four times the live heap (the engine's Node flag, bin/node22.js)
// keeps those runs calm: moto, 512 MiB, 1.35-1.50 s engine CPU against 1.79-2.48 s at twice.
// A local folder copied into folder nodes moves its bytes on the hashing threads, and its garbage is the engine's
// own small objects: at twice, a million-file run peaked at 182 MB, against 274 MB with the 64 MB initial old
// space the engine started with before, in the same time (113 s both; 100,000 files: 158 against 194 MB). At a
// quarter more, V8's own least step (8 MB above what is live) sets the limit for the ~11-15 MB such a run holds:
// 100,000 files packed peaked at 144-149 MB against 158-169 at twice, unpacked at 127-132 against 137, at ~15 full
// collections instead of ~9 (a few ms each); a 10,000-file run, which ends before its heaps are full, is unchanged.
import { constants, PerformanceObserver } from 'node:perf_hooks';
import type { PerformanceEntry } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** The growth the engine starts with (bin/node22.js ENGINE_NODE_FLAGS): streams through the engine thread stay calm. */
export const STREAMING_HEAP_GROWTH_PERCENT = 300;
/** The growth while only local runs (a local folder into folder nodes) are running. */
export const LOCAL_HEAP_GROWTH_PERCENT = 25;
/** The least growth while bytes stream through the engine thread (one large object's stream holds little live). */
export const STREAMING_MIN_GROWTH_PERCENT = 100;
/**
 * While bytes stream through the engine thread, the garbage let pile up above what is live, at most (the growth
 * is lowered from STREAMING_HEAP_GROWTH_PERCENT, never below STREAMING_MIN_GROWTH_PERCENT, after each full collection):
 * a run of 100,000 small objects from s3rver holds ~23 MB live, and four times that kept ~70 MB of garbage, a
 * 227 MB peak. One large object's stream holds less live, so it keeps most of the room that made it calm.
 */
export const STREAMING_HEADROOM_BYTES = 32 * 1024 * 1024;

let localRuns = 0;
let streamingRuns = 0;
let threadsStarting = 0;
let streamingPercent = STREAMING_HEAP_GROWTH_PERCENT;
let fullCollections: PerformanceObserver | undefined;
/** How long a thread may take to start before the engine's growth is set again all the same. */
const THREAD_START_LIMIT_MS = 5000;

/**
 * The young generation that the engine's --max-semi-space-size=4 (bin/node22.js ENGINE_NODE_FLAGS) gives a heap, as
 * a Worker's resourceLimits.maxYoungGenerationSizeMb: for a thread that should size its heap as the engine's (a test
 * keeps the two equal).
 */
export const ENGINE_YOUNG_GENERATION_MB = 12;

/**
 * Lets threads started from now on size their young generation by their own resourceLimits. V8 applies the
 * engine's --max-semi-space-size flag to every heap it makes, over a Worker's own limit: each hashing thread's
 * young generation grew to 8 MB instead of its 2 MB, and its heap from ~11 MB to ~16 MB with the run. Heaps that
 * exist keep what they were made with (the flag is read once, when a heap is made).
 */
function letThreadsSizeTheirYoungGeneration(): void {
  setFlagsFromString('--max-semi-space-size=0');
}

/**
 * Holds the heap growth that suits a run while `body` runs. Runs at once in one process (the app) share the
 * setting: any streaming run keeps the streaming growth.
 */
export async function withRunHeapGrowth<T>(local: boolean, body: () => Promise<T>): Promise<T> {
  if (local) localRuns++;
  else streamingRuns++;
  watchFullCollections();
  applyGrowth();
  try {
    return await body();
  } finally {
    if (local) localRuns--;
    else streamingRuns--;
    watchFullCollections();
    applyGrowth();
  }
}

/** The streaming growth that keeps the next limit within STREAMING_HEADROOM_BYTES of what is live now. */
export function streamingGrowthPercent(liveBytes: number): number {
  const percent = Math.floor((100 * STREAMING_HEADROOM_BYTES) / Math.max(1, liveBytes));
  return Math.max(STREAMING_MIN_GROWTH_PERCENT, Math.min(STREAMING_HEAP_GROWTH_PERCENT, percent));
}

/** Sizes the streaming growth after each full collection while streaming runs are going (V8 reads it at the next one). */
function watchFullCollections(): void {
  if (streamingRuns > 0 && !fullCollections) {
    // What is in use now is more than what is live: the first limit is, if anything, low.
    streamingPercent = streamingGrowthPercent(getHeapStatistics().used_heap_size);
    fullCollections = new PerformanceObserver((list) => {
      if (!list.getEntries().some(isFullCollection)) return;
      streamingPercent = streamingGrowthPercent(getHeapStatistics().used_heap_size);
      applyGrowth();
    });
    fullCollections.observe({ entryTypes: ['gc'] });
  } else if (streamingRuns === 0 && fullCollections) {
    fullCollections.disconnect();
    fullCollections = undefined;
    streamingPercent = STREAMING_HEAP_GROWTH_PERCENT;
  }
}

function isFullCollection(entry: PerformanceEntry): boolean {
  return (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
}

/**
 * Holds V8's default flags while a thread starts, until `started` settles (or 5 s have passed). Node's built-in
 * modules come compiled ahead of time, and V8 refuses that code when any flag differs from its default (every
 * flag is part of the check, even one that only sizes heaps): with the engine's flags each hashing thread
 * compiled ~75 of them again, ~40 ms of CPU at every start. Meanwhile the engine's own heap grows by V8's own
 * factor; its young generation was sized when it was made and stays as it is.
 */
export function defaultFlagsWhile(started: Promise<unknown>): void {
  letThreadsSizeTheirYoungGeneration(); // for good: the flag has done its work on the engine's own heap
  threadsStarting++;
  applyGrowth();
  let done = false;
  const end = (): void => {
    if (done) return;
    done = true;
    clearTimeout(limit);
    threadsStarting--;
    applyGrowth();
  };
  const limit = setTimeout(end, THREAD_START_LIMIT_MS);
  limit.unref();
  started.then(end, end);
}

function applyGrowth(): void {
  if (threadsStarting > 0) return setFlagsFromString('--heap-growing-percent=0'); // V8's default
  const percent = localRuns > 0 && streamingRuns === 0 ? LOCAL_HEAP_GROWTH_PERCENT : streamingPercent;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
