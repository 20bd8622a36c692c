// Getting one chunk onto `replicas` nodes: choose nodes, transfer, retry transient failures on the same node,
// move off a node that keeps failing, and tell a chunk's own refusal (fail its file) from a node's failure
// (mark the node). It never returns fewer copies without the run knowing: a chunk that could not get all its
// copies comes back with fewer, and the run's replication check names it.
import type { ChunkCrc, ChunkCopy, IngestEvent, ManifestChunk, NodeStatus } from '../../shared/types.ts';
import type { Placer } from '../../shared/placement.ts';
import type { PlannedChunk } from './chunks.ts';
import { isHashThreadLost } from './hash/pool.ts';
import { isNodeLevelError, NodeError } from './nodes/node.ts';
import type { Nodes, TransferOutcome } from './nodes/nodes.ts';
import type { StoredChunk } from './nodes/node.ts';
import type { HeldCopy } from './resume.ts';
import { backoffDelayMs, sleep } from './retry.ts';
import type { RetryPolicy } from './retry.ts';
import { StorageError } from './storage/driver.ts';

export class NoHealthyNodeError extends Error {
  readonly statuses: NodeStatus[];

  constructor(statuses: NodeStatus[], context: string) {
    const lines = statuses.map((s) => `  ${s.id} (${s.location}): ${s.state}${s.error ? ` — ${s.error}` : ''}`).join('\n');
    super(`No healthy node ${context}.\n${lines}\nFix: check the nodes above (folders writable, agents running, tokens set), or add nodes to the config.`);
    this.name = 'NoHealthyNodeError';
    this.statuses = statuses;
  }
}

/** A node refused this chunk for the chunk's own sake: its file fails, no node is blamed. */
export class ChunkRefusedError extends Error {
  constructor(chunkId: string, cause: unknown) {
    super(`chunk ${chunkId} was refused: ${errorText(cause)}`, { cause });
    this.name = 'ChunkRefusedError';
  }
}

/**
 * Hashing threads kept stopping while this chunk was copied (a chunk that crashes its thread, or runs it out of
 * memory, every time): the chunk's file fails, no node is blamed. Another node would lose its thread the same way.
 */
export class ThreadsLostUnderChunkError extends Error {
  constructor(chunkId: string, losses: number, last: unknown) {
    super(
      `chunk ${chunkId}: the hashing thread copying it stopped ${losses} times (last: ${errorText(last)}); its file fails, no node is blamed. ` +
        'Fix: if it ran out of memory, lower ingestion.chunk_size_mb (or pack_below_mb); otherwise run again, and report it with the run\'s log if it recurs.',
      { cause: last },
    );
    this.name = 'ThreadsLostUnderChunkError';
  }
}

export type ChunkEventState = Extract<IngestEvent, { type: 'chunk' }>['state'];

export interface DeliveryContext {
  nodes: Nodes;
  placer: Placer;
  replicas: number;
  retry: RetryPolicy;
  signal?: AbortSignal;
  emit: (event: IngestEvent) => void;
  emitChunk: (chunk: PlannedChunk, state: ChunkEventState, attempt: number, nodeId?: string, error?: string) => void;
  counters: { retries: number; replacements: number };
}

/** One transfer attempt of the chunk to these nodes. */
export type Transfer = (targets: string[], attempt: number) => Promise<TransferOutcome>;

/** Hashing threads lost under one chunk before the chunk fails (ThreadsLostUnderChunkError): it is what stops them. */
const MAX_THREAD_LOSSES = 3;

/** Node errors that move the chunk at once instead of retrying the same node. */
const MOVE_AT_ONCE = new Set(['unauthorized', 'full', 'conflict']);

export interface DeliverOptions {
  /** Copies that already exist and count towards `replicas`. */
  held: HeldCopy[];
  /** Nodes the chunk was moved away from before (a re-send after a node died). */
  movedFrom?: string[];
  /** Attempts made before (a re-send keeps counting). */
  attemptsBefore?: number;
  readRetries?: number;
  /** The chunk's place in the run's plan: round_robin placement's turn (see Placer.choose). */
  turn?: number;
}

export class Delivery {
  private readonly c: DeliveryContext;

