// `cloud-ingest agent`: runs a node agent that stores chunks sent by ingest runs on other machines.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkWorkerFlags, isLoopback, jsonLogger, startAgent, startAgentWorker, WORKER_FLAGS, WORKER_USAGE } from '../engine/serving.ts';

export const DEFAULT_TOKEN_ENV = 'CLOUD_INGEST_AGENT_TOKEN';

const USAGE = `usage: cloud-ingest agent --port P --dir D [options]

Runs a node agent: an HTTP server that receives, verifies and keeps chunks under D.

  --port P              TCP port (0 picks a free one; the URL is printed)
  --dir D               folder the chunks are kept in (created if missing)
  --host H              interface to bind (default 127.0.0.1). Beyond loopback (e.g. 0.0.0.0) the agent
                        serves HTTPS only, unless --insecure
  --tls-cert FILE       serve HTTPS with this certificate chain (PEM); needs --tls-key
  --tls-key FILE        the certificate's private key (PEM)
  --insecure            allow plain HTTP beyond loopback (the token and chunks travel in clear text)
  --token-env NAME      environment variable holding the bearer token (default ${DEFAULT_TOKEN_ENV})
  --max-bytes N         quota for stored chunks, e.g. 500G, 2TiB, 1073741824; past it uploads get 507
  --max-chunk-bytes N   largest chunk accepted (default 1GiB)
  --request-timeout-ms  longest one request may take (default 600000)
  --idle-timeout-ms     close a connection silent for this long (default 60000)
  --upload-idle-timeout-ms  end an upload whose body brings no byte for this long, with 408 (default 30000)
  --max-connections N   connections served at once; past it requests get 503 busy (default 256)
  --grace-ms            on SIGTERM, how long uploads in progress may take to finish (default 10000)
  --fsync               flush chunk data to disk before acknowledging it
  --insecure-no-auth    accept requests without a token (throwaway local setups only)

${WORKER_USAGE}

Logs are JSON lines on stderr. SIGTERM/SIGINT stop the agent gracefully.`;

