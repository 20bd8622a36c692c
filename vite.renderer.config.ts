// Vite builds the renderer into dist/renderer with relative asset URLs, so the same files load from file://
// (Electron) and from /<token>/ (serve mode).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const root = fileURLToPath(new URL('./renderer', import.meta.url));

export default defineConfig(() => ({
  root,
  base: './',
  plugins: [
    react(),
    {
      // Vite's dev server needs an inline React-refresh preamble and its HMR socket; the built app needs neither.
      name: 'dev-csp',
      apply: 'serve',
      transformIndexHtml: (html: string) =>
        html.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace("connect-src 'self'", "connect-src 'self' ws://127.0.0.1:5173"),
    },
  ],
  build: {
    outDir: fileURLToPath(new URL('./dist/renderer', import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 2000,
  },
  server: { host: '127.0.0.1', port: 5173, strictPort: true },
}));
