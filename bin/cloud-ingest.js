#!/usr/bin/env -S node --heap-growing-percent=300 --max-semi-space-size=4
// Launcher: runs the TypeScript CLI with a Node that strips types (from the stripped copies bin/ts-cache.js keeps),
// re-executing with Node 22 if needed.
import { fileURLToPath } from 'node:url';
import { isNodeNewEnough, node22Path, withEngineFlags } from './node22.js';
import { execWithMallocEnv } from './malloc-env.js';
import { relaunch } from './relaunch.js';
import { useTypeScriptCache } from './ts-cache.js';

if (isNodeNewEnough()) {
  execWithMallocEnv();
  useTypeScriptCache();
  await import('../electron/cli/main.ts');
} else {
  const self = fileURLToPath(import.meta.url);
  relaunch(node22Path(), [...withEngineFlags(process.execArgv), self, ...process.argv.slice(2)]);
}
