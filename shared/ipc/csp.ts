// The one Content-Security-Policy of the app's page. The renderer build writes it into index.html's meta tag,
// Electron main sends it as a header on every app:// response, and serve mode sends it as a header with its
// socket's origin added. `frame-ancestors` is honoured only as a header, so the meta tag leaves it out.

const DIRECTIVES: readonly [string, string][] = [
  ['default-src', "'none'"],
  ['script-src', "'self'"],
  ['style-src', "'self' 'unsafe-inline'"],
  ['img-src', "'self' data:"],
  ['font-src', "'self'"],
  // 'self' covers the page's own ws:// origin too (CSP Level 3), so serve mode's socket needs no extra source.
  ['connect-src', "'self'"],
  ['base-uri', "'none'"],
  ['form-action', "'none'"],
  ['frame-ancestors', "'none'"],
  ['object-src', "'none'"],
];

const HEADER_ONLY = new Set(['frame-ancestors']);

export interface CspOptions {
  /** Extra sources per directive (serve mode's socket origin, the Vite dev server). */
  extra?: Partial<Record<string, string[]>>;
  /** For a meta tag: leaves out what only a header may carry. */
  meta?: boolean;
}

export function appCsp(options: CspOptions = {}): string {
  return DIRECTIVES.filter(([name]) => !(options.meta && HEADER_ONLY.has(name)))
    .map(([name, value]) => [name, [value, ...(options.extra?.[name] ?? [])].join(' ')])
    .map(([name, value]) => `${name} ${value}`)
    .join('; ');
}

/** The header every app page gets. */
export const APP_CSP = appCsp();

/** The meta tag's policy: the header's, minus header-only directives. */
export const APP_META_CSP = appCsp({ meta: true });

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

/** The Content-Type the app's bundle files are served with (by app:// in Electron and by serve mode alike). */
export function mimeFor(path: string): string {
  const dot = path.lastIndexOf('.');
  return MIME[dot >= 0 ? path.slice(dot).toLowerCase() : ''] ?? 'application/octet-stream';
}
