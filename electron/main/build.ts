// Bundles Electron main (ESM), the engine worker and the hashing worker (ESM) and the preload (CommonJS, as
// sandboxed preloads must be) into dist/electron with esbuild. npm packages stay external and load from
// node_modules at run time. `node electron/main/build.ts` builds once; dev.ts reuses the options to watch.
import { build } from 'esbuild';
import type { BuildOptions } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function electronBuildOptions(): BuildOptions[] {
  const common: BuildOptions = { absWorkingDir: root, bundle: true, platform: 'node', target: 'node22', sourcemap: true, logLevel: 'warning', external: ['electron'] };
  return [
    {
      ...common,
      // worker.mjs: the engine's hashing pool resolves ./worker<ext> next to its own (bundled) module.
      entryPoints: { main: 'electron/main/main.ts', 'engine-worker': 'electron/host/engine-worker.ts', worker: 'electron/engine/hash/worker.js' },
      outdir: 'dist/electron',
      outExtension: { '.js': '.mjs' },
      format: 'esm',
      packages: 'external',
    },
    {
      ...common,
      entryPoints: { preload: 'electron/preload/preload.ts' },
      outdir: 'dist/electron',
      outExtension: { '.js': '.cjs' },
      format: 'cjs',
    },
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await Promise.all(electronBuildOptions().map((o) => build(o)));
  process.stdout.write('built dist/electron/{main.mjs,engine-worker.mjs,worker.mjs,preload.cjs}\n');
}