  constructor(context: DeliveryContext) {
    this.c = context;
  }

  async deliver(chunk: PlannedChunk, transfer: Transfer, o: DeliverOptions): Promise<ManifestChunk> {
    const { replicas, placer } = this.c;
    const copies: HeldCopy[] = [...o.held];
    for (const copy of copies) placer.record(copy.nodeId, chunk.size);
    const skipped = copies.length >= replicas;
    const movedFrom = [...(o.movedFrom ?? [])];
    const nodeFailures = new Map<string, number>();
    let attempts = 0;
    let sourceFailures = 0;
    let threadLosses = 0;

    let targets = skipped ? [] : this.choose(chunk, copies.map((c) => c.nodeId), replicas - copies.length, copies.length === 0, o.turn);
    while (targets.length > 0) {
      attempts++;
      const outcome = await transfer(targets, attempts);
      const next: string[] = [];
      let mustWait = false;
      // The copies this attempt stored count first, so a node failing beside them is not taken for the last one left.
      for (const nodeId of targets) {
        const stored = outcome.stored.get(nodeId);
        if (stored) copies.push(heldCopy(nodeId, stored));
      }
      for (const nodeId of targets.filter((t) => !outcome.stored.has(t))) {
        const nodeError = outcome.nodeErrors.get(nodeId);
        if (nodeError === undefined) {
          next.push(nodeId); // the source failed; same node next time
          continue;
        }
        const threadLost = isHashThreadLost(nodeError);
        if (threadLost && ++threadLosses <= MAX_THREAD_LOSSES) {
          // Our own hashing thread died under this chunk: neither the node's fault nor the source's; send it again.
          this.c.counters.retries++;
          this.c.emitChunk(chunk, 'retried', attempts, nodeId, errorText(nodeError));
          next.push(nodeId);
          continue;
        }
        if (threadLost || !isNodeLevelError(nodeError)) {
          for (const id of new Set([...next, ...targets.filter((t) => !outcome.stored.has(t))])) placer.release(id, chunk.size);
          throw threadLost ? new ThreadsLostUnderChunkError(chunk.id, threadLosses, nodeError) : new ChunkRefusedError(chunk.id, nodeError);
        }
        const failures = (nodeFailures.get(nodeId) ?? 0) + 1;
        nodeFailures.set(nodeId, failures);
        const code = nodeError instanceof NodeError ? nodeError.code : 'io';
        if (failures <= this.c.retry.retries && !MOVE_AT_ONCE.has(code)) {
          this.c.counters.retries++;
          mustWait = true;
          this.c.emitChunk(chunk, 'retried', attempts, nodeId, errorText(nodeError));
          next.push(nodeId);
          continue;
        }
        // Not onto a node that holds it or is being sent it in this attempt (targets not looked at yet included).
        const taken = [...copies.map((c) => c.nodeId), ...next, ...targets];
        next.push(...this.moveOff(chunk, nodeId, nodeError, attempts, movedFrom, taken, copies.length > 0 || next.length > 0));
      }
      if (outcome.sourceError) {
        sourceFailures++;
        const retryable = outcome.sourceError instanceof StorageError && outcome.sourceError.retryable;
        if (!retryable || sourceFailures > this.c.retry.retries) {
          for (const nodeId of next) placer.release(nodeId, chunk.size);
          throw outcome.sourceError;
        }
        this.c.counters.retries++;
        mustWait = true;
        this.c.emitChunk(chunk, 'retried', attempts, undefined, errorText(outcome.sourceError));
      }
      if (mustWait) await sleep(backoffDelayMs(this.c.retry, Math.max(sourceFailures, ...nodeFailures.values(), 1)), this.c.signal);
      targets = next;
    }
    if (copies.length === 0) throw new NoHealthyNodeError(this.c.nodes.registry.statuses(), `left for chunk ${chunk.id}`);
    return this.done(chunk, copies, attempts, { attempts: (o.attemptsBefore ?? 0) + attempts, movedFrom, skipped, ...(o.readRetries ? { readRetries: o.readRetries } : {}) });
  }

