#!/usr/bin/env -S node --initial-old-space-size=64
// Launcher: runs the TypeScript CLI with a Node that strips types, re-executing with Node 22 if needed.
import { fileURLToPath } from 'node:url';
import { isNodeNewEnough, node22Path, withEngineFlags } from './node22.js';
import { relaunch } from './relaunch.js';

if (isNodeNewEnough()) {
  await import('../electron/cli/main.ts');
} else {
  const self = fileURLToPath(import.meta.url);
  relaunch(node22Path(), [...withEngineFlags(process.execArgv), self, ...process.argv.slice(2)]);
}
