// Electron main: one hardened window showing app://bundle/index.html, the engine host on a worker thread, typed IPC
// between them. Bundled by esbuild to dist/electron/main.mjs (electron/main/build.ts); `npm start` builds and
// launches it.
import { app, BrowserWindow, dialog, protocol, session, shell } from 'electron';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createHost, previewEntriesFromEnv } from '../host/host.ts';
import type { EngineHost } from '../host/host.ts';
import { registerIpc } from './ipc.ts';
import { APP_CSP, APP_ORIGIN, APP_PAGE, APP_SCHEME, APP_SCHEME_PRIVILEGES, appFileFor, devCsp, isAllowedExternal, isAppUrl, mimeFor, windowOptions } from './security.ts';
import type { AppLocation } from './security.ts';

const here = dirname(fileURLToPath(import.meta.url));
// dist/electron/main.mjs → project root is two levels up.
const projectRoot = resolve(here, '../..');
const rendererDir = resolve(projectRoot, 'dist/renderer');
const devUrl = process.env.ELECTRON_RENDERER_URL;
const location: AppLocation = devUrl ? { kind: 'dev', url: devUrl } : { kind: 'app', url: APP_PAGE };
const devTools = !app.isPackaged;

function configPathFromArgs(argv: string[]): string {
  const at = argv.indexOf('--config');
  const given = at >= 0 ? argv[at + 1] : process.env.CLOUD_INGEST_CONFIG;
  return resolve(given ?? resolve(projectRoot, 'config/data_sources.yml'));
}

let mainWindow: BrowserWindow | undefined;
let host: EngineHost | undefined;

// Must happen before `ready`: app:// behaves as a secure, standard origin.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: APP_SCHEME_PRIVILEGES }]);

/** Serves the built renderer on app://bundle/ from its folder only, every response with the app's CSP. */
function serveAppScheme(): void {
  session.defaultSession.protocol.handle(APP_SCHEME, async (request) => {
    const file = appFileFor(request.url, rendererDir);
    const headers = { 'Content-Security-Policy': APP_CSP, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' };
    if (!file) return new Response('Not found', { status: 404, headers });
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a file');
      const body = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
      return new Response(body, { status: 200, headers: { ...headers, 'Content-Type': mimeFor(file), 'Content-Length': String(info.size) } });
    } catch {
      return new Response('Not found', { status: 404, headers });
    }
  });
}

function harden(): void {
  if (devUrl) {
    // Vite's dev server: its pages get the dev policy as a header too.
    session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
      callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [devCsp(devUrl)] } });
    });
  }
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  // No remote content: every request other than the app's own files (or the dev server) is cancelled.
  session.defaultSession.webRequest.onBeforeRequest((details, callback) => {
    const url = details.url;
    const ok =
      url.startsWith(`${APP_ORIGIN}/`) ||
      (devTools && url.startsWith('devtools:')) ||
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
    if (!devTools) contents.on('devtools-opened', () => contents.closeDevTools());
    contents.setWindowOpenHandler(({ url }) => {
      // Documentation links open in the user's browser, and only those on the allow-list; never inside the app.
      if (isAllowedExternal(url)) void shell.openExternal(url);
      return { action: 'deny' };
    });
  });
}

async function pickFolder(): Promise<string | null> {
  const options = { title: 'Choose a folder for reassembled files', properties: ['openDirectory', 'createDirectory'] as ('openDirectory' | 'createDirectory')[] };
  const result = mainWindow ? await dialog.showOpenDialog(mainWindow, options) : await dialog.showOpenDialog(options);
  return result.canceled ? null : (result.filePaths[0] ?? null);
}

async function createWindow(): Promise<void> {
  const window = new BrowserWindow(windowOptions(resolve(here, 'preload.cjs'), { devTools }));
  mainWindow = window;
  window.on('closed', () => {
    mainWindow = undefined;
  });
  window.once('ready-to-show', () => window.show());
  await window.loadURL(location.url);
}

app.enableSandbox();
app.whenReady().then(async () => {
  serveAppScheme();
  harden();
  const previewEntries = previewEntriesFromEnv();
  host = createHost({ configPath: configPathFromArgs(process.argv), pickFolder, ...(previewEntries !== undefined ? { previewEntries } : {}) });
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
