// The project's TypeScript, stripped of its types once and kept as JavaScript: the CLI and the node agent load
// the cached copy instead of stripping every file at every start.
//
// Why: Node strips types with a WebAssembly build of swc (amaro) that it loads into the process on the first .ts
// file. That instance stays for the life of the process: ~35 MB of resident memory and ~0.15 s of start-up, in a
// process that otherwise peaks near 170 MB. With the cache, a run never loads it (unless a source changed since).
//
// The cache is keyed by the file's path, size and modification time (and Node's version), so an edited source is
// stripped again on its next load. Stripping keeps every line and column where it was, so stack traces still
// point into the .ts files. Where no cache folder can be written, Node strips the files itself, as before.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Part of every copy's key: raised when a copy made before may be wrong (2: copies of a source loaded as bytes). */
const COPY_FORMAT = 2;
const OWN_SOURCES = [join(PROJECT_ROOT, 'electron') + sep, join(PROJECT_ROOT, 'shared') + sep, join(PROJECT_ROOT, 'scripts') + sep];

/** The first folder of these that can be written, or undefined. */
function cacheFolder() {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  const candidates = [join(PROJECT_ROOT, 'node_modules', '.cache', 'cloud-ingest-ts'), join(tmpdir(), `cloud-ingest-ts-${uid}`)];
  for (const folder of candidates) {
    try {
      mkdirSync(folder, { recursive: true });
      return folder;
    } catch {
      // not writable here: try the next
    }
  }
  return undefined;
}

/**
 * Strips types the way Node's own loader does, without its one-time "experimental" warning: the user did not ask
 * for an experimental feature, and the output is the same as Node's.
 * @param {string} source
 */
function strip(source) {
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  try {
    return nodeModule.stripTypeScriptTypes(source, { mode: 'strip' });
  } finally {
    process.emitWarning = emitWarning;
  }
}

/**
 * A loaded module's source as text. Node's own loader gives a string, but with another loader in the chain
 * (`--import` of an APM agent or a tracer) it arrives as bytes, and `String(bytes)` would be "47,47,32,…": stripped
 * and cached, that copy would run as a list of numbers, exporting nothing, until the source changed.
 * @param {string | ArrayBuffer | NodeJS.TypedArray} source
 */
function sourceText(source) {
  if (typeof source === 'string') return source;
  const bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  return new TextDecoder().decode(bytes);
}

/** @param {string} path */
function isOwnSource(path) {
  return path.endsWith('.ts') && !path.endsWith('.d.ts') && OWN_SOURCES.some((folder) => path.startsWith(folder));
}

/**
 * Registers the load hook for this thread. Returns false (and changes nothing) where this Node cannot
 * (no `module.registerHooks` / `stripTypeScriptTypes`) or no cache folder is writable.
 * @param {string | undefined} [folder]
 */
export function useTypeScriptCache(folder = cacheFolder()) {
  if (!folder || typeof nodeModule.registerHooks !== 'function' || typeof nodeModule.stripTypeScriptTypes !== 'function') return false;
  nodeModule.registerHooks({
    load(url, context, nextLoad) {
      if (!url.startsWith('file:')) return nextLoad(url, context);
      const path = fileURLToPath(url);
      if (!isOwnSource(path)) return nextLoad(url, context);
      let stats;
      try {
        stats = statSync(path);
      } catch {
        return nextLoad(url, context);
      }
      const key = createHash('sha1').update(`${COPY_FORMAT}\0${process.version}\0${path}\0${stats.size}\0${stats.mtimeMs}`).digest('hex');
      const cached = join(folder, `${key}.js`);
      try {
        return { format: 'module', source: readFileSync(cached, 'utf8'), shortCircuit: true };
      } catch {
        // not cached yet
      }
      const loaded = nextLoad(url, context);
      if (loaded.format !== 'module-typescript' || loaded.source == null) return loaded;
      const code = strip(sourceText(loaded.source));
      const temp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      try {
        writeFileSync(temp, code);
        renameSync(temp, cached);
      } catch {
        // a full or read-only disk costs the cache, never the load
      }
      return { format: 'module', source: code, shortCircuit: true };
    },
  });
  return true;
}
