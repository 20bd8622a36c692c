// @ts-check
// Two Linux system calls Node does not offer, called through koffi (libc.js), that each save the hashing threads
// a system call per small file:
//   - renameat2 with RENAME_NOREPLACE gives a finished file its final name unless that name is taken, in one
//     atomic call (instead of an lstat, then a rename that something could have raced);
//   - openat2 with RESOLVE_NO_SYMLINKS opens a source file only if no component of its path is a symlink: such a
//     path is its own real path, so it is known to lie inside the source folder without a readlink.
// Each answers undefined where it cannot decide (no koffi, an older kernel, a filesystem without the flag, any
// error): the caller then does what it did before, which also reports real failures the way Node words them.
import { closeSync } from 'node:fs';
import { libc } from './libc.js';

const AT_FDCWD = -100;
const RENAME_NOREPLACE = 1;
const SYS_OPENAT2 = { x64: 437, arm64: 437 };
const O_CLOEXEC = 0o2000000;
const RESOLVE_NO_SYMLINKS = 0x04;
const EEXIST = 17;
/** Errors that say the call itself is not available here: stop trying it in this thread. */
const UNAVAILABLE = new Set([/* EPERM (seccomp) */ 1, /* EINVAL */ 22, /* ENOSYS */ 38, /* EOPNOTSUPP */ 95, /* E2BIG */ 7]);

/** @typedef {(from: string, to: string) => boolean | undefined} RenameNoReplace */
/** @typedef {(path: string) => number | undefined} OpenNoSymlinks */

/** @type {{ rename: RenameNoReplace | undefined, open: OpenNoSymlinks | undefined, close: ((fd: number) => number) | undefined } | null} */
let calls = null;
/**
 * Descriptors openNoSymlinks opened (-1: a free cell). Node tracks the files a worker thread opens (and closes them
 * if the thread is terminated); it warns when one it did not open is closed through it, so these are closed
 * through libc (closeFile). A thread terminated while it holds one leaves it open until the process ends.
 * A fixed table, not a Set: a long-lived Set that takes and gives back an entry per file makes a new table over and
 * over, and V8 makes the new table of a Set that is in the old generation in the old generation too, where only a
 * full collection frees it (hashing threads' heaps grew ~5 MB per 50,000 files).
 */
const opened = new Int32Array(64).fill(-1);

function load() {
  const found = libc();
  if (!found) return { rename: undefined, open: undefined, close: undefined };
  const { koffi, libc: lib } = found;
  try {
    const close = lib.func('int close(int fd)');
    return { rename: bindRename(koffi, lib), open: bindOpen(koffi, lib), close };
  } catch {
    return { rename: bindRename(koffi, lib), open: undefined, close: undefined };
  }
}

/**
 * @param {import('./libc.js').Koffi} koffi
 * @param {import('./libc.js').Library} lib
 * @returns {RenameNoReplace | undefined}
 */
function bindRename(koffi, lib) {
  try {
    const renameat2 = lib.func('int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)');
    return (from, to) => {
      if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) === 0) return true;
      const errno = koffi.errno();
      if (errno === EEXIST) return false;
      if (UNAVAILABLE.has(errno) && calls) calls.rename = undefined;
      return undefined;
    };
  } catch {
    return undefined; // a C library without renameat2 (glibc before 2.28)
  }
}

/**
 * @param {import('./libc.js').Koffi} koffi
 * @param {import('./libc.js').Library} lib
 * @returns {OpenNoSymlinks | undefined}
 */
function bindOpen(koffi, lib) {
  const number = SYS_OPENAT2[/** @type {'x64' | 'arm64'} */ (process.arch)];
  try {
    // Declared with fixed arguments, so no argument types are parsed per call as koffi does for variadic ones
    // (integer and pointer arguments pass the same way either way on x64 and arm64 Linux).
    const syscall = lib.func('long syscall(long number, int dirfd, const char *path, const void *how, size_t size)');
    const how = Buffer.alloc(24); // struct open_how { u64 flags; u64 mode; u64 resolve; }
    how.writeBigUInt64LE(BigInt(O_CLOEXEC), 0); // O_RDONLY is 0
    how.writeBigUInt64LE(BigInt(RESOLVE_NO_SYMLINKS), 16);
    return (path) => {
      const fd = syscall(number, AT_FDCWD, path, how, how.length);
      if (fd >= 0) {
        const cell = opened.indexOf(-1);
        if (cell >= 0) return (opened[cell] = fd);
        calls?.close?.(fd); // more open at once than the table holds: open this one through Node
        return undefined;
      }
      if (UNAVAILABLE.has(koffi.errno()) && calls) calls.open = undefined;
      return undefined;
    };
  } catch {
    return undefined;
  }
}

function loaded() {
  return (calls ??= load());
}

/**
 * Renames `from` to `to` unless `to` exists: true if renamed, false if `to` was taken, undefined if this could not
 * be decided here (the caller renames its own way).
 * @param {string} from
 * @param {string} to
 */
export function renameNoReplace(from, to) {
  return loaded().rename?.(from, to);
}

/**
 * Opens `path` for reading if none of its components is a symlink: its descriptor, or undefined (a symlink on the
 * way, an error, or no openat2 here; the caller opens its own way).
 * @param {string} path
 */
export function openNoSymlinks(path) {
  return loaded().open?.(path);
}

/**
 * Closes `fd`, opened by openNoSymlinks or by Node.
 * @param {number} fd
 */
export function closeFile(fd) {
  const cell = opened.indexOf(fd);
  if (cell < 0) return closeSync(fd);
  opened[cell] = -1;
  calls?.close?.(fd);
}

/** @internal Which calls this thread has: for tests. */
export function linuxCallsAvailable() {
  const { rename, open } = loaded();
  return { renameNoReplace: rename !== undefined, openNoSymlinks: open !== undefined };
}
