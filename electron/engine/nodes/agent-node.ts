// A node that is a remote node agent (`cloud-ingest agent`), reached over HTTP keep-alive connections.
// Writes stream the chunk and declare its checksum in an HTTP trailer once the last byte has been hashed; the
// agent keeps the chunk only if the bytes it received hash to it. See docs/agent.md for the protocol.
import type * as http from 'node:http';
import type * as https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { Checksum } from '../../../shared/types.ts';
import {
  CHUNKS_PATH,
  H_ALGORITHM,
  H_CHECKSUM,
  H_FILE,
  H_INDEX,
  H_OFFSET,
  H_SIZE,
  H_REPLACE,
  H_SOURCE_ETAG,
  HEALTH_PATH,
  chunkPath,
  heldChunk,
} from '../agent/protocol.ts';
import type { AgentChunkMeta, AgentErrorBody, AgentHealth, AgentListPage, AgentPutResult } from '../agent/protocol.ts';
import { NodeError } from './node.ts';
import type { ChunkMeta, NodeErrorCode, NodeProbe, NodeTarget, StoredChunk } from './node.ts';

export interface AgentNodeOptions {
  id: string;
  /** `http://host:port` (https works too). */
  url: string;
  /** Name of the environment variable holding the agent's bearer token (`token_env` in the config). */
  tokenEnv?: string;
  /** Where the token variable is looked up; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Algorithm the checksums of this run use; the agent hashes with it while receiving. */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Most connections open to this node at once (default 8). */
  maxSockets?: number;
  /** A transfer making no progress for this long fails with `timeout` (default 30 s). */
  timeoutMs?: number;
  /** Health probes fail after this long (default 5 s). */
  probeTimeoutMs?: number;
}

export const DEFAULT_AGENT_TIMEOUT_MS = 30_000;
const DEFAULT_PROBE_TIMEOUT_MS = 5_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const LIST_PAGE = 1000;

/** Errors on a reused keep-alive socket before any body byte was sent: the server had closed it; safe to retry. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
/**
 * The agent refusing one chunk for the chunk's own sake (its id or metadata cannot be kept): another node would
 * answer the same, so it fails that chunk's file, not the node. Byte mismatches stay `checksum_mismatch` (retried);
 * a chunk over the agent's --max-chunk-bytes is about the node, whose limit every chunk of the run meets alike.
 */
const CHUNK_REFUSAL_STATUSES: ReadonlySet<number> = new Set([400, 413, 422, 431]);
const SHOWN_ID_CHARS = 200;
const CHUNK_REFUSAL_CODES: ReadonlySet<string> = new Set(['invalid_chunk']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

interface RequestOptions {
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  what: string;
  agent?: http.Agent;
}

class StallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StallError';
  }
}

/** Thrown inside a write when the source stream (not the node) failed; rethrown unchanged to the caller. */
class SourceFailure {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/**
 * Listens for the source's error from the moment a write starts until it ends, so an error while the write waits for
 * a free connection or for the node's 100-continue always has a listener: it fails that write, never the process.
 */
class SourceWatch {
  failure: SourceFailure | undefined;
  private readonly data: Readable;
  private listener: ((failure: SourceFailure) => void) | undefined;
  private readonly onError = (error: unknown): void => {
    this.failure ??= new SourceFailure(error);
    this.listener?.(this.failure);
  };

  constructor(data: Readable) {
    this.data = data;
    if (data.errored) this.failure = new SourceFailure(data.errored);
    data.on('error', this.onError);
  }

  /** Tells the attempt in progress (only the latest one) when the source fails, at once if it already has. */
  onFailure(listener: (failure: SourceFailure) => void): void {
    this.listener = listener;
    if (this.failure) listener(this.failure);
  }

  stop(): void {
    this.listener = undefined;
    this.data.off('error', this.onError);
  }
}

export class AgentNode implements NodeTarget {
  readonly id: string;
  readonly kind = 'agent' as const;
  readonly location: string;
  private readonly base: URL;
  private readonly basePath: string;
  private readonly tokenEnv: string | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private readonly algorithm: ChecksumAlgorithm;
  private readonly timeoutMs: number;
  private readonly probeTimeoutMs: number;
  private readonly transport: typeof http | typeof https;
  private readonly agent: http.Agent;
  /** Health probes get their own connection, so a pool busy with uploads never makes a node look dead. */
  private readonly probeAgent: http.Agent;

