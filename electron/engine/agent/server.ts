// The node agent: an HTTP server that receives, keeps and serves chunks for one folder.
// One streaming pass per upload: the body goes to a temp file while it is counted and hashed; the sender declares
// the checksum in an HTTP trailer once it has hashed the last byte; the file is renamed into place only if they match.
import { createWriteStream, readFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { isIP } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CHECKSUM_ALGORITHMS } from '../../../shared/config/types.ts';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import { createChunkHash } from '../hash/chunk-hash.ts';
import { MIN_TOKEN_LENGTH, bearerMatches, tokenDigest } from './auth.ts';
import { jsonLogger } from './log.ts';
import type { AgentLogger } from './log.ts';
import {
  CHUNKS_PATH,
  H_ALGORITHM,
  H_CHECKSUM,
  H_FILE,
  H_INDEX,
  H_OFFSET,
  H_REPLACE,
  H_SIZE,
  H_SOURCE_ETAG,
  HEALTH_PATH,
  MAX_HEADER_BYTES,
  MAX_ID_BYTES,
  isHexDigest,
} from './protocol.ts';
import type { AgentChunkMeta, AgentErrorCode, AgentHealth, AgentListPage, AgentPutResult } from './protocol.ts';
import { ChunkRefusedError, ChunkStore } from './store.ts';

export const AGENT_VERSION: string = readVersion();

export interface AgentOptions {
  /** 0 picks a free port; the chosen one is in the returned url. */
  port: number;
  dir: string;
  /** Interface to bind; loopback unless told otherwise. Beyond loopback, `tls` is required unless `insecure`. */
  host?: string;
  /** Certificate chain and private key (PEM) to serve HTTPS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Serve plain HTTP on an interface beyond loopback (the token and the chunks cross the network in clear text). */
  insecure?: boolean;
  /** Bearer token clients must present. Required unless insecureNoAuth. */
  token?: string;
  /** Accept requests without a token (loudly logged). For throwaway local setups only. */
  insecureNoAuth?: boolean;
  /** Quota for stored chunks in bytes; uploads past it are answered 507. */
  maxBytes?: number;
  /** Largest chunk accepted, in bytes (default 1 GiB). */
  maxChunkBytes?: number;
  /** Longest a whole request may take, in ms (default 10 minutes). */
  requestTimeoutMs?: number;
  /** A connection with no traffic for this long is closed, in ms (default 60 s). */
  idleTimeoutMs?: number;
  /** An upload whose body brings no byte for this long is ended with 408 and deleted, in ms (default 30 s). */
  uploadIdleTimeoutMs?: number;
  /** Open connections served at once; requests on connections past it get 503 `busy` (default 256). */
  maxConnections?: number;
  /** fsync chunk data before renaming it into place. */
  fsync?: boolean;
  logger?: AgentLogger;
}

export interface RunningAgent {
  url: string;
  host: string;
  port: number;
  dir: string;
  /**
   * The agent's chunk store, for a pull worker in the same process to write into directly (cluster/sink.ts
   * storeSink): one store, one quota, one index, no second hashing pass over loopback HTTP.
   */
  store: ChunkStore;
  /** Largest chunk the agent accepts, in bytes (--max-chunk-bytes). */
  maxChunkBytes: number;
  /**
   * Stops accepting connections, lets uploads in progress finish for up to `graceMs` (default 10 s), then aborts
   * the rest and deletes their temp files.
   */
  close(graceMs?: number): Promise<void>;
}

const DEFAULT_MAX_CHUNK_BYTES = 1024 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const DEFAULT_UPLOAD_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_CONNECTIONS = 256;
/** Connections past the cap are still accepted, up to this many more, to be told 503; beyond that they are dropped. */
const OVER_CAP_ANSWERED = 256;
const OVER_CAP_SOCKET_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_TIMEOUT_MS = 30_000;
const LIST_LIMIT_MAX = 1000;

