// The window's hardening, as pure functions so tests can check exactly what main builds.
import type { BrowserWindowConstructorOptions } from 'electron';

/** Content-Security-Policy for the app's pages (also a meta tag in renderer/index.html). */
export const APP_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/** `npm run dev` only: Vite's dev server needs its inline React-refresh preamble and HMR socket. */
export function devCsp(devUrl: string): string {
  const origin = new URL(devUrl).origin;
  return APP_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace("connect-src 'self'", `connect-src 'self' ${origin.replace(/^http/, 'ws')}`);
}

export function windowOptions(preloadPath: string): BrowserWindowConstructorOptions {
  return {
    width: 1280,
    height: 860,
    minWidth: 900,
    minHeight: 600,
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
    },
  };
}

/** Where the app's page lives: its file URL (built) or the Vite dev server's origin (npm run dev). */
export interface AppLocation {
  kind: 'file' | 'dev';
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
  if (app.kind === 'file') return parsed.protocol === 'file:' && parsed.pathname === home.pathname;
  return parsed.protocol === home.protocol && parsed.host === home.host;
}

/** The trusted-sender rule for IPC: the main frame (no parent) of our window, showing the app's page. */
export function isTrustedSender(frame: { url: string; parent: unknown } | null | undefined, app: AppLocation): boolean {
  if (!frame || frame.parent !== null) return false;
  return isAppUrl(frame.url, app);
}