  /**
   * The one node a chunk's only copy goes to, as deliver would choose it (NoHealthyNodeError when none is usable);
   * `turn`: its place in the plan.
   */
  chooseOne(chunk: PlannedChunk, turn: number): string {
    return this.choose(chunk, [], 1, true, turn)[0]!;
  }

  /** A chunk chosen for `nodeId` (chooseOne) that was not stored there: the node's share of it is given back. */
  unchoose(chunk: PlannedChunk, nodeId: string): void {
    this.c.placer.release(nodeId, chunk.size);
  }

  /** A chunk stored on its one node at the first attempt, outside deliver (a batch of files): what deliver would return. */
  storedOnce(chunk: PlannedChunk, copy: HeldCopy): ManifestChunk {
    return this.done(chunk, [copy], 1, { attempts: 1, movedFrom: [], skipped: false });
  }

  /** The chunk has its copies: said (verified, or skipped when all were held), and as the manifest records it. */
  private done(chunk: PlannedChunk, copies: HeldCopy[], attempts: number, extra: Parameters<typeof manifestChunk>[2]): ManifestChunk {
    this.c.emitChunk(chunk, extra.skipped ? 'skipped' : 'verified', attempts, copies[0]!.nodeId);
    return manifestChunk(chunk, copies, extra);
  }

  /** The node failed this chunk for good: mark it, and pick another node for the copy (none if none is left). */
  private moveOff(chunk: PlannedChunk, nodeId: string, error: unknown, attempt: number, movedFrom: string[], taken: string[], optional: boolean): string[] {
    this.c.placer.release(nodeId, chunk.size);
    this.c.nodes.registry.markFailed(nodeId, error);
    movedFrom.push(nodeId);
    this.c.counters.replacements++;
    this.c.emit({ type: 'log', level: 'warn', message: `node ${nodeId} failed (${errorText(error)}); moving its chunks to other nodes` });
    const replacement = this.choose(chunk, [...taken, ...movedFrom], 1, !optional);
    this.c.emitChunk(chunk, 'moved', attempt, replacement[0], errorText(error));
    return replacement;
  }

  /**
   * `count` nodes for the chunk, none of `exclude`. Fewer when fewer are usable (the replication check reports
   * the shortfall); none at all is an error when the chunk would have no copy anywhere.
   */
  private choose(chunk: PlannedChunk, exclude: string[], count: number, required: boolean, turn?: number): string[] {
    const registry = this.c.nodes.registry;
    const excluded = new Set(exclude);
    const candidates = registry.usable().filter((n) => !excluded.has(n.id));
    if (candidates.length === 0) {
      if (required) throw new NoHealthyNodeError(registry.statuses(), `left for chunk ${chunk.id}`);
      return [];
    }
    return this.c.placer.choose(chunk.size, candidates.map((n) => ({ id: n.id, weight: registry.weight(n.id) })), count, chunk.id, turn);
  }
}

/** A copy a node just stored, as the copies a chunk holds are counted. */
export function heldCopy(nodeId: string, stored: StoredChunk): HeldCopy {
  return { nodeId, location: stored.location, checksum: stored.checksum.hex, ...(stored.crc ? { crc: stored.crc } : {}) };
}

function manifestChunk(chunk: PlannedChunk, copies: HeldCopy[], extra: { attempts: number; movedFrom: string[]; skipped: boolean; readRetries?: number }): ManifestChunk {
  const first = copies[0]!;
  const crc: ChunkCrc | undefined = copies.find((c) => c.crc !== undefined)?.crc;
  // Exact size: an array grown by push keeps room for 17 entries, ~130 bytes more per chunk held all run.
  const placed: ChunkCopy[] = copies.map(({ nodeId, location }) => ({ nodeId, location }));
  return {
    id: chunk.id,
    file: chunk.object.key,
    index: chunk.index,
    offset: chunk.offset,
    size: chunk.size,
    checksum: first.checksum,
    ...(crc ? { crc } : {}),
    node: first.nodeId,
    path: first.location,
    copies: placed,
    attempts: extra.attempts,
    ...(extra.readRetries ? { readRetries: extra.readRetries } : {}),
    movedFrom: extra.movedFrom,
    skipped: extra.skipped,
  };
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
