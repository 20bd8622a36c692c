// The hashing threads alone, without the rest of the engine: the CLI starts them before it loads the rest
// (electron/cli/start.ts), so that a thread's own start (a Node environment of its own, ~60 ms of CPU) overlaps the
// ~100 ms the CLI takes to load, instead of the run waiting for it after.
import { sharedHashPool } from './hash/pool.ts';

/** Starts the process's hashing threads (the pool every run, verify, repair and reassemble uses) now. */
export function startHashThreads(): void {
  sharedHashPool();
}
