// The window's hardening, as pure functions so tests can check exactly what main builds.
import type { BrowserWindowConstructorOptions } from 'electron';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { APP_CSP, appCsp } from '../../shared/ipc/csp.ts';

/** Content-Security-Policy header of the app's pages; the meta tag in index.html is built from the same source. */
export { APP_CSP };

/** `npm run dev` only: Vite's dev server needs its inline React-refresh preamble and HMR socket. */
export function devCsp(devUrl: string): string {
  const origin = new URL(devUrl).origin;
  return appCsp({ extra: { 'script-src': ["'unsafe-inline'"], 'connect-src': [origin.replace(/^http/, 'ws')] } });
}

/** The app's own scheme: the built renderer is served as app://bundle/…, never from file://. */
export const APP_SCHEME = 'app';
export const APP_HOST = 'bundle';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_PAGE = `${APP_ORIGIN}/index.html`;

/** Registered before the app is ready: a standard, secure scheme (origin-bound storage, CSP 'self' works). */
export const APP_SCHEME_PRIVILEGES = { standard: true, secure: true, supportFetchAPI: true, corsEnabled: false, stream: true } as const;

export { mimeFor } from '../../shared/ipc/csp.ts';

/**
 * The file an app:// request may read: under `rendererDir` only (the built renderer), `/` meaning index.html.
 * Another host, a path that climbs out (also when percent-encoded), a NUL or a backslash gives undefined.
 */
export function appFileFor(requestUrl: string, rendererDir: string): string | undefined {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return undefined;
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST) return undefined;
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return undefined;
  }
  if (path.includes('\0') || path.includes('\\')) return undefined;
  const root = resolve(rendererDir);
  const file = resolve(root, `.${path === '/' ? '/index.html' : path}`);
  const rel = relative(root, file);
  if (!rel || rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) return undefined;
  return file;
}

/** Sites the app may open in the user's browser (documentation); every other URL is refused. */
export const EXTERNAL_ORIGINS: readonly string[] = [
  'https://github.com',
  'https://docs.aws.amazon.com',
  'https://cloud.google.com',
  'https://learn.microsoft.com',
];

/** True for an https URL on an allowed origin, with no credentials in it. */
export function isAllowedExternal(target: string): boolean {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return false;
  }
  return url.protocol === 'https:' && url.username === '' && url.password === '' && EXTERNAL_ORIGINS.includes(url.origin);
}

export function windowOptions(preloadPath: string, options: { devTools?: boolean } = {}): BrowserWindowConstructorOptions {
  return {
    width: 1280,
    height: 860,
    minWidth: 1024,
    minHeight: 700,
    title: 'Cloud Ingest',
    backgroundColor: '#0f172a',
    show: false,
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      safeDialogs: true,
      // Off in packaged builds: DevTools would hand anyone at the keyboard the renderer's API.
      devTools: options.devTools ?? false,
    },
  };
}

/** Where the app's page lives: app://bundle/index.html (built) or the Vite dev server's origin (npm run dev). */
export interface AppLocation {
  kind: 'app' | 'dev';
  url: string;
}

/** True when `target` is the app's own page; every other navigation is refused. */
export function isAppUrl(target: string, app: AppLocation): boolean {
  let parsed: URL;
  let home: URL;
  try {
    parsed = new URL(target);
    home = new URL(app.url);
  } catch {
    return false;
  }
  if (app.kind === 'app') return parsed.protocol === home.protocol && parsed.host === home.host && parsed.pathname === home.pathname;
  return parsed.protocol === home.protocol && parsed.host === home.host;
}

/** The trusted-sender rule for IPC: the main frame (no parent) of our window, showing the app's page. */
export function isTrustedSender(frame: { url: string; parent: unknown } | null | undefined, app: AppLocation): boolean {
  if (!frame || frame.parent !== null) return false;
  return isAppUrl(frame.url, app);
}
