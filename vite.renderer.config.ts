// Vite builds the renderer into dist/renderer with relative asset URLs, so the same files load from app://bundle/
// (Electron) and from /<token>/ (serve mode). index.html's CSP meta tag is written from shared/ipc/csp.ts, the
// same source Electron main's and serve mode's CSP headers come from.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import type { Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { appCsp } from './shared/ipc/csp.ts';

const root = fileURLToPath(new URL('./renderer', import.meta.url));
const DEV_SERVER = 'http://127.0.0.1:5173';

/**
 * Fills index.html's `%APP_CSP%` with the app's policy. Vite's dev server (`apply: 'serve'`) also needs its inline
 * React-refresh preamble and its HMR socket; the built app needs neither.
 */
export function cspMetaPlugin(mode: 'build' | 'serve'): Plugin {
  const csp = mode === 'build' ? appCsp({ meta: true }) : appCsp({ meta: true, extra: { 'script-src': ["'unsafe-inline'"], 'connect-src': [DEV_SERVER.replace(/^http/, 'ws')] } });
  return {
    name: `csp-meta-${mode}`,
    apply: mode,
    transformIndexHtml: (html: string) => {
      if (!html.includes('%APP_CSP%')) throw new Error('renderer/index.html has no %APP_CSP% placeholder for the CSP meta tag');
      return html.replace('%APP_CSP%', csp);
    },
  };
}

export default defineConfig(() => ({
  root,
  base: './',
  plugins: [react(), cspMetaPlugin('build'), cspMetaPlugin('serve')],
  build: {
    outDir: fileURLToPath(new URL('./dist/renderer', import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 2000,
  },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
}));