export async function runAgentCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        dir: { type: 'string' },
        host: { type: 'string' },
        'token-env': { type: 'string' },
        'max-bytes': { type: 'string' },
        'max-chunk-bytes': { type: 'string' },
        'request-timeout-ms': { type: 'string' },
        'idle-timeout-ms': { type: 'string' },
        'upload-idle-timeout-ms': { type: 'string' },
        'max-connections': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        insecure: { type: 'boolean' },
        'grace-ms': { type: 'string' },
        fsync: { type: 'boolean' },
        'insecure-no-auth': { type: 'boolean' },
        ...WORKER_FLAGS,
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`cloud-ingest agent: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  let port: number;
  let maxBytes: number | undefined;
  let maxChunkBytes: number | undefined;
  let requestTimeoutMs: number | undefined;
  let idleTimeoutMs: number | undefined;
  let uploadIdleTimeoutMs: number | undefined;
  let maxConnections: number | undefined;
  let tls: { cert: Buffer; key: Buffer } | undefined;
  let graceMs = 10_000;
  try {
    if (values.port === undefined) throw new Error('--port is required (0 picks a free port)');
    if (values.dir === undefined) throw new Error('--dir is required: the folder the agent keeps chunks in');
    port = parseInteger(values.port, '--port');
    if (port > 65535) throw new Error(`--port must be 0 to 65535, got ${values.port}`);
    maxBytes = values['max-bytes'] === undefined ? undefined : parseBytes(values['max-bytes'], '--max-bytes');
    maxChunkBytes = values['max-chunk-bytes'] === undefined ? undefined : parseBytes(values['max-chunk-bytes'], '--max-chunk-bytes');
    requestTimeoutMs = values['request-timeout-ms'] === undefined ? undefined : parseInteger(values['request-timeout-ms'], '--request-timeout-ms');
    idleTimeoutMs = values['idle-timeout-ms'] === undefined ? undefined : parseInteger(values['idle-timeout-ms'], '--idle-timeout-ms');
    uploadIdleTimeoutMs = values['upload-idle-timeout-ms'] === undefined ? undefined : parseInteger(values['upload-idle-timeout-ms'], '--upload-idle-timeout-ms');
    maxConnections = values['max-connections'] === undefined ? undefined : parseInteger(values['max-connections'], '--max-connections');
    if (values['grace-ms'] !== undefined) graceMs = parseInteger(values['grace-ms'], '--grace-ms');
    tls = readTls(values['tls-cert'], values['tls-key']);
    const workerProblem = checkWorkerFlags({ ...values, nats: values.nats ?? (values.id !== undefined ? process.env.NATS_URL : undefined) });
    if (workerProblem) throw new Error(workerProblem);
  } catch (error) {
    process.stderr.write(`cloud-ingest agent: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }

  const tokenEnv = values['token-env'] ?? DEFAULT_TOKEN_ENV;
  const token = process.env[tokenEnv];
  const insecure = values['insecure-no-auth'] === true;
  if (!insecure && (token === undefined || token === '')) {
    process.stderr.write(
      `cloud-ingest agent: no token: the environment variable ${tokenEnv} is not set.\n` +
        `Fix: export ${tokenEnv}=$(openssl rand -hex 32) (and give the same value to the ingest machine's token_env variable),\n` +
        '     or pass --insecure-no-auth for a throwaway local setup.\n',
    );
    return 2;
  }
  if (insecure) {
    process.stderr.write('\n*** WARNING: --insecure-no-auth: this agent accepts requests WITHOUT A TOKEN. Anyone who can reach the port can read and write chunks. ***\n\n');
  }

  const host = values.host ?? '127.0.0.1';
  if (values.insecure === true && tls === undefined && !isLoopback(host)) {
    process.stderr.write(`\n*** WARNING: --insecure: plain HTTP on ${host}. The token and the chunks cross the network in clear text. ***\n\n`);
  }
  const dir = resolve(values.dir);
  let agent;
  try {
    agent = await startAgent({
      port,
      dir,
      host,
      ...(insecure ? { insecureNoAuth: true } : { token }),
      maxBytes,
      maxChunkBytes,
      requestTimeoutMs,
      idleTimeoutMs,
      uploadIdleTimeoutMs,
      maxConnections,
      ...(tls ? { tls } : {}),
      insecure: values.insecure === true,
      fsync: values.fsync === true,
      logger: jsonLogger(),
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'EADDRINUSE' ? `port ${port} on ${host} is already in use; pick another --port`
      : code === 'EACCES' || code === 'EPERM' ? `no permission (${code}): ${(error as Error).message}`
      : tls && /key values mismatch|PEM|certificate|private key/i.test((error as Error).message) ? `--tls-cert and --tls-key do not match or are not PEM (${(error as Error).message})`
      : (error as Error).message;
    process.stderr.write(`cloud-ingest agent: cannot start: ${reason}\n`);
    return 2;
  }
  const running = agent;
  process.stdout.write(`cloud-ingest agent listening on ${running.url} (dir ${running.dir}; ${insecure ? 'NO AUTHENTICATION' : `bearer token from $${tokenEnv}`})\n`);
  const natsUrl = values.nats ?? (values.id !== undefined ? process.env.NATS_URL : undefined);
  let worker: Awaited<ReturnType<typeof startAgentWorker>> | undefined;
  if (natsUrl !== undefined && values.id !== undefined) {
    try {
      worker = await startAgentWorker({ ...values, nats: natsUrl, id: values.id }, running, jsonLogger());
    } catch (error) {
      process.stderr.write(`cloud-ingest agent: cannot pull work from ${natsUrl}: ${(error as Error).message}\n`);
      await running.close(0);
      return 2;
    }
    process.stdout.write(`cloud-ingest agent pulling work items for node ${values.id} from ${natsUrl}\n`);
  }

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`cloud-ingest agent: ${signal} again; exiting now\n`);
        process.exit(1);
      }
      stopping = true;
      (worker ? worker.close() : Promise.resolve()).then(() => running.close(graceMs)).then(
        () => resolveExit(0),
        (error: unknown) => {
          process.stderr.write(`cloud-ingest agent: error while stopping: ${(error as Error).message}\n`);
          resolveExit(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

function readTls(certFile: string | undefined, keyFile: string | undefined): { cert: Buffer; key: Buffer } | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw new Error('--tls-cert and --tls-key go together: give both to serve HTTPS');
  const read = (flag: string, file: string): Buffer => {
    try {
      return readFileSync(resolve(file));
    } catch (error) {
      throw new Error(`cannot read ${flag} ${file}: ${(error as Error).message}`, { cause: error });
    }
  };
  return { cert: read('--tls-cert', certFile), key: read('--tls-key', keyFile) };
}

function parseInteger(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`${flag} must be a non-negative integer, got "${text}"`);
  return Number(text);
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 1024 ** 2, g: 1e9, gb: 1e9, gib: 1024 ** 3, t: 1e12, tb: 1e12, tib: 1024 ** 4 };

/** "1073741824", "500G", "2TiB", "1.5GB" → bytes. Single-letter units are decimal (K = 1000), *iB are binary. */
export function parseBytes(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`${flag} must be a byte count like 1073741824, 500G or 2TiB, got "${text}"`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new Error(`${flag} is too large: "${text}"`);
  return bytes;
}
