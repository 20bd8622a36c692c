// @ts-check
// The C library, through koffi (a prebuilt FFI), for the few calls Node does not offer (drop-cache.js,
// linux-calls.js). Loaded on first use, once per thread; where koffi is missing or fails to load, undefined and
// the callers do without.
import { createRequire } from 'node:module';

/**
 * @typedef {{ func(signature: string): (...args: unknown[]) => number }} Library
 * @typedef {{ load(path: string | null): Library, errno(): number }} Koffi
 */

/** @type {{ koffi: Koffi, libc: Library } | undefined | null} null until first needed; undefined where it cannot be had. */
let loaded = null;

/** koffi and the process's own C library (Linux on x64 and arm64 only), or undefined. */
export function libc() {
  if (loaded === null) loaded = load();
  return loaded;
}

function load() {
  if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64')) return undefined;
  try {
    /** @type {Koffi} */
    const koffi = createRequire(import.meta.url)('koffi');
    return { koffi, libc: koffi.load(null) };
  } catch {
    return undefined;
  }
}
