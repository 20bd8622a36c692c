// Runtime checks for every renderer → host payload. Pure and small: a payload either matches its channel's
// request type exactly (no unknown keys, bounded strings) or is refused with a message naming the field.
import { checkKit } from '../checks.ts';
import type { Check } from '../checks.ts';
import { CLOUDS } from '../config/types.ts';
import type { CloudName, NodeConfig } from '../config/types.ts';
import { FIND_FILES_MAX_KEYS, isRequestChannel, MANIFEST_PAGE_MAX_ROWS } from './contract.ts';
import type { Req, RequestChannel } from './contract.ts';

export type { Check } from '../checks.ts';

export class ValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValidationError';
  }
}

const MAX_TEXT = 1024 * 1024; // a config file
const MAX_STRING = 4096; // paths, ids, patterns
const MAX_LIST = 10_000; // chunk ids or files of one repair (a whole-run repair sends neither)

const { str, oneOf, list: listOf, nullable, object, req, opt } = checkKit((message) => new ValidationError(message), { maxString: MAX_STRING });
const list = <T>(check: Check<T>, max: number): Check<T[]> => listOf(check, { max });

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

/** A whole number from `min` to `max`, refused with the value it got. */
const wholeNumber = (min: number, max: number, what: string): Check<number> => (v, p) => {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max) return v;
  const got = typeof v === 'number' ? String(v) : v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
  throw new ValidationError(`${p}: expected ${what}, a whole number from ${min.toLocaleString('en-US')} to ${max.toLocaleString('en-US')}, got ${got}`);
};
const rowIndex = wholeNumber(0, Number.MAX_SAFE_INTEGER, 'a row number');
const pageRows = wholeNumber(1, MANIFEST_PAGE_MAX_ROWS, 'how many rows');
const keysWanted = wholeNumber(1, FIND_FILES_MAX_KEYS, 'how many keys');

export const requestValidators: { [C in RequestChannel]: Check<Req<C>> } = {
  loadConfig: empty,
  saveConfig: object({ text: req(str({ max: MAX_TEXT })), baseRevision: opt(str({ min: 1, max: 64, pattern: /^[0-9a-f]+$/, what: 'a revision (hex)' })) }),
  detectCloud: object({ override: opt(nullable(cloud)) }),
  probeNodes: empty,
  pullWorkers: empty,
  upsertNode: object({ node: req(nodeConfig), originalId: opt(nodeId) }),
  removeNode: object({ id: req(nodeId) }),
  startIngest: object({ pattern: opt(str({ max: 1024 })), resume: opt(runId) }),
  cancelIngest: empty,
  ingestSnapshot: empty,
  listResumable: empty,
  listManifests: empty,
  openManifest: object({ path: req(path) }),
  manifestChunks: object({ path: req(path), nodeId: req(nodeId), start: req(rowIndex), count: req(pageRows) }),
  locateChunk: object({ path: req(path), nodeId: req(nodeId), chunkId: req(str({ min: 1 })) }),
  findFiles: object({ path: req(path), query: req(str({ max: 1024 })), limit: req(keysWanted) }),
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
