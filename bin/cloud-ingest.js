#!/usr/bin/env -S node --heap-growing-percent=300 --max-semi-space-size=4
// Launcher: runs the TypeScript CLI with a Node that strips types (from the stripped copies bin/ts-cache.js keeps),
// re-executing with Node 22 if needed. Only what decides whether this process restarts (with Node 22, or with
// the malloc settings of malloc-env.js) is loaded before it does: the rest would be loaded twice.
import { isNodeNewEnough } from './node22.js';
import { execWithMallocEnv } from './malloc-env.js';

if (isNodeNewEnough()) {
  execWithMallocEnv();
  // relaunch.js, when this process is a relaunched child, ends it with its launcher (see there).
  const [{ useTypeScriptCache }] = await Promise.all([import('./ts-cache.js'), import('./relaunch.js')]);
  useTypeScriptCache();
  await import('../electron/cli/main.ts');
} else {
  const [{ fileURLToPath }, { node22Path, withEngineFlags }, { relaunch }] = await Promise.all([import('node:url'), import('./node22.js'), import('./relaunch.js')]);
  const self = fileURLToPath(import.meta.url);
  relaunch(node22Path(), [...withEngineFlags(process.execArgv), self, ...process.argv.slice(2)]);
}
