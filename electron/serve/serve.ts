// Browser mode: serves the built renderer on loopback and the app's typed API over a WebSocket, for headless hosts
// and the end-to-end tests. A random token is part of every URL: without it neither the page, its assets nor the
// socket answer. Every socket message is checked with the same validators Electron main uses.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { appCsp, mimeFor } from '../../shared/ipc/csp.ts';
import { parseRequestFrame, ValidationError } from '../../shared/ipc/validators.ts';
import { createHost } from '../host/host.ts';
import type { EngineHost } from '../host/host.ts';

const PROJECT_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

export interface ServeOptions {
  configPath: string;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** The built renderer (vite build output). */
  distDir?: string;
  token?: string;
  batchMs?: number;
  /** How many files and chunks of a manifest openManifest sends at most (HostOptions.previewEntries). */
  previewEntries?: number;
}

export interface Served {
  url: string;
  port: number;
  token: string;
  host: EngineHost;
  close(): Promise<void>;
}


/** The page's Content-Security-Policy in serve mode: the app's one policy, with the socket's origin named. */
export function serveCsp(origin: string): string {
  return appCsp({ extra: { 'connect-src': [origin.replace(/^http/, 'ws')] } });
}

/**
 * The origins the app's page may be served under: the bound address, and for a loopback bind every loopback name
 * a user may type (`localhost`, `127.0.0.1`, `[::1]`), always on this server's own port.
 */
export function pageOriginsFor(bindHost: string, port: number): string[] {
  const loopback = ['127.0.0.1', 'localhost', '::1'];
  const hosts = loopback.includes(bindHost) ? ['127.0.0.1', 'localhost', '[::1]'] : [bindHost.includes(':') ? `[${bindHost}]` : bindHost];
  return hosts.map((h) => `http://${h}:${port}`);
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `/<token>/rest` → `rest`, or undefined when the token is missing or wrong. */
export function stripToken(pathname: string, token: string): string | undefined {
  const match = /^\/([^/]+)(\/.*)?$/.exec(pathname);
  if (!match?.[1] || !sameToken(match[1], token)) return undefined;
  return match[2] ?? '';
}

export async function startServe(options: ServeOptions): Promise<Served> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const bindHost = options.host ?? '127.0.0.1';
  const distDir = resolve(options.distDir ?? resolve(PROJECT_ROOT, 'dist/renderer'));
  try {
    await stat(resolve(distDir, 'index.html'));
  } catch {
    throw new Error(`No built renderer at ${distDir}. Fix: run "npm run build:renderer" first.`);
  }
  const host = createHost({
    configPath: options.configPath,
    ...(options.batchMs !== undefined ? { batchMs: options.batchMs } : {}),
    ...(options.previewEntries !== undefined ? { previewEntries: options.previewEntries } : {}),
  });
  let origin = '';
  let pageOrigins: string[] = [];
  /** The request's Origin is the page it was sent to (its Host), and a name this server answers to. */
  const isPageOrigin = (given: string | undefined, hostHeader: string | undefined): boolean => {
    if (!given || given !== `http://${hostHeader ?? ''}`) return false;
    return pageOrigins.includes(given) || !isLoopbackBind;
  };
  const isLoopbackBind = ['127.0.0.1', 'localhost', '::1'].includes(bindHost);

  const server = createServer((req, res) => {
    void servePage(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end('internal error');
    });
  });

  async function servePage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const common = {
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, common).end();
      return;
    }
    const url = new URL(req.url ?? '/', origin);
    const rest = stripToken(url.pathname, token);
    if (rest === undefined) {
      res.writeHead(404, { ...common, 'Content-Type': 'text/plain' }).end('Not found. Open the URL printed by "npm run serve" (it carries the access token).');
      return;
    }
    if (rest === '') {
      res.writeHead(302, { ...common, Location: `/${token}/` }).end();
      return;
    }
    const relativePath = decodeURIComponent(rest === '/' ? '/index.html' : rest);
    const file = resolve(distDir, `.${relativePath}`);
    if (!file.startsWith(distDir + sep) || relativePath.includes('\0')) {
      res.writeHead(404, common).end();
      return;
    }
    let size: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a file');
      size = info.size;
    } catch {
      res.writeHead(404, { ...common, 'Content-Type': 'text/plain' }).end('Not found');
      return;
    }
    res.writeHead(200, {
      ...common,
      'Content-Type': mimeFor(file),
      'Content-Length': size,
      'Content-Security-Policy': serveCsp(isPageOrigin(`http://${req.headers.host ?? ''}`, req.headers.host) ? `http://${req.headers.host ?? ''}` : origin),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  }

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 2 * 1024 * 1024,
  });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    // A request target that is no URL (`GET http://[oops HTTP/1.1`) is refused like a wrong token; thrown here,
    // in an event handler, it would end the process, before any token was checked.
    const url = URL.parse(req.url ?? '/', origin);
    const rest = url ? stripToken(url.pathname, token) : undefined;
    // A page from another origin could open a socket to loopback; only our own page may.
    if (rest !== '/api' || !isPageOrigin(req.headers.origin, req.headers.host)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  wss.on('connection', (ws: WebSocket) => {
    const unsubscribe = host.subscribe((event, payload) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event, payload }));
    });
    ws.on('close', unsubscribe);
    // A frame over maxPayload, invalid UTF-8 or a protocol error: ws closes this socket with the right code
    // (1009, 1007, 1002) after emitting 'error'. Without a listener that error would end the whole process.
    ws.on('error', () => ws.terminate());
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        ws.send(JSON.stringify({ id: -1, envelope: { ok: false, error: { code: 'invalid_request', message: 'Refused: binary frames are not part of the API.' } } }));
        return;
      }
      let frame;
      try {
        frame = parseRequestFrame(data.toString());
      } catch (error) {
        const message = error instanceof ValidationError ? error.message : 'bad message';
        ws.send(JSON.stringify({ id: -1, envelope: { ok: false, error: { code: 'invalid_request', message: `Refused: ${message}.` } } }));
        return;
      }
      void host.call(frame.channel, frame.payload).then((envelope) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id: frame.id, envelope }));
      });
    });
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, bindHost, () => resolveListen());
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = bindHost.includes(':') ? `[${bindHost}]` : bindHost;
  origin = `http://${shownHost}:${port}`;
  pageOrigins = pageOriginsFor(bindHost, port);

  return {
    url: `${origin}/${token}/`,
    port,
    token,
    host,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await host.close();
    },
  };
}
