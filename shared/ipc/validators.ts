// Runtime checks for every renderer → host payload. Pure and small: a payload either matches its channel's
// request type exactly (no unknown keys, bounded strings) or is refused with a message naming the field.
import { CLOUDS } from '../config/types.ts';
import type { CloudName, NodeConfig } from '../config/types.ts';
import { isRequestChannel } from './contract.ts';
import type { Req, RequestChannel } from './contract.ts';

export type Check<T> = (value: unknown, path: string) => T;

export class ValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValidationError';
  }
}

const MAX_TEXT = 1024 * 1024; // a config file
const MAX_STRING = 4096; // paths, ids, patterns
const MAX_LIST = 10_000; // chunk ids or files of one repair (a whole-run repair sends neither)

function fail(path: string, expected: string, value: unknown): never {
  const got = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
  throw new ValidationError(`${path}: expected ${expected}, got ${got}`);
}

function str(opts: { max?: number; min?: number; pattern?: RegExp; what?: string } = {}): Check<string> {
  const max = opts.max ?? MAX_STRING;
  const min = opts.min ?? 0;
  return (v, path) => {
    if (typeof v !== 'string') fail(path, opts.what ?? 'a string', v);
    if (v.length < min) throw new ValidationError(`${path}: must not be empty`);
    if (v.length > max) throw new ValidationError(`${path}: longer than ${max} characters`);
    if (v.includes('\0')) throw new ValidationError(`${path}: contains a NUL character`);
    if (opts.pattern && !opts.pattern.test(v)) fail(path, opts.what ?? `a string matching ${opts.pattern}`, v);
    return v;
  };
}

function oneOf<T extends string>(values: readonly T[]): Check<T> {
  return (v, path) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      throw new ValidationError(`${path}: expected one of ${values.join(', ')}`);
    }
    return v as T;
  };
}

/** An array of at most `max` items, each checked. */
function list<T>(check: Check<T>, max: number): Check<T[]> {
  return (v, path) => {
    if (!Array.isArray(v)) fail(path, 'an array', v);
    if (v.length > max) throw new ValidationError(`${path}: more than ${max} items`);
    return v.map((item, i) => check(item, `${path}[${i}]`));
  };
}

function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, path) => (v === null ? null : check(v, path));
}

type Shape = Record<string, { check: Check<unknown>; optional?: boolean }>;
type FromShape<S extends Shape> = { [K in keyof S as S[K]['optional'] extends true ? never : K]: ReturnType<S[K]['check']> } & {
  [K in keyof S as S[K]['optional'] extends true ? K : never]?: ReturnType<S[K]['check']>;
};

function req<T>(check: Check<T>): { check: Check<T> } {
  return { check };
}
function opt<T>(check: Check<T>): { check: Check<T>; optional: true } {
  return { check, optional: true };
}

/** An object with exactly these keys: unknown keys, prototypes other than Object, and missing required keys are refused. */
function object<S extends Shape>(shape: S): Check<FromShape<S>> {
  return (v, path) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'an object', v);
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) fail(path, 'a plain object', v);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(v)) {
      if (!Object.hasOwn(shape, key)) throw new ValidationError(`${path}: unknown field "${key}"`);
    }
    for (const [key, field] of Object.entries(shape)) {
      const value = (v as Record<string, unknown>)[key];
      if (value === undefined) {
        if (!field.optional) throw new ValidationError(`${path}.${key}: required`);
        continue;
      }
      out[key] = field.check(value, `${path}.${key}`);
    }
    return out as FromShape<S>;
  };
}

const nodeId = str({ min: 1, max: 128, pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/, what: 'a node id (letters, digits, ".", "_", "-")' });
/** A run id as the engine makes them (`2025-01-02T03-04-05-678Z-a1b2c3`); no path separators, so it names a journal file and nothing else. */
const runId = str({ min: 1, max: 128, pattern: /^[A-Za-z0-9._-]+$/, what: 'a run id (letters, digits, ".", "_", "-")' });
const cloud: Check<CloudName> = oneOf(CLOUDS);
const path = str({ min: 1 });
const envName = str({ min: 1, max: 256, pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, what: 'an environment variable name' });
const url = str({ min: 1, max: 2048, pattern: /^https?:\/\/[^\s]+$/, what: 'an http(s) URL' });

const nodeConfig: Check<NodeConfig> = (v, p) => {
  const n = object({ id: req(nodeId), cloud: opt(cloud), path: opt(path), url: opt(url), token_env: opt(envName) })(v, p);
  if ((n.path === undefined) === (n.url === undefined)) throw new ValidationError(`${p}: give exactly one of "path" (folder node) or "url" (agent node)`);
  return n;
};

const empty = object({});

export const requestValidators: { [C in RequestChannel]: Check<Req<C>> } = {
  loadConfig: empty,
  saveConfig: object({ text: req(str({ max: MAX_TEXT })), baseRevision: opt(str({ min: 1, max: 64, pattern: /^[0-9a-f]+$/, what: 'a revision (hex)' })) }),
  detectCloud: object({ override: opt(nullable(cloud)) }),
  probeNodes: empty,
  upsertNode: object({ node: req(nodeConfig), originalId: opt(nodeId) }),
  removeNode: object({ id: req(nodeId) }),
  startIngest: object({ pattern: opt(str({ max: 1024 })), resume: opt(runId) }),
  cancelIngest: empty,
  ingestSnapshot: empty,
  listResumable: empty,
  listManifests: empty,
  openManifest: object({ path: req(path) }),
  verify: object({ manifestPath: req(path), nodeId: opt(nodeId) }),
  reassemble: object({ manifestPath: req(path), key: req(str({ min: 1 })), outPath: req(path) }),
  repair: object({ manifestPath: req(path), chunkIds: opt(list(str({ min: 1 }), MAX_LIST)), files: opt(list(str({ min: 1 }), MAX_LIST)) }),
  cancelTask: object({ task: req(oneOf(['verify', 'reassemble', 'repair'] as const)) }),
  appInfo: empty,
  pickOutputFolder: empty,
  listActivity: empty,
  activityDetail: object({ runId: req(runId) }),
};

/** Checks a channel name and its payload. Throws ValidationError naming the problem; returns the typed payload. */
export function validateRequest<C extends RequestChannel>(channel: C, payload: unknown): Req<C>;
export function validateRequest(channel: unknown, payload: unknown): unknown;
export function validateRequest(channel: unknown, payload: unknown): unknown {
  if (!isRequestChannel(channel)) throw new ValidationError(`unknown channel ${JSON.stringify(String(channel)).slice(0, 80)}`);
  const check = requestValidators[channel] as Check<unknown>;
  return check(payload, channel);
}

/** A WebSocket frame from the renderer: `{ id, channel, payload }`. */
export interface RequestFrame {
  id: number;
  channel: string;
  payload: unknown;
}

export function parseRequestFrame(raw: string): RequestFrame {
  if (raw.length > MAX_TEXT + 64 * 1024) throw new ValidationError('message too large');
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    throw new ValidationError('message is not JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ValidationError('message: expected an object');
  const { id, channel, payload } = data as Record<string, unknown>;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw new ValidationError('message.id: expected a non-negative integer');
  if (typeof channel !== 'string') throw new ValidationError('message.channel: expected a string');
  for (const key of Object.keys(data)) {
    if (key !== 'id' && key !== 'channel' && key !== 'payload') throw new ValidationError(`message: unknown field "${key}"`);
  }
  return { id, channel, payload };
}
