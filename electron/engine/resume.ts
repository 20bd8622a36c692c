// What a run need not send again: chunks its journal says were delivered (a resumed run), and copies the nodes
// already hold from the same source version (any run). Node listings run in parallel; a node whose listing
// fails only loses its reuse (its chunks are sent again), it never fails the run.
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { ChunkCrc, ManifestChunk } from '../../shared/types.ts';
import type { PlannedChunk } from './chunks.ts';
import type { JournalState } from './journal.ts';
import type { NodeTarget, StoredChunk } from './nodes/node.ts';

/** A copy a node already holds, with what the node says of its bytes. */
export interface HeldCopy {
  nodeId: string;
  location: string;
  checksum: string;
  crc?: ChunkCrc;
}

export interface ResumeIndexOptions {
  journal?: JournalState;
  algorithm: ChecksumAlgorithm;
  signal?: AbortSignal;
  /** A node's listing failed: say so (the run goes on without reusing that node's copies). */
  onListFailed?: (nodeId: string, error: unknown) => void;
}

export class ResumeIndex {
  private readonly held = new Map<string, { nodeId: string; stored: StoredChunk }[]>();
  private readonly o: ResumeIndexOptions;
  /** Files whose source changed since the resumed run read them (warned once each). */
  private readonly changed = new Set<string>();

  constructor(options: ResumeIndexOptions) {
    this.o = options;
  }

  /** Lists every node's chunks, all nodes at once. */
  async indexNodes(nodes: readonly NodeTarget[]): Promise<void> {
    await Promise.all(nodes.map((node) => this.indexNode(node)));
  }

  private async indexNode(node: NodeTarget): Promise<void> {
    const found: StoredChunk[] = [];
    try {
      for await (const stored of node.list(this.o.signal)) found.push(stored);
    } catch (error) {
      if (this.o.signal?.aborted) throw error;
      this.o.onListFailed?.(node.id, error);
      return;
    }
    for (const stored of found) {
      const copies = this.held.get(stored.id) ?? [];
      copies.push({ nodeId: node.id, stored });
      this.held.set(stored.id, copies);
    }
  }

  /**
   * The resumed run's entry for this chunk, when it read the same source version and every copy is on a node in
   * `live`; `onChanged` is told (once per file) when the source changed since.
   */
  journaled(chunk: PlannedChunk, live: ReadonlySet<string>, onChanged: (key: string, was: string | undefined) => void): ManifestChunk | undefined {
    const entry = this.o.journal?.chunks.get(chunk.id);
    if (!entry) return undefined;
    const same = entry.etag === chunk.object.etag && entry.chunk.offset === chunk.offset && entry.chunk.size === chunk.size;
    if (!same) {
      if (!this.changed.has(chunk.object.key)) {
        this.changed.add(chunk.object.key);
        onChanged(chunk.object.key, entry.etag);
      }
      return undefined;
    }
    return entry.chunk.copies.every((c) => live.has(c.nodeId)) ? entry.chunk : undefined;
  }

  /** Copies on nodes in `live` of exactly this chunk (same source version, range and algorithm), at most `limit`. */
  heldCopies(chunk: PlannedChunk, live: ReadonlySet<string>, limit: number): HeldCopy[] {
    const etag = chunk.object.etag;
    if (etag === undefined) return [];
    return (this.held.get(chunk.id) ?? [])
      .filter(({ nodeId, stored: s }) => live.has(nodeId) && s.sourceEtag === etag && s.size === chunk.size && s.offset === chunk.offset && s.checksum.algorithm === this.o.algorithm)
      .slice(0, limit)
      .map(({ nodeId, stored }) => ({ nodeId, location: stored.location, checksum: stored.checksum.hex, ...(stored.crc ? { crc: stored.crc } : {}) }));
  }
}