  constructor(options: AgentNodeOptions) {
    this.id = options.id;
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new Error(`node ${options.id}: url "${options.url}" is not a URL. Fix: write it as http://host:port.`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new Error(`node ${options.id}: url "${options.url}" must start with http:// or https://.`);
    }
    if (base.username || base.password) {
      throw new Error(`node ${options.id}: put no credentials in the url; name the token's environment variable with token_env.`);
    }
    this.base = base;
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.location = `${base.protocol}//${base.host}${this.basePath}`;
    this.tokenEnv = options.tokenEnv;
    this.env = options.env ?? process.env;
    this.algorithm = options.checksumAlgorithm ?? 'md5';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_AGENT_TIMEOUT_MS;
    this.probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    // Loaded here, as CommonJS: an ESM import of node:http builds its ESM facade, which reads every export and so
    // loads undici (~50-100 ms), in every run, agent nodes or not.
    const http = process.getBuiltinModule('node:http');
    const https = process.getBuiltinModule('node:https');
    this.transport = base.protocol === 'https:' ? https : http;
    const maxSockets = options.maxSockets ?? 8;
    const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
    this.agent = base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    const probeOptions = { keepAlive: true, maxSockets: 1, maxFreeSockets: 1 };
    this.probeAgent = base.protocol === 'https:' ? new https.Agent(probeOptions) : new http.Agent(probeOptions);
  }

  // ---- NodeTarget ------------------------------------------------------------------------------------------

  async probe(signal?: AbortSignal): Promise<NodeProbe> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    try {
      const { status, body } = await this.exchange('GET', HEALTH_PATH, { signal, timeoutMs: this.probeTimeoutMs, what: 'health probe', agent: this.probeAgent });
      if (status !== 200) throw this.httpError(status, body, 'health probe');
      const health = parseJson<AgentHealth>(body);
      if (!health || typeof health.freeBytes !== 'number') throw new NodeError(this.id, 'io', `node ${this.id} (${this.location}) answered the health probe with something that is not a node agent's health report`);
      return {
        ok: health.status === 'ok' || health.status === 'full',
        latencyMs: elapsed(),
        full: health.status === 'full',
        freeBytes: health.freeBytes,
        chunkCount: health.chunkCount,
        bytesHeld: health.bytesHeld,
        ...(health.status === 'draining' ? { error: `node ${this.id} (${this.location}) is shutting down` } : {}),
      };
    } catch (error) {
      return { ok: false, latencyMs: elapsed(), error: error instanceof Error ? error.message : String(error) };
    }
  }

  async find(chunkId: string, signal?: AbortSignal): Promise<StoredChunk | undefined> {
    const { status, body } = await this.exchange('GET', `${chunkPath(chunkId)}/meta`, { signal, timeoutMs: this.timeoutMs, what: `looking up ${shown(chunkId)}` });
    if (status === 404) return undefined;
    if (status !== 200) throw this.httpError(status, body, `looking up ${shown(chunkId)}`);
    const meta = parseJson<AgentChunkMeta>(body);
    if (!meta || meta.id !== chunkId) throw new NodeError(this.id, 'io', `node ${this.id}: malformed metadata for ${shown(chunkId)}`);
    return this.stored(meta);
  }

  async write(meta: ChunkMeta, data: Readable, checksum: Promise<Checksum>, signal?: AbortSignal): Promise<StoredChunk> {
    // The digest is awaited only once the data has ended; a hasher that fails earlier must not go unhandled.
    checksum.catch(() => undefined);
    const source = new SourceWatch(data);
    try {
      const headers = this.headers();
      // A keep-alive socket the agent closed meanwhile fails before any byte of the body is sent; try a fresh one.
      for (let attempt = 1; ; attempt++) {
        const outcome = await this.writeOnce(meta, data, checksum, headers, source, signal);
        if (outcome !== 'stale-socket') return outcome;
        if (attempt >= 3) throw new NodeError(this.id, 'unreachable', `node ${this.id} (${this.location}) keeps closing the connection before accepting ${shown(meta.id)}`);
      }
    } catch (error) {
      if (!data.destroyed) data.destroy();
      if (error instanceof SourceFailure) throw error.error;
      throw error;
    } finally {
      source.stop();
    }
  }

