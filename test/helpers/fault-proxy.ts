// A small fault-injecting HTTP proxy on loopback, put in front of a storage emulator. It forwards
// requests unchanged (method, path, headers, body, streaming both ways) and, for the requests it
// picks, instead answers 503, drops the connection before answering, or cuts the response body
// halfway. Picking is deterministic: by a fixed schedule, or by a fraction of distinct requests
// (hashed on method + path + Range, so a retry of a faulted request is never faulted again and an
// ingest can always finish). Every fault is counted so tests can compare with what the engine saw.
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type FaultKind = '503' | 'reset' | 'truncate';

export interface FaultRecord {
  kind: FaultKind;
  method: string;
  path: string;
  range?: string;
}

export interface FaultPlan {
  /** Which faults to inject, cycled in order across the requests that are picked. */
  kinds: FaultKind[];
  /** Fraction (0–1) of distinct requests picked; each distinct request is faulted at most once. */
  fraction?: number;
  /** Only requests that match are candidates (default: every request). */
  match?: (req: IncomingMessage) => boolean;
  /** Always pick the first N candidate requests (each once), before the fraction applies. */
  first?: number;
  /** Seed mixed into the hash so different runs pick different requests. */
  seed?: string;
  /** Awaited before each request is handled (faulted or forwarded): lets a test act at an exact point. */
  before?: (req: IncomingMessage) => Promise<void> | void;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  faults: FaultRecord[];
  requests: number;
  /** The byte range of every ranged request, in arrival order. */
  ranges: string[];
  /** The most ranged requests that were open at once (arrived, their answer not yet all sent). */
  mostRangedOpen: number;
  setPlan(plan: FaultPlan | undefined): void;
  close(): Promise<void>;
}

/** The byte range a request asks for: `Range`, or Azure's `x-ms-range`. */
export function rangeOf(req: IncomingMessage): string | undefined {
  const r = req.headers.range ?? req.headers['x-ms-range'];
  return typeof r === 'string' ? r : undefined;
}

/** Object reads (ranged GETs) — the requests worth breaking in an ingest. */
export function isRangedGet(req: IncomingMessage): boolean {
  return req.method === 'GET' && rangeOf(req) !== undefined;
}

export async function startFaultProxy(target: { host: string; port: number }, initial?: FaultPlan): Promise<FaultProxy> {
  let plan = initial;
  const faulted = new Set<string>();
  const sockets = new Set<Socket>();
  let candidates = 0;
  let rangedOpen = 0;
  let picked = 0;
  const state: FaultProxy = {
    url: '',
    port: 0,
    faults: [],
    ranges: [],
    mostRangedOpen: 0,
    requests: 0,
    setPlan(p) {
      plan = p;
      faulted.clear();
      candidates = 0;
      picked = 0;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };

  function choose(req: IncomingMessage): FaultKind | undefined {
    if (!plan || plan.kinds.length === 0) return undefined;
    if (plan.match && !plan.match(req)) return undefined;
    const range = rangeOf(req) ?? '';
    // Without the query: it can carry what changes from run to run (a GCS read names the object's generation),
    // and the same seed must fault the same reads every run.
    const signature = `${req.method} ${(req.url ?? '').split('?')[0]} ${range}`;
    if (faulted.has(signature)) return undefined;
    candidates++;
    let pick = plan.first !== undefined && candidates <= plan.first;
    if (!pick && plan.fraction) {
      const h = createHash('sha256').update(`${plan.seed ?? ''}|${signature}`).digest();
      pick = h.readUInt32BE(0) / 0x1_0000_0000 < plan.fraction;
    }
    if (!pick) return undefined;
    faulted.add(signature);
    return plan.kinds[picked++ % plan.kinds.length];
  }

  function forward(req: IncomingMessage, res: ServerResponse, kind: FaultKind | undefined): void {
    const upstream = httpRequest(
      { host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.statusMessage, up.rawHeaders);
        if (kind !== 'truncate') {
          up.pipe(res);
          return;
        }
        // Send about half the body, then drop the connection.
        const total = Number(up.headers['content-length'] ?? 0);
        const limit = Math.max(1, Math.floor(total / 2));
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= limit) return;
          const part = chunk.subarray(0, limit - sent);
          sent += part.length;
          res.write(part);
          if (sent >= limit) {
            up.destroy();
            res.socket?.destroy();
          }
        });
        up.on('end', () => res.end());
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  }

  const server: Server = createServer((req, res) => {
    state.requests++;
    const range = rangeOf(req);
    if (range) {
      state.ranges.push(range);
      state.mostRangedOpen = Math.max(state.mostRangedOpen, ++rangedOpen);
      let counted = true;
      const done = (): void => {
        if (counted) rangedOpen--;
        counted = false;
      };
      res.once('finish', done);
      res.once('close', done);
    }
    const before = plan?.before;
    if (!before) return handle(req, res);
    req.pause();
    Promise.resolve(before(req)).then(
      () => handle(req, res),
      () => req.socket.destroy(),
    );
  });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const kind = choose(req);
    const range = rangeOf(req);
    if (kind) state.faults.push({ kind, method: req.method ?? '', path: req.url ?? '', ...(range ? { range } : {}) });
    if (kind === '503') {
      // Read the request body first so the client sees the answer, not a broken pipe.
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '0', connection: 'close' });
        res.end('injected fault: service unavailable\n');
      });
      return;
    }
    if (kind === 'reset') {
      req.socket.destroy();
      return;
    }
    forward(req, res, kind);
  }
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const addr = server.address();
  state.port = typeof addr === 'object' && addr ? addr.port : 0;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}
