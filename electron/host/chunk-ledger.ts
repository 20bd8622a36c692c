// Each chunk's latest state in a few bytes, so the run's counters stay exact after the chunk's row has left the
// chunk view. A chunk event names the state a chunk is in now, not the one it leaves: a chunk verified long ago and
// sent again (its node died) must leave the verified count, and only this record says it was there.
// Per chunk: its number (the map's value; the id string is the engine's own), a state byte, a node index, and a
// bit per node whose verified copy was counted. The engine could spare this with a `from` state on its events.
import type { ChunkRowState } from '../../shared/ipc/contract.ts';

export const ROW_STATES: readonly ChunkRowState[] = ['queued', 'reading', 'sending', 'verified', 'retried', 'failed', 'moved', 'skipped', 'cancelled'];
const CODE = new Map(ROW_STATES.map((s, i) => [s, i]));
const MOVED_BIT = 0x80;
const STATE_MASK = 0x7f;
/** A V8 Map holds at most 2^24 entries: ids go into maps of this many each. */
const IDS_PER_MAP = 1 << 23;

export interface LedgerEntry {
  state: ChunkRowState;
  /** The node of the chunk's latest row (an earlier node is kept when an event names none). */
  nodeId: string | undefined;
  /** The chunk was moved off a failed node at some point. */
  moved: boolean;
}

export class ChunkLedger {
  private readonly maps: Map<string, number>[] = [new Map()];
  private size = 0;
  private states = new Uint8Array(1024);
  /** Node index + 1; 0: no node yet. */
  private nodes = new Uint16Array(1024);
  /** Bit i: a verified or skipped copy on node i was counted (nodes 0-31; the rest in `laterCopies`). */
  private copies = new Uint32Array(1024);
  private readonly laterCopies = new Set<string>();
  private readonly nodeIds: string[] = [];
  private readonly nodeIndex = new Map<string, number>();

  /** Chunks recorded. */
  get count(): number {
    return this.size;
  }

  /** The chunk's number, or undefined for a chunk not seen yet. */
  seqOf(id: string): number | undefined {
    for (const map of this.maps) {
      const seq = map.get(id);
      if (seq !== undefined) return seq;
    }
    return undefined;
  }

  /** Records a chunk seen for the first time (queued, no node); returns its number. */
  add(id: string): number {
    const seq = this.size++;
    let map = this.maps[this.maps.length - 1]!;
    if (map.size >= IDS_PER_MAP) this.maps.push((map = new Map()));
    map.set(id, seq);
    if (seq >= this.states.length) this.grow();
    return seq;
  }

  get(seq: number): LedgerEntry {
    const byte = this.states[seq]!;
    const node = this.nodes[seq]!;
    return { state: ROW_STATES[byte & STATE_MASK]!, nodeId: node === 0 ? undefined : this.nodeIds[node - 1], moved: (byte & MOVED_BIT) !== 0 };
  }

  set(seq: number, entry: LedgerEntry): void {
    this.states[seq] = CODE.get(entry.state)! | (entry.moved ? MOVED_BIT : 0);
    this.nodes[seq] = entry.nodeId === undefined ? 0 : this.indexOf(entry.nodeId) + 1;
  }

  /** Marks a verified (or skipped) copy of the chunk on this node as counted; false when it already was. */
  countCopy(seq: number, nodeId: string): boolean {
    const i = this.indexOf(nodeId);
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
    this.maps.splice(0, this.maps.length, new Map());
    this.size = 0;
    this.states = new Uint8Array(0);
    this.nodes = new Uint16Array(0);
    this.copies = new Uint32Array(0);
    this.laterCopies.clear();
  }

  private indexOf(nodeId: string): number {
    let i = this.nodeIndex.get(nodeId);
    if (i === undefined) {
      i = this.nodeIds.push(nodeId) - 1;
      this.nodeIndex.set(nodeId, i);
    }
    return i;
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
