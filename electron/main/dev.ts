// `npm run dev`: the renderer from Vite's dev server (hot reload), main and preload rebuilt by esbuild on every
// change, and Electron restarted when they change. Needs an Electron binary (see docs/app.md).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { context } from 'esbuild';
import { createServer } from 'vite';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { electronBuildOptions } from './build.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const electronPath = createRequire(import.meta.url)('electron') as unknown as string;

const vite = await createServer({ configFile: `${root}/vite.renderer.config.ts`, mode: 'development' });
await vite.listen();
const url = vite.resolvedUrls?.local[0] ?? 'http://127.0.0.1:5173/';
process.stdout.write(`renderer dev server: ${url}\n`);

let app: ChildProcess | undefined;
let restarting: NodeJS.Timeout | undefined;
const launch = (): void => {
  app?.removeAllListeners('exit');
  app?.kill();
  // The engine runs in the main process, which takes V8 flags only from Electron's command line.
  app = spawn(electronPath, [`--js-flags=${ENGINE_NODE_FLAGS.join(' ')}`, 'dist/electron/main.mjs', ...process.argv.slice(2)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ELECTRON_RENDERER_URL: url },
  });
  app.on('exit', (code) => {
    void vite.close();
    process.exit(code ?? 0);
  });
};

const contexts = await Promise.all(
  electronBuildOptions().map((options) =>
    context({
      ...options,
      plugins: [
        {
          name: 'restart-electron',
          setup(b) {
            b.onEnd((result) => {
              if (result.errors.length > 0) return;
              clearTimeout(restarting);
              restarting = setTimeout(launch, 300);
            });
          },
        },
      ],
    }),
  ),
);
await Promise.all(contexts.map((c) => c.watch()));