class HttpFailure extends Error {
  readonly status: number;
  readonly code: AgentErrorCode;
  constructor(status: number, code: AgentErrorCode, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

interface Upload {
  id: string;
  abort(reason: Error): void;
  done: Promise<void>;
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.logger ?? jsonLogger();
  const host = options.host ?? '127.0.0.1';
  const maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const uploadIdleTimeoutMs = options.uploadIdleTimeoutMs ?? DEFAULT_UPLOAD_IDLE_TIMEOUT_MS;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;

  let expectedDigest: Buffer | undefined;
  if (options.token !== undefined && options.token !== '') {
    if (options.token.length < MIN_TOKEN_LENGTH) {
      throw new Error(`the agent token is ${options.token.length} characters; use at least ${MIN_TOKEN_LENGTH} (e.g. \`openssl rand -hex 32\`)`);
    }
    expectedDigest = tokenDigest(options.token);
  } else if (!options.insecureNoAuth) {
    throw new Error('refusing to start without a token: set one (e.g. `export CLOUD_INGEST_AGENT_TOKEN=$(openssl rand -hex 32)`) or pass --insecure-no-auth for a throwaway local setup');
  } else {
    log.log('warn', 'AUTHENTICATION DISABLED (--insecure-no-auth): anyone who can reach this port can read and write chunks', { host });
  }
  const positive = [
    ['maxChunkBytes', maxChunkBytes],
    ['requestTimeoutMs', requestTimeoutMs],
    ['idleTimeoutMs', idleTimeoutMs],
    ['uploadIdleTimeoutMs', uploadIdleTimeoutMs],
    ['maxConnections', maxConnections],
  ] as const;
  for (const [name, value] of positive) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${value}`);
  }
  if (options.maxBytes !== undefined && (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0)) {
    throw new Error(`maxBytes must be a non-negative integer, got ${options.maxBytes}`);
  }

  if (!options.tls && !isLoopback(host)) {
    if (!options.insecure) {
      throw new Error(
        `refusing to serve plain HTTP on ${host}, which is not loopback: the bearer token and the chunks would cross the network in clear text. ` +
          'Fix: serve HTTPS with --tls-cert FILE --tls-key FILE, bind --host 127.0.0.1 behind a TLS proxy, or pass --insecure on a network you trust',
      );
    }
    log.log('warn', 'PLAIN HTTP BEYOND LOOPBACK (--insecure): the token and the chunks cross the network in clear text', { host });
  }

  // The store is opened (and its leftovers cleaned) only once the port is ours: an agent that cannot serve leaves
  // its folder as it found it. Requests that arrive in between wait for it.
  const store = new ChunkStore(options.dir, { maxBytes: options.maxBytes, fsync: options.fsync }, log);
  let storeOpened: Promise<void> = new Promise(() => {});

  const startedAt = Date.now();
  const inFlight = new Set<Upload>();
  let draining = false;
  let openConnections = 0;
  const overCap = new WeakSet<Socket>();

  // ---- responses -------------------------------------------------------------------------------------------
  function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      ...(draining ? { connection: 'close' } : {}),
      ...headers,
    });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  }

  function sendError(res: ServerResponse, failure: HttpFailure, opts: { closeConnection?: boolean; retryAfterSeconds?: number } = {}): void {
    const headers: Record<string, string> = {};
    if (opts.closeConnection) headers.connection = 'close';
    if (opts.retryAfterSeconds !== undefined) headers['retry-after'] = String(opts.retryAfterSeconds);
    if (failure.status === 401) headers['www-authenticate'] = 'Bearer realm="cloud-ingest-agent"';
    sendJson(res, failure.status, { error: { code: failure.code, message: failure.message } }, headers);
  }

  // ---- routes ----------------------------------------------------------------------------------------------
  async function health(res: ServerResponse): Promise<void> {
    const space = await store.space();
    const body: AgentHealth = {
      status: draining ? 'draining' : space.full ? 'full' : 'ok',
      version: AGENT_VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      freeBytes: space.freeBytes,
      diskFreeBytes: space.diskFreeBytes,
      maxBytes: store.maxBytes ?? null,
      maxChunkBytes,
      chunkCount: store.chunkCount,
      bytesHeld: store.bytesHeld,
      inFlight: inFlight.size,
    };
    sendJson(res, 200, body, { 'cache-control': 'no-store' });
  }

  function list(res: ServerResponse, query: URLSearchParams): void {
    const limitText = query.get('limit');
    const limit = limitText === null ? LIST_LIMIT_MAX : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) {
      throw new HttpFailure(400, 'bad_request', `limit must be an integer from 1 to ${LIST_LIMIT_MAX}`);
    }
    const body: AgentListPage = store.page(query.get('after') ?? undefined, limit);
    sendJson(res, 200, body);
  }

  function chunkHeaders(meta: AgentChunkMeta): Record<string, string | number> {
    return {
      [H_SIZE]: meta.size,
      [H_ALGORITHM]: meta.checksum.algorithm,
      [H_CHECKSUM]: meta.checksum.hex,
      etag: `"${meta.checksum.algorithm}:${meta.checksum.hex}"`,
    };
  }

  function metaRoute(req: IncomingMessage, res: ServerResponse, id: string): void {
    const meta = store.get(id);
    if (!meta) throw new HttpFailure(404, 'not_found', `no chunk ${JSON.stringify(id)} on this agent`);
    sendJson(res, 200, meta, chunkHeaders(meta));
  }

  async function download(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    // Open before answering, so a data file deleted or truncated behind the agent's back is reported, not half-sent;
    // with the metadata of the very copy opened, so a replace meanwhile never mixes two copies in one answer.
    let opened;
    try {
      opened = await store.openChunk(id);
    } catch (err) {
      log.log('error', 'chunk data missing on disk', { id, error: (err as Error).message });
      throw new HttpFailure(404, 'not_found', `chunk ${JSON.stringify(id)} is listed but its data file is missing on the agent`);
    }
    if (!opened) throw new HttpFailure(404, 'not_found', `no chunk ${JSON.stringify(id)} on this agent`);
    const { meta, handle } = opened;
    try {
      const { size } = await handle.stat();
      if (size !== meta.size) log.log('error', 'chunk data has the wrong size on disk', { id, size, expected: meta.size });
      // The bytes actually held are sent (with their real length): a reader's checksum check then tells it is damaged.
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': size,
        ...chunkHeaders(meta),
        ...(draining ? { connection: 'close' } : {}),
      });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      await pipeline(handle.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 }), res);
    } catch (err) {
      log.log('warn', 'download interrupted', { id, error: (err as Error).message });
      res.destroy();
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async function upload(req: IncomingMessage, res: ServerResponse, id: string, expectsContinue: boolean): Promise<void> {
    const began = performance.now();
    const h = req.headers;
    // Until the body has been read, a refusal also closes the connection: the client may still be sending it.
    let bodyRead = false;
    const refuse = (failure: HttpFailure): void => {
      log.log('warn', 'upload refused', { id, status: failure.status, code: failure.code, error: failure.message });
      sendError(res, failure, { closeConnection: !bodyRead });
    };

    const size = parseCount(h[H_SIZE]);
    if (size === undefined) return refuse(new HttpFailure(400, 'bad_request', `missing or invalid ${H_SIZE} header: the chunk's size in bytes`));
    if (size > maxChunkBytes) return refuse(new HttpFailure(413, 'too_large', `chunk is ${size} bytes; this agent accepts at most ${maxChunkBytes} (--max-chunk-bytes)`));
    const contentLength = h['content-length'];
    if (contentLength !== undefined && Number(contentLength) !== size) {
      return refuse(new HttpFailure(400, 'size_mismatch', `content-length ${contentLength} differs from ${H_SIZE} ${size}`));
    }
    const algorithm = h[H_ALGORITHM];
    if (typeof algorithm !== 'string' || !(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
      return refuse(new HttpFailure(400, 'bad_request', `${H_ALGORITHM} must be one of ${CHECKSUM_ALGORITHMS.join(', ')}`));
    }
    let file: string;
    let sourceEtag: string | undefined;
    try {
      file = decodeHeader(h[H_FILE]) ?? '';
      sourceEtag = decodeHeader(h[H_SOURCE_ETAG]);
    } catch {
      return refuse(new HttpFailure(422, 'invalid_chunk', `${H_FILE} and ${H_SOURCE_ETAG} must be percent-encoded UTF-8`));
    }
    try {
      store.checkId(id);
    } catch (err) {
      if (err instanceof ChunkRefusedError) return refuse(new HttpFailure(422, 'invalid_chunk', err.message));
      throw err;
    }
    const index = h[H_INDEX] === undefined ? 0 : parseCount(h[H_INDEX]);
    const offset = h[H_OFFSET] === undefined ? 0 : parseCount(h[H_OFFSET]);
    if (index === undefined || offset === undefined) return refuse(new HttpFailure(400, 'bad_request', `${H_INDEX} and ${H_OFFSET} must be non-negative integers`));
    const replace = String(h[H_REPLACE] ?? '').toLowerCase() === 'true';
    const headerChecksum = typeof h[H_CHECKSUM] === 'string' ? h[H_CHECKSUM].toLowerCase() : undefined;
    if (headerChecksum !== undefined && !isHexDigest(headerChecksum, algorithm)) {
      return refuse(new HttpFailure(400, 'bad_request', `${H_CHECKSUM} must be a lowercase hex ${algorithm} digest`));
    }

    // When the checksum is known up front, an identical or conflicting copy is answered before any body is sent.
    const existing = store.get(id);
    if (existing && headerChecksum !== undefined) {
      if (!replace && existing.checksum.algorithm === algorithm && existing.checksum.hex === headerChecksum && existing.size === size) {
        const result: AgentPutResult = { status: 'exists', chunk: existing };
        sendJson(res, 200, result, { connection: 'close' });
        return;
      }
      const redefined = existing.sourceEtag !== sourceEtag || existing.offset !== offset || existing.size !== size;
      if (!replace && !redefined) return refuse(conflict(id, existing));
    }
    // Nothing is set aside for the declared size: the quota is charged as bytes arrive (a slow upload holds only
    // what it has sent), and an upload that runs past it is refused then.
    if (!(await store.admits(size))) {
      const space = await store.space();
      return refuse(new HttpFailure(507, 'insufficient_storage', `no room for a ${size}-byte chunk: ${space.freeBytes} bytes free${store.maxBytes !== undefined ? ` under the ${store.maxBytes}-byte quota (--max-bytes)` : ' on disk'}`));
    }

    let tempFile: string;
    try {
      tempFile = await store.tempPath(id);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
      store.noteRefused(size);
      return refuse(new HttpFailure(507, 'insufficient_storage', `the disk is full (${code}); nothing kept`));
    }
    let releaseDone: () => void = () => {};
    const entry: Upload = { id, abort: (reason) => req.destroy(reason), done: new Promise((resolve) => (releaseDone = resolve)) };
    inFlight.add(entry);
    let charged = 0;
    let idle: NodeJS.Timeout | undefined;
    try {
      if (expectsContinue) res.writeContinue();
      const hash = createChunkHash(algorithm as ChecksumAlgorithm);
      let received = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          idle?.refresh();
          received += chunk.length;
          if (received > size) {
            callback(new HttpFailure(413, 'too_large', `body is longer than the declared ${H_SIZE} of ${size} bytes`));
            return;
          }
          if (!store.charge(chunk.length)) {
            store.noteRefused(size);
            callback(new HttpFailure(507, 'insufficient_storage', `the ${store.maxBytes}-byte quota (--max-bytes) filled up while this chunk arrived (${received} of ${size} bytes); nothing kept`));
            return;
          }
          charged += chunk.length;
          hash.update(chunk);
          callback(null, chunk);
        },
      });
      idle = setTimeout(() => meter.destroy(new HttpFailure(408, 'timeout', `no bytes for ${uploadIdleTimeoutMs} ms (--upload-idle-timeout-ms): ${received} of ${size} received; nothing kept`)), uploadIdleTimeoutMs);
      try {
        await pipeline(req, meter, createWriteStream(tempFile, { flags: 'wx', flush: store.fsync }));
      } catch (err) {
        await unlink(tempFile).catch(() => {});
        if (err instanceof HttpFailure) return refuse(err);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOSPC' || code === 'EDQUOT') {
          store.noteRefused(size);
          return refuse(new HttpFailure(507, 'insufficient_storage', `the disk is full (${code})`));
        }
        log.log('warn', 'upload aborted; nothing kept', { id, received, error: (err as Error).message });
        res.destroy();
        return;
      } finally {
        clearTimeout(idle);
      }
      bodyRead = true;
      if (received !== size) {
        await unlink(tempFile).catch(() => {});
        return refuse(new HttpFailure(400, 'size_mismatch', `received ${received} bytes, ${H_SIZE} declared ${size}; nothing kept`));
      }
      const trailer = req.trailers[H_CHECKSUM];
      const declared = (typeof trailer === 'string' ? trailer : headerChecksum)?.trim().toLowerCase();
      const actual = hash.digest('hex');
      if (declared === undefined || declared === '') {
        await unlink(tempFile).catch(() => {});
        return refuse(new HttpFailure(400, 'bad_request', `no checksum declared: send the ${algorithm} hex digest in the ${H_CHECKSUM} trailer (or header); nothing kept`));
      }
      if (declared !== actual) {
        await unlink(tempFile).catch(() => {});
        return refuse(new HttpFailure(422, 'checksum_mismatch', `the ${size} bytes received hash to ${algorithm} ${actual}, the sender declared ${declared}; nothing kept`));
      }
      const meta: AgentChunkMeta = {
        id,
        file,
        index,
        offset,
        size,
        checksum: { algorithm: algorithm as ChecksumAlgorithm, hex: actual },
        ...(sourceEtag !== undefined ? { sourceEtag } : {}),
        storedAt: new Date().toISOString(),
      };
      let outcome;
      try {
        outcome = await store.commit(meta, tempFile, replace);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (err instanceof ChunkRefusedError) return refuse(new HttpFailure(422, 'invalid_chunk', `${err.message}; nothing kept`));
        if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
        store.noteRefused(size);
        return refuse(new HttpFailure(507, 'insufficient_storage', `the disk is full (${code}) while storing the chunk's metadata; nothing kept`));
      }
      if (outcome.status === 'conflict') return refuse(conflict(id, outcome.existing));
      log.log('info', 'chunk stored', { id, status: outcome.status, bytes: size, ms: Math.round(performance.now() - began) });
      const result: AgentPutResult = { status: outcome.status, chunk: outcome.chunk };
      sendJson(res, outcome.status === 'created' ? 201 : 200, result);
    } finally {
      clearTimeout(idle);
      store.uncharge(charged);
      inFlight.delete(entry);
      releaseDone();
    }
  }

  function conflict(id: string, existing: AgentChunkMeta): HttpFailure {
    return new HttpFailure(
      409,
      'conflict',
      `chunk ${JSON.stringify(id)} is already stored with ${existing.checksum.algorithm} ${existing.checksum.hex}; the upload has the same source version (${H_SOURCE_ETAG}) and range but different bytes; send ${H_REPLACE}: true to overwrite it`,
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
    const method = req.method ?? 'GET';
    const isPut = method === 'PUT';
    try {
      if (overCap.has(req.socket)) {
        throw new HttpFailure(503, 'busy', `the agent already serves ${maxConnections} connections (--max-connections); try again shortly`);
      }
      await storeOpened;
      if (draining) throw new HttpFailure(503, 'shutting_down', 'the agent is shutting down; try another node');
      if (expectedDigest && !bearerMatches(req.headers.authorization, expectedDigest)) {
        throw new HttpFailure(401, 'unauthorized', 'missing or wrong bearer token');
      }
      if (expectsContinue && !isPut) res.writeContinue();
      if (path === HEALTH_PATH) {
        if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'GET, HEAD');
        return await health(res);
      }
      if (path === CHUNKS_PATH) {
        if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'GET, HEAD');
        return list(res, query);
      }
      if (path.startsWith(`${CHUNKS_PATH}/`)) {
        const parts = path.slice(CHUNKS_PATH.length + 1).split('/');
        const id = parseId(parts[0] ?? '');
        if (parts.length === 2 && parts[1] === 'meta') {
          if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'GET, HEAD');
          return metaRoute(req, res, id);
        }
        if (parts.length === 1) {
          if (isPut) return await upload(req, res, id, expectsContinue);
          if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'GET, HEAD, PUT');
          return await download(req, res, id);
        }
      }
      throw new HttpFailure(404, 'not_found', `no such endpoint: ${method} ${path}`);
    } catch (err) {
      if (err instanceof HttpFailure) {
        if (err.status !== 404) log.log('warn', 'request refused', { method, path: path.slice(0, 200), status: err.status, code: err.code, error: err.message });
        // A refused upload's body is never read: close the connection rather than drain it.
        sendError(res, err, { closeConnection: isPut || err.status === 503, ...(err.code === 'busy' ? { retryAfterSeconds: 1 } : {}) });
        return;
      }
      log.log('error', 'request failed', { method, path: path.slice(0, 200), error: (err as Error).stack ?? String(err) });
      sendError(res, new HttpFailure(500, 'internal', 'internal error; see the agent log'), { closeConnection: true });
    }
  }

  // ---- server ----------------------------------------------------------------------------------------------
  const headersTimeoutMs = Math.min(60_000, requestTimeoutMs);
  const serverOptions: ServerOptions = {
    requestTimeout: requestTimeoutMs,
    headersTimeout: headersTimeoutMs,
    // Node checks both timeouts this often (30 s by default): a shorter --request-timeout-ms is kept to within half of itself.
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headersTimeoutMs / 2))),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    maxHeaderSize: MAX_HEADER_BYTES,
  };
  const server = options.tls ? createTlsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }) : createServer(serverOptions);
  server.timeout = idleTimeoutMs;
  server.maxConnections = maxConnections + OVER_CAP_ANSWERED;
  // Responses begun on each connection and not yet handed to it in full (pipelined requests queue theirs).
  const responding = new WeakMap<object, Set<ServerResponse>>();
  function track(req: IncomingMessage, res: ServerResponse): void {
    let begun = responding.get(req.socket);
    if (!begun) responding.set(req.socket, (begun = new Set()));
    const set = begun;
    const done = (): void => void set.delete(res);
    set.add(res);
    res.once('finish', done).once('close', done);
  }
  server.on('request', (req, res) => {
    track(req, res);
    void handle(req, res, false);
  });
  server.on('checkContinue', (req, res) => {
    track(req, res);
    void handle(req, res, true);
  });
  // Counted on the socket requests arrive on (after the TLS handshake for HTTPS).
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    openConnections++;
    socket.once('close', () => openConnections--);
    if (openConnections <= maxConnections) return;
    overCap.add(socket);
    socket.setTimeout(OVER_CAP_SOCKET_TIMEOUT_MS, () => socket.destroy());
  });
  server.on('clientError', (err, socket) => {
    const code = (err as NodeJS.ErrnoException).code;
    log.log('warn', 'client error', { error: err.message, code });
    if (!socket.writable || socket.destroyed) return void socket.destroy();
    // A response already under way on this connection (a download half sent, say): an answer written now would land
    // inside its body. The connection is spoiled; close it.
    if ([...(responding.get(socket) ?? [])].some((res) => res.headersSent)) return void socket.destroy();
    // Headers past the limit can only be an id, file name or source version too long to keep: this chunk's problem.
    const [status, body] =
      code === 'HPE_HEADER_OVERFLOW'
        ? ['431 Request Header Fields Too Large', { error: { code: 'invalid_chunk', message: `request headers over ${MAX_HEADER_BYTES} bytes: the chunk id, file name or source version is too long to keep` } }]
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['408 Request Timeout', { error: { code: 'timeout', message: `the request did not arrive in time (its headers within ${headersTimeoutMs} ms, all of it within ${requestTimeoutMs} ms: --request-timeout-ms); nothing kept` } }]
          : ['400 Bad Request', { error: { code: 'bad_request', message: `malformed HTTP request (${code ?? err.message})` } }];
    const text = JSON.stringify(body);
    socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  storeOpened = store.open();
  try {
    await storeOpened;
  } catch (err) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const url = `${options.tls ? 'https' : 'http'}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log.log('info', 'agent listening', {
    url,
    version: AGENT_VERSION,
    auth: expectedDigest ? 'bearer' : 'none',
    maxBytes: options.maxBytes ?? null,
    maxChunkBytes,
    maxConnections,
    tls: options.tls !== undefined,
    chunks: store.chunkCount,
    bytesHeld: store.bytesHeld,
  });

  let closing: Promise<void> | undefined;
  async function close(graceMs = 10_000): Promise<void> {
    draining = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const pending = [...inFlight];
    log.log('info', 'agent stopping', { inFlight: pending.length, graceMs });
    if (pending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
      const outcome = await Promise.race([Promise.all(pending.map((u) => u.done)).then(() => 'done' as const), grace]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        const left = [...inFlight];
        log.log('warn', 'aborting uploads still running after the grace period; their temp files are deleted', { count: left.length, ids: left.map((u) => u.id).join(',').slice(0, 500) });
        for (const u of left) u.abort(new Error('agent shutting down'));
        await Promise.all(left.map((u) => u.done));
      }
    }
    server.closeAllConnections();
    await closed;
    await store.close();
    log.log('info', 'agent stopped', {});
  }

  return {
    url,
    host: address.address,
    port: address.port,
    dir: store.dir,
    store,
    maxChunkBytes,
    close: (graceMs?: number) => (closing ??= close(graceMs)),
  };
}

function notAllowed(method: string, allowed: string): HttpFailure {
  return new HttpFailure(405, 'method_not_allowed', `${method} is not allowed here; use ${allowed}`);
}

/** Any id the engine can produce is accepted, control characters included; only what cannot be kept is refused. */
function parseId(encoded: string): string {
  let id: string;
  try {
    id = decodeURIComponent(encoded);
  } catch {
    throw new HttpFailure(422, 'invalid_chunk', 'chunk id is not valid percent-encoded UTF-8');
  }
  if (id === '') throw new HttpFailure(400, 'bad_request', 'no chunk id in the path');
  const bytes = Buffer.byteLength(id);
  if (bytes > MAX_ID_BYTES) throw new HttpFailure(422, 'invalid_chunk', `chunk id is ${bytes} bytes; this agent keeps ids of up to ${MAX_ID_BYTES} bytes`);
  return id;
}

/** 127.0.0.0/8, ::1 (also as an IPv4-mapped address) and `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function parseCount(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

function decodeHeader(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  return decodeURIComponent(value);
}

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
