// Electron main: one hardened window, the engine host on a worker thread, typed IPC between them.
// Bundled by esbuild to dist/electron/main.mjs (scripts/build-electron.ts); `npm start` builds and launches it.
import { app, BrowserWindow, session, shell } from 'electron';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createHost } from '../host/host.ts';
import type { EngineHost } from '../host/host.ts';
import { registerIpc } from './ipc.ts';
import { APP_CSP, devCsp, isAppUrl, windowOptions } from './security.ts';
import type { AppLocation } from './security.ts';

const here = dirname(fileURLToPath(import.meta.url));
// dist/electron/main.mjs → project root is two levels up.
const projectRoot = resolve(here, '../..');
const devUrl = process.env.ELECTRON_RENDERER_URL;
const location: AppLocation = devUrl
  ? { kind: 'dev', url: devUrl }
  : { kind: 'file', url: pathToFileURL(resolve(projectRoot, 'dist/renderer/index.html')).href };

/** The only files the window may load: the built renderer's folder. */
const rendererFiles = `${pathToFileURL(resolve(projectRoot, 'dist/renderer')).href}/`;

function configPathFromArgs(argv: string[]): string {
  const at = argv.indexOf('--config');
  const given = at >= 0 ? argv[at + 1] : process.env.CLOUD_INGEST_CONFIG;
  return resolve(given ?? resolve(projectRoot, 'config/data_sources.yml'));
}

let mainWindow: BrowserWindow | undefined;
let host: EngineHost | undefined;

function harden(): void {
  // Header CSP for every response (the meta tag in index.html says the same for file:// pages).
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [devUrl ? devCsp(devUrl) : APP_CSP] } });
  });
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  // No remote content: every request other than the app's own files (or the dev server) is cancelled.
  session.defaultSession.webRequest.onBeforeRequest((details, callback) => {
    const url = details.url;
    const ok =
      url.startsWith(rendererFiles) ||
      url.startsWith('devtools:') ||
      (devUrl !== undefined && (url.startsWith(devUrl) || url.startsWith(devUrl.replace(/^http/, 'ws'))));
    callback({ cancel: !ok });
  });
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-navigate', (event, url) => {
      if (!isAppUrl(url, location)) event.preventDefault();
    });
    contents.on('will-redirect', (event, url) => {
      if (!isAppUrl(url, location)) event.preventDefault();
    });
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(({ url }) => {
      // Links to documentation open in the user's browser, never inside the app.
      if (/^https:\/\//.test(url)) void shell.openExternal(url);
      return { action: 'deny' };
    });
  });
}

async function createWindow(): Promise<void> {
  const window = new BrowserWindow(windowOptions(resolve(here, 'preload.cjs')));
  mainWindow = window;
  window.on('closed', () => {
    mainWindow = undefined;
  });
  window.once('ready-to-show', () => window.show());
  await window.loadURL(location.url);
}

app.enableSandbox();
app.whenReady().then(async () => {
  harden();
  host = createHost({ configPath: configPathFromArgs(process.argv) });
  registerIpc(host, () => mainWindow, location);
  await createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) void createWindow();
  });
}).catch((error: unknown) => {
  process.stderr.write(`cloud-ingest app: ${(error as Error).stack ?? String(error)}\n`);
  app.exit(1);
});

app.on('window-all-closed', () => {
  void (host?.close() ?? Promise.resolve()).finally(() => app.quit());
});