  async read(chunkId: string, signal?: AbortSignal): Promise<Readable> {
    const what = `reading ${shown(chunkId)}`;
    const { res, done } = await this.open('GET', chunkPath(chunkId), { signal, timeoutMs: this.timeoutMs, what });
    if (res.statusCode !== 200) throw this.httpError(res.statusCode ?? 0, await this.answerOf(res, done, { signal, what }), what);
    done();
    // The consumer sets the pace from here on; only a connection silent for much longer than that counts as stalled.
    res.setTimeout(Math.max(this.timeoutMs, 60_000), () => {
      res.destroy(new NodeError(this.id, 'timeout', `node ${this.id} (${this.location}) stopped sending ${shown(chunkId)}`));
    });
    if (signal) {
      const onAbort = (): void => void res.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      res.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return res;
  }

  async *list(signal?: AbortSignal): AsyncIterable<StoredChunk> {
    let after: string | null = null;
    do {
      const query = new URLSearchParams({ limit: String(LIST_PAGE) });
      if (after !== null) query.set('after', after);
      const what = 'listing chunks';
      const { status, body } = await this.exchange('GET', `${CHUNKS_PATH}?${query}`, { signal, timeoutMs: this.timeoutMs, what, limit: 64 * MAX_RESPONSE_BYTES });
      if (status !== 200) throw this.httpError(status, body, what);
      const page = parseJson<AgentListPage>(body);
      if (!page || !Array.isArray(page.chunks)) throw new NodeError(this.id, 'io', `node ${this.id}: malformed chunk list`);
      for (const meta of page.chunks) yield this.stored(meta);
      after = page.next;
    } while (after !== null);
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.probeAgent.destroy();
  }

  // ---- internals -------------------------------------------------------------------------------------------

  private stored(meta: AgentChunkMeta): StoredChunk {
    return heldChunk(meta);
  }

  /** Authorization header; the token never leaves this function except in the header itself. */
  private headers(): Record<string, string> {
    if (this.tokenEnv === undefined) return {};
    const token = this.env[this.tokenEnv];
    if (token === undefined || token === '') {
      throw new NodeError(this.id, 'unauthorized', `node ${this.id} (${this.location}): environment variable ${this.tokenEnv} (token_env) is not set. Fix: export ${this.tokenEnv}=<the token the agent was started with>.`);
    }
    return { authorization: `Bearer ${token}` };
  }

  private urlFor(path: string): { hostname: string; port: string; path: string } {
    return { hostname: this.base.hostname.replace(/^\[|\]$/g, ''), port: this.base.port, path: this.basePath + path };
  }

  /** A request without a body and its whole answer, both within `timeoutMs`: a node that stalls mid-answer fails with `timeout`. */
  private async exchange(method: string, path: string, o: RequestOptions & { limit?: number }): Promise<{ status: number; body: Buffer }> {
    const { res, done } = await this.open(method, path, o);
    return { status: res.statusCode ?? 0, body: await this.answerOf(res, done, o) };
  }

  /** The body of an answer opened with `open`, read while its clock runs; then stops the clock. */
  private async answerOf(res: IncomingMessage, done: () => void, o: { signal?: AbortSignal | undefined; what: string; limit?: number }): Promise<Buffer> {
    try {
      return await readBody(res, o.limit);
    } catch (error) {
      throw o.signal?.aborted ? o.signal.reason : this.transportError(error, o.what);
    } finally {
      done();
    }
  }

  /**
   * Sends a request without a body; resolves with the response once its headers arrive. Its clock (and the abort
   * signal) keep running until `done` is called: a stall until then destroys the request and the response.
   */
  private open(method: string, path: string, o: RequestOptions): Promise<{ res: IncomingMessage; done: () => void }> {
    return new Promise((resolve, reject) => {
      let headers: Record<string, string>;
      try {
        headers = this.headers();
      } catch (error) {
        reject(error);
        return;
      }
      if (o.signal?.aborted) {
        reject(o.signal.reason);
        return;
      }
      const req = this.transport.request({ ...this.urlFor(path), method, agent: o.agent ?? this.agent, headers });
      let response: IncomingMessage | undefined;
      const stop = (error: Error): void => {
        req.destroy(error);
        response?.destroy(error);
      };
      // Counted from when a socket is assigned: waiting for a free one in this node's pool is not the node's fault.
      let timer: NodeJS.Timeout | undefined;
      let finished = false;
      req.once('socket', () => {
        if (!finished) timer = setTimeout(() => stop(new StallError(`no complete answer within ${o.timeoutMs} ms`)), o.timeoutMs);
      });
      const onAbort = (): void => stop(o.signal?.reason instanceof Error ? o.signal.reason : new Error('aborted'));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        finished = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
      };
      req.once('response', (res) => {
        response = res;
        resolve({ res, done });
      });
      req.once('error', (error) => {
        done();
        reject(o.signal?.aborted ? o.signal.reason : this.transportError(error, o.what));
      });
      req.end();
    });
  }

