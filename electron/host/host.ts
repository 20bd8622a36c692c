// The engine host that Electron main and `npm run serve` share. It validates every request with the contract's
// validators, forwards it to the engine on a worker thread, and relays the worker's (already batched) events.
//
// Why a worker_threads Worker and not Electron's utilityProcess: the same host must run in Electron main and in
// plain Node (serve mode, tests), and utilityProcess exists only inside Electron. A worker keeps the engine's
// event loop (listing, streaming, placement, progress folding) off the thread that drives windows and sockets;
// the engine's own hashing pool adds further threads for the CPU-heavy part.
import { Worker } from 'node:worker_threads';
import type { ApiErrorData, Envelope, EventChannel, Events } from '../../shared/ipc/contract.ts';
import { ValidationError, validateRequest } from '../../shared/ipc/validators.ts';
import { isRequestChannel } from '../../shared/ipc/contract.ts';
import type { FromWorker, ToWorker, WorkerInit } from './messages.ts';
import { ENGINE_YOUNG_GENERATION_MB } from '../engine/index.ts';

export type HostListener = <E extends EventChannel>(event: E, payload: Events[E]) => void;

export interface EngineHost {
  /** Validates and runs one request. Never throws: failures come back as `{ ok: false, error }`. */
  call(channel: unknown, payload: unknown): Promise<Envelope<unknown>>;
  subscribe(listener: HostListener): () => void;
  close(): Promise<void>;
}

export interface HostOptions {
  configPath: string;
  batchMs?: number;
  /** Worker entry; defaults to engine-worker.ts next to this file (or engine-worker.mjs when bundled). */
  workerUrl?: URL;
  /**
   * Electron: shows a folder dialog and resolves to the folder chosen (null when cancelled). Serve mode has none,
   * so reassembled files can go only under the project folder there.
   */
  pickFolder?: () => Promise<string | null>;
  /** How many files and chunks of a manifest openManifest sends at most (tests make it small). */
  previewEntries?: number;
}

/** The environment variable that sets `previewEntries` in serve mode and Electron (the end-to-end tests make it small). */
export const PREVIEW_ENTRIES_ENV = 'CLOUD_INGEST_PREVIEW_ENTRIES';

/** `previewEntries` from the environment: unset gives undefined (the default); anything but a whole number from 1 is refused. */
export function previewEntriesFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const given = env[PREVIEW_ENTRIES_ENV];
  if (given === undefined || given === '') return undefined;
  const entries = Number(given);
  if (!/^\d+$/.test(given) || !Number.isSafeInteger(entries) || entries < 1) {
    throw new Error(`${PREVIEW_ENTRIES_ENV}=${given} is not a whole number of at least 1. Fix: unset it (20,000 files and chunks) or give a count.`);
  }
  return entries;
}

/** Checks a request against the contract; the refusal is data the renderer can show. */
export function checkRequest(channel: unknown, payload: unknown): { ok: true; payload: unknown } | { ok: false; error: ApiErrorData } {
  if (!isRequestChannel(channel)) {
    return { ok: false, error: { code: 'unknown_channel', message: `Unknown channel ${JSON.stringify(String(channel)).slice(0, 80)}.` } };
  }
  try {
    return { ok: true, payload: validateRequest(channel, payload) };
  } catch (error) {
    if (error instanceof ValidationError) return { ok: false, error: { code: 'invalid_request', message: `Refused: ${error.message}.` } };
    throw error;
  }
}

function defaultWorkerUrl(): URL {
  const bundled = !import.meta.url.endsWith('.ts');
  return new URL(bundled ? './engine-worker.mjs' : './engine-worker.ts', import.meta.url);
}

export function createHost(options: HostOptions): EngineHost {
  const init: WorkerInit = {
    configPath: options.configPath,
    ...(options.batchMs !== undefined ? { batchMs: options.batchMs } : {}),
    ...(options.previewEntries !== undefined ? { previewEntries: options.previewEntries } : {}),
    canPickFolder: options.pickFolder !== undefined,
    mode: options.pickFolder !== undefined ? 'electron' : 'serve',
  };
  // The engine's young generation whether or not a hashing pool has cleared the flag that sets it (heap-growth.ts).
  const worker = new Worker(options.workerUrl ?? defaultWorkerUrl(), { workerData: init, resourceLimits: { maxYoungGenerationSizeMb: ENGINE_YOUNG_GENERATION_MB } });
  const pending = new Map<number, (e: Envelope<unknown>) => void>();
  const listeners = new Set<HostListener>();
  let nextId = 1;
  let dead: string | undefined;
  let closed: (() => void) | undefined;

  const failAll = (message: string): void => {
    dead = message;
    for (const resolve of pending.values()) resolve({ ok: false, error: { code: 'failed', message } });
    pending.clear();
  };

  worker.on('message', (message: FromWorker) => {
    if (message.type === 'result') {
      pending.get(message.id)?.(message.envelope);
      pending.delete(message.id);
    } else if (message.type === 'event') {
      for (const listener of listeners) listener(message.event, message.payload as never);
    } else if (message.type === 'closed') {
      closed?.();
    }
  });
  worker.on('error', (error) => failAll(`The engine stopped: ${error.message}. Fix: restart the app; details are in its log.`));
  worker.on('exit', (code) => {
    failAll(`The engine exited (code ${code}). Fix: restart the app.`);
    closed?.();
  });

  const post = (message: ToWorker & { id: number }): Promise<Envelope<unknown>> =>
    new Promise((resolve) => {
      pending.set(message.id, resolve);
      worker.postMessage(message);
    });

  /** The folder dialog runs here, on the host's thread (Electron main); the worker only learns the folder chosen. */
  const pickOutputFolder = async (): Promise<Envelope<unknown>> => {
    if (!options.pickFolder) {
      return { ok: false, error: { code: 'forbidden', message: 'This app runs in a browser (npm run serve), which has no folder dialog. Fix: write under the project folder, or use the desktop app to choose another folder.' } };
    }
    const dir = await options.pickFolder();
    if (dir === null) return { ok: true, value: { path: null } };
    const allowed = await post({ type: 'allow-output-dir', id: nextId++, dir });
    return allowed.ok ? { ok: true, value: { path: dir } } : allowed;
  };

  return {
    async call(channel, payload) {
      const checked = checkRequest(channel, payload);
      if (!checked.ok) return { ok: false, error: checked.error };
      if (!isRequestChannel(channel)) throw new Error('unreachable');
      if (dead) return { ok: false, error: { code: 'failed', message: dead } };
      if (channel === 'pickOutputFolder') return pickOutputFolder();
      return post({ type: 'call', id: nextId++, channel, payload: checked.payload });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (dead) return;
      const done = new Promise<void>((resolve) => {
        closed = resolve;
      });
      worker.postMessage({ type: 'close' } satisfies ToWorker);
      await Promise.race([done, new Promise((r) => setTimeout(r, 5000).unref())]);
      await worker.terminate();
    },
  };
}
