// The nodes a manifest names, opened from the current config (for tokens) or, for folder nodes that are
// no longer configured, from the location the manifest recorded: those are only read, never written.
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { ChecksumAlgorithm } from '../../../shared/config/types.ts';
import type { NodeSummary } from '../../../shared/types.ts';
import type { LoadedConfig } from '../config.ts';
import type { HashPool } from '../hash/pool.ts';
import { FolderNode } from './folder-node.ts';
import { NodeError } from './node.ts';
import type { NodeProbe, NodeTarget, StoredChunk } from './node.ts';
import { openNodes } from './open.ts';

export function nodesForManifest(loaded: LoadedConfig, recorded: readonly NodeSummary[]): Map<string, NodeTarget> {
  const nodes = new Map(openNodes(loaded).map((n) => [n.id, n] as const));
  for (const summary of recorded) {
    if (!nodes.has(summary.id) && summary.kind === 'folder' && typeof summary.location === 'string') nodes.set(summary.id, new RecordedFolderNode(summary.id, summary.location));
  }
  return nodes;
}

/**
 * A folder a manifest names but the config does not: its copies are read (verify, reassemble, repair's good
 * copies), but the folder is never made, probed by writing, or written to. A manifest is a file anyone may edit; only
 * the config says where copies may be written.
 */
class RecordedFolderNode implements NodeTarget {
  readonly id: string;
  readonly kind = 'folder' as const;
  readonly location: string;
  private readonly folder: FolderNode;

  constructor(id: string, location: string) {
    this.id = id;
    this.location = location;
    this.folder = new FolderNode(id, location);
  }

  /** Answers (so its copies count) when the folder is there, and as full, so no new copy is placed on it. */
  async probe(): Promise<NodeProbe> {
    const started = performance.now();
    const latencyMs = (): number => Math.round(performance.now() - started);
    const isFolder = await stat(this.location).then((s) => s.isDirectory(), () => false);
    if (!isFolder) return { ok: false, latencyMs: latencyMs(), error: `${this.location} is not a folder` };
    return { ok: true, full: true, latencyMs: latencyMs(), error: `node ${this.id} is not in the config: its copies are read, none is written there` };
  }

  find(chunkId: string): Promise<StoredChunk | undefined> {
    return this.folder.find(chunkId);
  }

  write(): Promise<StoredChunk> {
    return Promise.reject(new NodeError(this.id, 'refused', `node ${this.id} (${this.location}) is named by the manifest but not in the config: nothing is written there. Fix: add it to nodes: in the config to repair its copies.`));
  }

  read(chunkId: string): Promise<Readable> {
    return this.folder.read(chunkId);
  }

  checksumStored(chunkId: string, algorithm: ChecksumAlgorithm, pool: HashPool, signal?: AbortSignal): Promise<{ hex: string; bytes: number }> {
    return this.folder.checksumStored(chunkId, algorithm, pool, signal);
  }

  copyStoredInto(...args: Parameters<FolderNode['copyStoredInto']>): ReturnType<FolderNode['copyStoredInto']> {
    return this.folder.copyStoredInto(...args);
  }

  list(): AsyncIterable<StoredChunk> {
    return this.folder.list();
  }

  close(): Promise<void> {
    return this.folder.close();
  }
}
