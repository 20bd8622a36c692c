// Loopback proxies that misbehave on purpose, put between the engine and a real node agent:
// - corruptingProxy: an HTTP proxy that flips one byte in the body of some chunk uploads (PUT), trailers and
//   all headers forwarded unchanged, so only the agent's checksum check can notice;
// - tcpProxy: a byte pipe that can throttle to a bandwidth, or hold back the agent's answers (a node that
//   takes the data but is too slow to confirm it) or everything (a node that hangs).
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

export interface CorruptingProxy {
  url: string;
  /** Uploads whose body was altered. */
  corrupted: string[];
  /** Answers the agent gave to altered uploads, by HTTP status. */
  answersToCorrupted: Map<number, number>;
  puts: number;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'expect', 'te', 'upgrade', 'proxy-connection', 'host']);

function forwardHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** Flips the bits of the byte at `at` (counted over the whole stream). */
class FlipByte extends Transform {
  private seen = 0;
  private readonly at: number;

  constructor(at: number) {
    super();
    this.at = at;
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.at >= this.seen && this.at < this.seen + data.length) {
      const copy = Buffer.from(data);
      copy[this.at - this.seen] = copy[this.at - this.seen]! ^ 0xff;
      data = copy;
    }
    this.seen += data.length;
    done(null, data);
  }
}

/**
 * `fraction` of distinct chunk uploads (chosen by a hash of seed + path, so a redelivery of an altered chunk goes
 * through untouched) get one byte flipped at a position derived from the same hash.
 */
export async function corruptingProxy(target: { port: number }, o: { fraction: number; seed: string }): Promise<CorruptingProxy> {
  const seen = new Set<string>();
  const sockets = new Set<Socket>();
  const state: CorruptingProxy = { url: '', corrupted: [], answersToCorrupted: new Map(), puts: 0, close: async () => undefined };
  const server: Server = createHttpServer((req, res) => {
    const path = req.url ?? '/';
    let flipAt: number | undefined;
    if (req.method === 'PUT') {
      state.puts++;
      const size = Number(req.headers['x-chunk-size'] ?? 0);
      const h = createHash('sha256').update(`${o.seed}|${path}`).digest();
      if (!seen.has(path) && size > 0 && h.readUInt32BE(0) / 0x1_0000_0000 < o.fraction) flipAt = h.readUInt32BE(4) % size;
      seen.add(path);
    }
    const upstream = httpRequest({ host: '127.0.0.1', port: target.port, method: req.method, path, headers: forwardHeaders(req.headers) }, (up) => {
      if (flipAt !== undefined) state.answersToCorrupted.set(up.statusCode ?? 0, (state.answersToCorrupted.get(up.statusCode ?? 0) ?? 0) + 1);
      res.writeHead(up.statusCode ?? 502, forwardHeaders(up.headers));
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (flipAt !== undefined) state.corrupted.push(decodeURIComponent(path));
    const body = flipAt !== undefined ? req.pipe(new FlipByte(flipAt)) : req;
    body.on('data', (d: Buffer) => {
      if (!upstream.write(d)) body.pause();
    });
    upstream.on('drain', () => body.resume());
    body.on('end', () => {
      if (Object.keys(req.trailers).length > 0) upstream.addTrailers(req.trailers as Record<string, string>);
      upstream.end();
    });
    req.on('error', () => upstream.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((res) => server.close(() => res()));
  };
  return state;
}

export interface TcpProxy {
  url: string;
  port: number;
  /** Bytes per second in each direction per connection; Infinity lifts the limit. */
  setRate(bytesPerSecond: number): void;
  /** 'responses': the agent's bytes are held back (uploads still arrive); 'all': nothing moves; 'none': normal. */
  hold(what: 'none' | 'responses' | 'all'): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy in front of `target` that can throttle or hold traffic. */
export async function tcpProxy(target: { port: number }, initialRate = Infinity): Promise<TcpProxy> {
  let rate = initialRate;
  let holding: 'none' | 'responses' | 'all' = 'none';
  const pipes = new Set<{ pump(): void; destroy(): void }>();

  function pipeOne(from: Socket, to: Socket, isResponse: boolean): { pump(): void } {
    const queue: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    let draining = false;
    const held = (): boolean => holding === 'all' || (holding === 'responses' && isResponse);
    const pump = (): void => {
      if (timer || draining || to.destroyed) return;
      while (queue.length > 0 && !held()) {
        let part = queue.shift()!;
        if (Number.isFinite(rate)) {
          // Send at most ~20 ms worth, then wait that long.
          const budget = Math.max(1024, Math.floor(rate / 50));
          if (part.length > budget) {
            queue.unshift(part.subarray(budget));
            part = part.subarray(0, budget);
          }
          to.write(part);
          timer = setTimeout(() => {
            timer = undefined;
            pump();
          }, Math.max(1, Math.round((part.length / rate) * 1000)));
          return;
        }
        if (!to.write(part)) {
          draining = true;
          to.once('drain', () => {
            draining = false;
            pump();
          });
          return;
        }
      }
      if (queue.length === 0 && ended && !held()) to.end();
      if (queue.length < 16 && !held()) from.resume();
    };
    from.on('data', (d: Buffer) => {
      queue.push(d);
      if (queue.length >= 16 || held()) from.pause();
      pump();
    });
    from.on('end', () => {
      ended = true;
      pump();
    });
    return { pump };
  }

  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target.port });
    const a = pipeOne(client, upstream, false);
    const b = pipeOne(upstream, client, true);
    const entry = {
      pump: () => {
        a.pump();
        b.pump();
      },
      destroy: () => {
        client.destroy();
        upstream.destroy();
      },
    };
    pipes.add(entry);
    const drop = (): void => {
      entry.destroy();
      pipes.delete(entry);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setRate(bytesPerSecond) {
      rate = bytesPerSecond;
      for (const p of pipes) p.pump();
    },
    hold(what) {
      holding = what;
      for (const p of pipes) p.pump();
    },
    async close() {
      for (const p of pipes) p.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}