  private writeOnce(meta: ChunkMeta, data: Readable, checksum: Promise<Checksum>, auth: Record<string, string>, source: SourceWatch, signal?: AbortSignal): Promise<StoredChunk | 'stale-socket'> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      if (source.failure) {
        reject(source.failure);
        return;
      }
      const headers: Record<string, string> = {
        ...auth,
        expect: '100-continue',
        trailer: H_CHECKSUM,
        'content-type': 'application/octet-stream',
        [H_SIZE]: String(meta.size),
        [H_ALGORITHM]: this.algorithm,
        [H_FILE]: encodeURIComponent(meta.file),
        [H_INDEX]: String(meta.index),
        [H_OFFSET]: String(meta.offset),
        ...(meta.sourceEtag !== undefined ? { [H_SOURCE_ETAG]: encodeURIComponent(meta.sourceEtag) } : {}),
        ...(meta.replace ? { [H_REPLACE]: 'true' } : {}),
      };
      const req = this.transport.request({ ...this.urlFor(chunkPath(meta.id)), method: 'PUT', agent: this.agent, headers });
      let settled = false;
      let bodyStarted = false;
      let response: IncomingMessage | undefined;
      let stage = 'waiting for the node to accept the upload';
      let timer: NodeJS.Timeout | undefined;
      // The stall timer runs only while the node holds things up: before it accepts, while its socket is full,
      // while it checks the last bytes and while it sends its answer. A slow source never counts against the node.
      const arm = (what: string): void => {
        stage = what;
        clearTimeout(timer);
        timer = setTimeout(() => {
          const stall = new StallError(`no progress for ${this.timeoutMs} ms ${stage}`);
          req.destroy(stall);
          response?.destroy(stall);
        }, this.timeoutMs);
      };
      const disarm = (): void => clearTimeout(timer);
      const onAbort = (): void => void req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (outcome: { ok: StoredChunk | 'stale-socket' } | { error: unknown }): void => {
        if (settled) return;
        settled = true;
        disarm();
        signal?.removeEventListener('abort', onAbort);
        data.off('data', onData);
        data.off('end', onEnd);
        if ('ok' in outcome) resolve(outcome.ok);
        else {
          if (!req.destroyed) req.destroy();
          reject(outcome.error);
        }
      };

