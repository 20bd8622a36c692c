// glibc malloc settings for the engine, applied before any allocation (glibc reads them once, at start-up).
//
// Why: the engine moves bytes on many threads (the main thread, the hashing threads, libuv's pool, V8's helpers),
// and glibc gives each thread that contends its own 64 MB arena, up to 8 per core; a large buffer freed there (a
// shard's tar headers, a message between threads) raises the threshold under which big blocks come from an arena
// instead of their own mapping. Memory freed into arenas mostly stays resident. With two arenas and big blocks
// always mapped on their own (returned to the system when freed), a 100,000-file packed run peaked ~40 MB lower
// at the same speed. Values set in the environment by the user win.
export const MALLOC_ENV = Object.freeze({ MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' });

/**
 * The environment with MALLOC_ENV under it (the user's own values win).
 * @param {NodeJS.ProcessEnv} env
 */
export function withMallocEnv(env) {
  return { ...MALLOC_ENV, ...env };
}

/**
 * Restarts this process in place (same PID, same open files, same arguments) with MALLOC_ENV set, where the
 * settings are missing and the platform can (Linux, Node with process.execve). Otherwise returns.
 */
export function execWithMallocEnv() {
  if (process.platform !== 'linux' || typeof process.execve !== 'function') return;
  if (Object.keys(MALLOC_ENV).every((name) => process.env[name] !== undefined)) return;
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {}; // process.execve is marked experimental in Node 22; the user asked for no feature
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], withMallocEnv(process.env));
  } catch {
    process.emitWarning = emitWarning; // could not: run as is
  }
}
