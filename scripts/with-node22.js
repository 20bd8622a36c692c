// Runs a package binary (e.g. `vitest run`) or a .ts script under Node >= 22.18, passing signals on (bin/relaunch.js).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { node22Path, withEngineFlags } from '../bin/node22.js';
import { relaunch } from '../bin/relaunch.js';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write('usage: node scripts/with-node22.js <package-bin | script.ts> [args...]\n');
  process.exit(2);
}

function resolveEntry(name) {
  if (/\.(ts|js|mjs)$/.test(name)) return name;
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve(`${name}/package.json`);
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8'));
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin[name];
  return join(dirname(pkgJson), bin);
}

const entry = resolveEntry(command);
// The project's own scripts (benchmarks, the fault runs, the browser-served app) run the engine: same flags as the CLI.
const flags = entry === command ? withEngineFlags([]) : [];
// The child stops when this launcher goes, however it goes (see bin/relaunch.js).
const stopWithLauncher = ['--import', new URL('../bin/relaunch.js', import.meta.url).href];
// The project's scripts load its TypeScript from the stripped copies bin/ts-cache.js keeps, as the CLI does.
const strippedOnce = entry === command ? ['--import', new URL('../bin/ts-cache-preload.js', import.meta.url).href] : [];
relaunch(node22Path(), [...stopWithLauncher, ...strippedOnce, ...flags, entry, ...args]);