      const onData = (chunk: Buffer): void => {
        if (!req.write(chunk)) {
          data.pause();
          arm(`sending ${shown(meta.id)} (the node stopped reading)`);
        }
      };
      const onEnd = (): void => {
        checksum.then(
          (digest) => {
            if (settled) return;
            if (digest.algorithm !== this.algorithm) {
              finish({ error: new NodeError(this.id, 'checksum_mismatch', `node ${this.id}: chunk ${shown(meta.id)} was hashed with ${digest.algorithm}, the upload declared ${this.algorithm}`) });
              return;
            }
            req.addTrailers({ [H_CHECKSUM]: digest.hex });
            req.end();
            arm(`waiting for ${shown(meta.id)} to be confirmed`);
          },
          (error: unknown) => finish({ error: new SourceFailure(error) }),
        );
      };
      source.onFailure((failure) => finish({ error: failure }));
      req.on('drain', () => {
        if (settled) return;
        disarm();
        data.resume();
      });
      req.once('continue', () => {
        if (settled) return;
        disarm();
        bodyStarted = true;
        data.on('data', onData);
        data.once('end', onEnd);
        if (data.readableEnded) onEnd();
        else data.resume();
      });
      req.once('response', (res) => {
        response = res;
        arm(`sending its answer to the upload of ${shown(meta.id)}`);
        // An answer before the body is complete is a refusal: stop sending.
        data.off('data', onData);
        readBody(res).then(
          (body) => {
            const status = res.statusCode ?? 0;
            if (status === 200 || status === 201) {
              const result = parseJson<AgentPutResult>(body);
              if (!result?.chunk || result.chunk.id !== meta.id) finish({ error: new NodeError(this.id, 'io', `node ${this.id}: malformed answer to the upload of ${shown(meta.id)}`) });
              else finish({ ok: this.stored(result.chunk) });
            } else finish({ error: this.httpError(status, body, `storing ${shown(meta.id)}`) });
          },
          (error: unknown) => finish({ error: this.transportError(error, `storing ${shown(meta.id)}`) }),
        );
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (settled) return;
        if (signal?.aborted) finish({ error: signal.reason });
        else if (!bodyStarted && req.reusedSocket && STALE_SOCKET_CODES.has(error.code ?? '')) finish({ ok: 'stale-socket' });
        else finish({ error: this.transportError(error, `storing ${shown(meta.id)}`) });
      });
      // Waiting for a free socket in this node's pool is not the node's fault: the clock starts with the socket.
      req.once('socket', () => {
        if (!settled) arm(stage);
      });
      req.flushHeaders();
    });
  }

  private transportError(error: unknown, what: string): NodeError {
    if (error instanceof NodeError) return error;
    const where = `node ${this.id} (${this.location})`;
    if (error instanceof StallError) return new NodeError(this.id, 'timeout', `${where}: ${what}: ${error.message}; the node is too slow or stalled`, { cause: error });
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'ECONNREFUSED') return new NodeError(this.id, 'unreachable', `${where} refused the connection while ${what}: is the agent running on that port?`, { cause: error });
    if (UNREACHABLE_CODES.has(code)) return new NodeError(this.id, 'unreachable', `${where}: connection lost while ${what} (${code})`, { cause: error });
    if (code === 'ETIMEDOUT') return new NodeError(this.id, 'timeout', `${where}: ${what}: connection timed out`, { cause: error });
    return new NodeError(this.id, 'unreachable', `${where}: ${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  private httpError(status: number, body: Buffer, what: string): NodeError {
    const where = `node ${this.id} (${this.location})`;
    const answer = parseJson<AgentErrorBody>(body)?.error;
    const detail = answer?.message ?? (body.toString('utf8', 0, Math.min(body.length, 300)).trim() || 'no details');
    let code: NodeErrorCode;
    let fix = '';
    if (status === 401 || status === 403) {
      code = 'unauthorized';
      fix = this.tokenEnv
        ? ` Fix: set ${this.tokenEnv} to the token the agent was started with.`
        : ' Fix: the agent requires a token; set token_env for this node in the config and export that variable.';
    } else if (status === 507) code = 'full';
    else if (status === 409) code = 'conflict';
    else if (status === 404) code = 'not_found';
    else if (CHUNK_REFUSAL_STATUSES.has(status) && answer !== undefined && CHUNK_REFUSAL_CODES.has(answer.code)) code = 'refused';
    else if (status === 422 || answer?.code === 'checksum_mismatch' || answer?.code === 'size_mismatch') code = 'checksum_mismatch';
    else if (status === 408) code = 'timeout';
    else if (status === 503 || status === 502 || status === 504) code = 'unreachable';
    else code = 'io';
    return new NodeError(this.id, code, `${where} refused ${what} (HTTP ${status}): ${detail}.${fix}`);
  }
}

async function readBody(res: IncomingMessage, limit = MAX_RESPONSE_BYTES): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of res as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > limit) {
      res.destroy();
      throw new Error(`answer longer than ${limit} bytes`);
    }
    parts.push(part);
  }
  return Buffer.concat(parts);
}

/** A chunk id as messages show it: ids may run to 16 KiB, a message should not. */
function shown(chunkId: string): string {
  const chars = [...chunkId];
  return chars.length <= SHOWN_ID_CHARS ? chunkId : `${chars.slice(0, SHOWN_ID_CHARS).join('')}… (${chars.length} characters)`;
}

function parseJson<T>(body: Buffer): T | undefined {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
