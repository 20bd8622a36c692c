#!/bin/sh
':' /*
# Run as a command (`cloud-ingest`, `npx cloud-ingest`, ./bin/cloud-ingest.js), this file is first a shell script:
# the line below starts Node with the engine's flags (bin/node22.js ENGINE_NODE_FLAGS) and glibc malloc settings
# (bin/malloc-env.js MALLOC_ENV; a value the user set wins), so the process never has to restart itself to get
# them (a restart is a second Node start, ~30 ms). Node reads a string and a comment down to the JavaScript.
exec env MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-131072}" node --heap-growing-percent=300 --max-semi-space-size=4 "$0" "$@"
*/
// Launcher: runs the TypeScript CLI with a Node that strips types (from the stripped copies bin/ts-cache.js keeps),
// re-executing with Node 22 if needed. Only what decides whether this process restarts (with Node 22, or with
// the malloc settings of malloc-env.js, when started as `node bin/cloud-ingest.js`) is loaded before it does: the
// rest would be loaded twice.
import * as nodeModule from 'node:module';
import { defaultFlagsWhileLoading, isNodeNewEnough } from './node22.js';
import { execWithMallocEnv } from './malloc-env.js';

if (isNodeNewEnough()) {
  execWithMallocEnv();
  const { setFlagsFromString } = await import('node:v8');
  const engineFlagsBack = defaultFlagsWhileLoading(process.execArgv, setFlagsFromString);
  // V8's compiled code of the modules, kept by Node in os.tmpdir()/node-compile-cache ($NODE_COMPILE_CACHE;
  // NODE_DISABLE_COMPILE_CACHE=1 turns it off). It never throws.
  nodeModule.enableCompileCache?.();
  // relaunch.js, when this process is a relaunched child, ends it with its launcher (see there).
  const [{ useTypeScriptCache }] = await Promise.all([import('./ts-cache.js'), import('./relaunch.js')]);
  useTypeScriptCache();
  const { startCli } = await import('../electron/cli/start.ts');
  process.exitCode = await startCli(process.argv.slice(2), engineFlagsBack);
} else {
  const [{ fileURLToPath }, { node22Path, withEngineFlags }, { relaunch }] = await Promise.all([import('node:url'), import('./node22.js'), import('./relaunch.js')]);
  const self = fileURLToPath(import.meta.url);
  relaunch(node22Path(), [...withEngineFlags(process.execArgv), self, ...process.argv.slice(2)]);
}
