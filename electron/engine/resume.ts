// What a run need not send again: chunks its journal says were delivered (a resumed run), and copies the nodes
// already hold from the same source version (any run). Node listings run in parallel; a node whose listing
// fails only loses its reuse (its chunks are sent again), it never fails the run.
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { ChunkCrc, ManifestChunk } from '../../shared/types.ts';
import type { PlannedChunk } from './chunks.ts';
import type { JournalState } from './journal.ts';
import type { NodeTarget, StoredChunk } from './nodes/node.ts';
import { KeyIndex } from './spill.ts';

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
  /** Which node holds which chunk id: the node's position in `nodes`, under the id's hash (16 bytes a copy). */
  private readonly held = new KeyIndex();
  private nodes: readonly NodeTarget[] = [];
  private readonly o: ResumeIndexOptions;
  /** Files whose source changed since the resumed run read them (warned once each). */
  private readonly changed = new Set<string>();

  constructor(options: ResumeIndexOptions) {
    this.o = options;
  }

  /** Lists every node's chunks, all nodes at once. */
  async indexNodes(nodes: readonly NodeTarget[]): Promise<void> {
    this.nodes = nodes;
    await Promise.all(nodes.map((node, position) => this.indexNode(node, position)));
  }

  private async indexNode(node: NodeTarget, position: number): Promise<void> {
    const found = new KeyIndex();
    try {
      for await (const stored of node.list(this.o.signal)) found.add(stored.id, position);
    } catch (error) {
      if (this.o.signal?.aborted) throw error;
      this.o.onListFailed?.(node.id, error);
      return;
    }
    this.held.merge(found);
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
    // The journal is a file on disk like any other: a copy it names counts only if that node lists the chunk now.
    return entry.chunk.copies.every((c) => live.has(c.nodeId) && this.listedOn(chunk.id, c.nodeId)) ? entry.chunk : undefined;
  }

  /** Whether node `nodeId`'s listing (indexNodes) named chunk `chunkId` (by its hash: a rare collision says yes). */
  private listedOn(chunkId: string, nodeId: string): boolean {
    for (const position of this.held.candidates(chunkId)) if (this.nodes[position]?.id === nodeId) return true;
    return false;
  }

  /** Whether a run before may have delivered this chunk (its journal, or a node's listing), reading neither. */
  mayHold(chunkId: string): boolean {
    if (this.o.journal?.chunks.mayHave(chunkId)) return true;
    if (this.held.size === 0) return false;
    for (const position of this.held.candidates(chunkId)) if (this.nodes[position]) return true;
    return false;
  }

  /**
   * Copies on nodes in `live` of exactly this chunk (same source version, range and algorithm), at most `limit`.
   * The listing kept only which node may hold the id; the node is asked for the copy's details.
   */
  async heldCopies(chunk: PlannedChunk, live: ReadonlySet<string>, limit: number): Promise<HeldCopy[]> {
    const etag = chunk.object.etag;
    if (etag === undefined || this.held.size === 0) return [];
    const copies: HeldCopy[] = [];
    for (const position of new Set(this.held.candidates(chunk.id))) {
      const node = this.nodes[position];
      if (!node || !live.has(node.id) || copies.length >= limit) continue;
      const stored = await node.find(chunk.id, this.o.signal).catch(() => undefined);
      if (stored && this.matches(stored, chunk, etag)) copies.push({ nodeId: node.id, location: stored.location, checksum: stored.checksum.hex, ...(stored.crc ? { crc: stored.crc } : {}) });
    }
    return copies;
  }

  private matches(s: StoredChunk, chunk: PlannedChunk, etag: string): boolean {
    return s.id === chunk.id && s.sourceEtag === etag && s.size === chunk.size && s.offset === chunk.offset && s.checksum.algorithm === this.o.algorithm;
  }
}
