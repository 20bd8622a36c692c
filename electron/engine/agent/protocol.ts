// The node agent's wire protocol: paths, header names and error codes shared by the agent (server) and AgentNode (client).
// Documented in docs/agent.md and docs/agent-openapi.yaml.
import type { Checksum } from '../../../shared/types.ts';

export const API_PREFIX = '/v1';
export const CHUNKS_PATH = `${API_PREFIX}/chunks`;
export const HEALTH_PATH = `${API_PREFIX}/health`;

export const H_SIZE = 'x-chunk-size';
export const H_ALGORITHM = 'x-chunk-algorithm';
/** Hex digest; sent as an HTTP trailer (declared with `Trailer: x-chunk-checksum`) or, when known up front, as a header. */
export const H_CHECKSUM = 'x-chunk-checksum';
export const H_FILE = 'x-chunk-file';
export const H_INDEX = 'x-chunk-index';
export const H_OFFSET = 'x-chunk-offset';
export const H_SOURCE_ETAG = 'x-chunk-source-etag';
export const H_REPLACE = 'x-chunk-replace';

/**
 * Longest chunk id the agent accepts, in UTF-8 bytes: room for a 4,096-byte local path (a cloud key is at most
 * 1,024 bytes) and the engine's `_chunk_N` suffix, with margin. Any character is allowed, control characters too.
 */
export const MAX_ID_BYTES = 16 * 1024;
/** The agent reads request headers up to this size: an id and a file name at MAX_ID_BYTES, percent-encoded. */
export const MAX_HEADER_BYTES = 128 * 1024;

/**
 * `invalid_chunk` is about one chunk only (its id or metadata cannot be kept: too long, not valid UTF-8, a name that
 * would not read back as itself): sending it to another agent fails the same way, so it must not count against the
 * node. Every other 4xx/5xx code is about the request or the node. `busy`: past --max-connections, try again later.
 */
export type AgentErrorCode =
  | 'unauthorized'
  | 'not_found'
  | 'bad_request'
  | 'invalid_chunk'
  | 'busy'
  | 'method_not_allowed'
  | 'checksum_mismatch'
  | 'size_mismatch'
  | 'too_large'
  | 'conflict'
  | 'insufficient_storage'
  | 'timeout'
  | 'shutting_down'
  | 'internal';

export interface AgentErrorBody {
  error: { code: AgentErrorCode; message: string };
}

/** What the agent keeps beside every chunk (`<safe name>.chunk.json`) and answers for meta and list requests. */
export interface AgentChunkMeta {
  id: string;
  file: string;
  index: number;
  offset: number;
  size: number;
  checksum: Checksum;
  sourceEtag?: string;
  storedAt: string;
}

export interface AgentPutResult {
  /** created: newly stored; exists: an identical copy was already there (nothing rewritten); replaced: x-chunk-replace overwrote a different copy. */
  status: 'created' | 'exists' | 'replaced';
  chunk: AgentChunkMeta;
}

export interface AgentHealth {
  status: 'ok' | 'full' | 'draining';
  version: string;
  uptimeSeconds: number;
  /** Bytes the agent can still accept: the smaller of the disk's free space and what is left of --max-bytes. */
  freeBytes: number;
  diskFreeBytes: number;
  maxBytes: number | null;
  maxChunkBytes: number;
  chunkCount: number;
  bytesHeld: number;
  inFlight: number;
}

export interface AgentListPage {
  chunks: AgentChunkMeta[];
  /** Pass as `after` to get the next page; null on the last page. */
  next: string | null;
}

/** What a client keeps of a stored chunk's metadata: everything but when it was stored, and where to find it. */
export function heldChunk(meta: AgentChunkMeta): Omit<AgentChunkMeta, 'storedAt'> & { location: string } {
  return {
    id: meta.id,
    file: meta.file,
    index: meta.index,
    offset: meta.offset,
    size: meta.size,
    ...(meta.sourceEtag !== undefined ? { sourceEtag: meta.sourceEtag } : {}),
    checksum: meta.checksum,
    location: chunkPath(meta.id),
  };
}

export function chunkPath(chunkId: string): string {
  return `${CHUNKS_PATH}/${encodeURIComponent(chunkId)}`;
}

export function isHexDigest(value: string, algorithm: string): boolean {
  const len = algorithm === 'md5' ? 32 : algorithm === 'sha256' ? 64 : algorithm === 'crc32c' ? 8 : -1;
  return value.length === len && /^[0-9a-f]+$/.test(value);
}
