// Each chunk's latest state in a few bytes, so the run's counters stay exact after the chunk's row has left the
// chunk view. A chunk event names the state a chunk is in now, not the one it leaves: a chunk verified long ago and
// sent again (its node died) must leave the verified count, and only this record says it was there.
// Per chunk, in typed arrays (no string is kept: the engine lets go of a chunk's id once its window is delivered):
// a 64-bit hash of its id in an open-addressing table to its number, a state byte, a node index, and a bit per node
// whose verified copy was counted; about 31 bytes a chunk. Two ids sharing all 64 bits would share one record (for
// a run of a million chunks, odds of about one in 30 million). The engine could spare this table by putting the
// chunk's plan index, or the state it leaves, on its chunk events.
import type { ChunkRowState } from '../../shared/ipc/contract.ts';
import { Positions } from '../../shared/positions.ts';

export const ROW_STATES: readonly ChunkRowState[] = ['queued', 'reading', 'sending', 'verified', 'retried', 'failed', 'moved', 'skipped', 'cancelled'];
const CODE = new Map(ROW_STATES.map((s, i) => [s, i]));
const MOVED_BIT = 0x80;
const STATE_MASK = 0x7f;

export interface LedgerEntry {
  state: ChunkRowState;
  /** The node of the chunk's latest row (an earlier node is kept when an event names none). */
  nodeId: string | undefined;
  /** The chunk was moved off a failed node at some point. */
  moved: boolean;
}

/** Two 32-bit halves of a 64-bit hash of `text` (cyrb53's two lanes, kept whole). */
function hash64(text: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}

/** Chunk ids to their numbers by a 64-bit hash of the id: 24 bytes a chunk at most (the table is at most half full). */
class IdTable {
  private high = new Uint32Array(2048);
  private low = new Uint32Array(2048);
  /** Chunk number + 1; 0: an empty slot. */
  private seqs = new Int32Array(2048);
  private used = 0;

  /** The id's number; an id not in the table is added with `next`, and -1 returned. */
  getOrAdd(id: string, next: number): number {
    const [high, low] = hash64(id);
    const mask = this.seqs.length - 1;
    for (let slot = low & mask; this.seqs[slot] !== 0; slot = (slot + 1) & mask) {
      if (this.low[slot] === low && this.high[slot] === high) return this.seqs[slot]! - 1;
    }
    if ((this.used + 1) * 2 > this.seqs.length) this.grow();
    this.insert(high, low, next + 1);
    this.used += 1;
    return -1;
  }

  private insert(high: number, low: number, seqPlusOne: number): void {
    const mask = this.seqs.length - 1;
    let slot = low & mask;
    while (this.seqs[slot] !== 0) slot = (slot + 1) & mask;
    this.high[slot] = high;
    this.low[slot] = low;
    this.seqs[slot] = seqPlusOne;
  }

  private grow(): void {
    const { high, low, seqs } = this;
    this.high = new Uint32Array(seqs.length * 2);
    this.low = new Uint32Array(seqs.length * 2);
    this.seqs = new Int32Array(seqs.length * 2);
    for (let slot = 0; slot < seqs.length; slot += 1) if (seqs[slot] !== 0) this.insert(high[slot]!, low[slot]!, seqs[slot]!);
  }
}

export class ChunkLedger {
  private ids = new IdTable();
  private size = 0;
  private states = new Uint8Array(1024);
  /** Node index + 1; 0: no node yet. */
  private nodes = new Uint16Array(1024);
  /** Bit i: a verified or skipped copy on node i was counted (nodes 0-31; the rest in `laterCopies`). */
  private copies = new Uint32Array(1024);
  private readonly laterCopies = new Set<string>();
  private readonly nodePositions = new Positions();

  /** The chunk's number, and whether it was seen before; a chunk seen for the first time is entered (queued, on no node). */
  enter(id: string): { seq: number; known: boolean } {
    const found = this.ids.getOrAdd(id, this.size);
    if (found >= 0) return { seq: found, known: true };
    const seq = this.size++;
    if (seq >= this.states.length) this.grow();
    return { seq, known: false };
  }

  get(seq: number): LedgerEntry {
    const byte = this.states[seq]!;
    const node = this.nodes[seq]!;
    return { state: ROW_STATES[byte & STATE_MASK]!, nodeId: node === 0 ? undefined : this.nodePositions.idAt(node - 1), moved: (byte & MOVED_BIT) !== 0 };
  }

  set(seq: number, entry: LedgerEntry): void {
    this.states[seq] = CODE.get(entry.state)! | (entry.moved ? MOVED_BIT : 0);
    this.nodes[seq] = entry.nodeId === undefined ? 0 : this.nodePositions.of(entry.nodeId) + 1;
  }

  /** Marks a verified (or skipped) copy of the chunk on this node as counted; false when it already was. */
  countCopy(seq: number, nodeId: string): boolean {
    const i = this.nodePositions.of(nodeId);
    if (i < 32) {
      const word = this.copies[seq]!;
      const bit = 1 << i;
      if ((word & bit) !== 0) return false;
      this.copies[seq] = word | bit;
      return true;
    }
    const key = `${seq}:${i}`;
    if (this.laterCopies.has(key)) return false;
    this.laterCopies.add(key);
    return true;
  }

  /** Calls `fn` with every chunk's number and entry. */
  forEach(fn: (seq: number, entry: LedgerEntry) => void): void {
    for (let seq = 0; seq < this.size; seq += 1) fn(seq, this.get(seq));
  }

  /** Forgets every chunk (the run ended: no state changes any more, its counters are final). */
  clear(): void {
    this.ids = new IdTable();
    this.size = 0;
    this.states = new Uint8Array(0);
    this.nodes = new Uint16Array(0);
    this.copies = new Uint32Array(0);
    this.laterCopies.clear();
  }

  private grow(): void {
    const length = Math.max(1024, this.states.length * 2);
    const states = new Uint8Array(length);
    states.set(this.states);
    const nodes = new Uint16Array(length);
    nodes.set(this.nodes);
    const copies = new Uint32Array(length);
    copies.set(this.copies);
    this.states = states;
    this.nodes = nodes;
    this.copies = copies;
  }
}
