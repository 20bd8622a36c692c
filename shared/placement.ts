// Where does the next chunk go? Pure, so the app can show the same plan the engine follows.
import type { PlacementStrategy } from './config/types.ts';

export interface PlacementCandidate {
  id: string;
  /** Relative capacity (e.g. free bytes); nodes without one weigh the same as the average. */
  weight?: number;
}

export class Placer {
  readonly strategy: PlacementStrategy;
  private readonly assigned = new Map<string, number>();
  private turn = 0;

  constructor(strategy: PlacementStrategy) {
    this.strategy = strategy;
  }

  bytesOn(id: string): number {
    return this.assigned.get(id) ?? 0;
  }

  record(id: string, bytes: number): void {
    this.assigned.set(id, this.bytesOn(id) + bytes);
  }

  release(id: string, bytes: number): void {
    this.assigned.set(id, Math.max(0, this.bytesOn(id) - bytes));
  }

  /**
   * Picks `count` distinct nodes for a chunk of `bytes` and records the bytes on them.
   * balanced: the least-loaded nodes (by bytes, scaled by weight), which keeps max − min within one chunk.
   * round_robin: the original's rotation over the candidates, whatever their load; from `turn` when given (the
   * chunk's place in the plan).
   * stable: rendezvous (HRW) hashing of `key` (the chunk id) over the candidates, weighted by capacity: the same
   * chunk goes to the same nodes whatever else is planned, and a node joining or leaving moves about 1/N of them.
   */
  choose(bytes: number, candidates: readonly PlacementCandidate[], count = 1, key?: string, turn?: number): string[] {
    if (candidates.length === 0 || count <= 0) return [];
    const picked = this.pick(candidates, count, key, turn);
    for (const id of picked) this.record(id, bytes);
    return picked;
  }

  private pick(candidates: readonly PlacementCandidate[], count: number, key: string | undefined, turn: number | undefined): string[] {
    if (this.strategy === 'round_robin') return this.rotate(candidates, count, turn);
    if (this.strategy === 'balanced') return this.leastLoaded(candidates, count);
    if (key === undefined) throw new Error('stable placement needs the chunk id: pass it as choose(bytes, candidates, count, chunkId)');
    return rendezvousPick(key, candidates, count);
  }

  /**
   * From the candidate at `turn` (the chunk's place in the plan, so chunk i goes to node i mod n whichever chunk is
   * placed first), or else at the next of this placer's own turns.
   */
  private rotate(candidates: readonly PlacementCandidate[], count: number, turn = this.turn++): string[] {
    const picked: string[] = [];
    for (let i = 0; i < Math.min(count, candidates.length); i++) picked.push(candidates[(turn + i) % candidates.length]!.id);
    return picked;
  }

  private leastLoaded(candidates: readonly PlacementCandidate[], count: number): string[] {
    let weightSum = 0;
    let weighted = 0;
    for (const c of candidates) {
      if (c.weight === undefined || c.weight <= 0) continue;
      weightSum += c.weight;
      weighted++;
    }
    const average = weighted ? weightSum / weighted : 1;
    const load = (c: PlacementCandidate): number => this.bytesOn(c.id) / ((c.weight && c.weight > 0 ? c.weight : average) / average);
    if (count === 1) return [lowest(candidates, load).id];
    return candidates
      .map((c, order) => ({ id: c.id, load: load(c), order }))
      .sort((a, b) => a.load - b.load || a.order - b.order)
      .slice(0, count)
      .map((c) => c.id);
  }
}

/** The first candidate of the lowest load (as a stable sort by load would put first): one pass, nothing allocated. */
function lowest(candidates: readonly PlacementCandidate[], load: (c: PlacementCandidate) => number): PlacementCandidate {
  let best = candidates[0]!;
  let bestLoad = load(best);
  for (let i = 1; i < candidates.length; i++) {
    const l = load(candidates[i]!);
    if (l < bestLoad) {
      best = candidates[i]!;
      bestLoad = l;
    }
  }
  return best;
}

// ---- Rendezvous (highest random weight) hashing, after NVIDIA AIStore's core/meta/hrw.go ----------------------
// Every (key, node) pair gets a pseudo-random score; the key goes to the highest. Weighted as in "weighted
// rendezvous hashing": score = weight / -ln(u), u uniform in (0, 1) from the pair's hash, so a node of twice the
// weight wins twice as often. A node leaving takes only its own keys with it (each to its runner-up); a node
// joining wins about 1/N of every other node's keys. Pure 32-bit integer arithmetic: no BigInt, no Node.

/** Two 32-bit lanes of a string's hash (murmur3-style over UTF-16 code units, two seeds). */
function digest(text: string): [number, number] {
  let a = 0x9747b28c;
  let b = 0x85ebca6b;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0xcc9e2d51);
    a = (a << 15) | (a >>> 17);
    a = Math.imul(a, 0x1b873593) + 0xe6546b64;
    b = Math.imul(b ^ c, 0x1b873593);
    b = (b << 13) | (b >>> 19);
    b = Math.imul(b, 0xcc9e2d51) + 0x9e3779b9;
  }
  return [fmix(a ^ text.length), fmix(b ^ (text.length * 31))];
}

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A uniform number in (0, 1) from the pair of a key's and a node's digests (53 bits). */
function pairUniform(key: [number, number], node: [number, number]): number {
  let a = (key[0] ^ node[0]) >>> 0;
  let b = (key[1] ^ node[1]) >>> 0;
  a = fmix(a ^ Math.imul(b, 0x27d4eb2d));
  b = fmix(b ^ Math.imul(a, 0x165667b1));
  return ((a >>> 0) * 2 ** 21 + (b >>> 11) + 0.5) / 2 ** 53;
}

const nodeDigests = new Map<string, [number, number]>();

function nodeDigest(id: string): [number, number] {
  let d = nodeDigests.get(id);
  if (!d) {
    d = digest(`node:${id}`);
    if (nodeDigests.size > 10_000) nodeDigests.clear();
    nodeDigests.set(id, d);
  }
  return d;
}

/** Each candidate's weight: its own when positive, otherwise the average of those given (1 when none is). */
function weightsOf(candidates: readonly PlacementCandidate[]): number[] {
  let sum = 0;
  let given = 0;
  for (const c of candidates) {
    if (c.weight !== undefined && c.weight > 0 && Number.isFinite(c.weight)) {
      sum += c.weight;
      given++;
    }
  }
  const average = given > 0 ? sum / given : 1;
  return candidates.map((c) => (c.weight !== undefined && c.weight > 0 && Number.isFinite(c.weight) ? c.weight : average));
}

/** The candidates in the key's rendezvous order, best first. */
export function rendezvousOrder(key: string, candidates: readonly PlacementCandidate[]): string[] {
  const k = digest(key);
  const weights = weightsOf(candidates);
  return candidates
    .map((c, i) => ({ id: c.id, score: weights[i]! / -Math.log(pairUniform(k, nodeDigest(c.id))) }))
    .sort((x, y) => y.score - x.score || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
    .map((c) => c.id);
}

/** The `count` highest-scoring candidates for `key`. */
export function rendezvousPick(key: string, candidates: readonly PlacementCandidate[], count = 1): string[] {
  if (count !== 1) return rendezvousOrder(key, candidates).slice(0, count);
  const k = digest(key);
  const weights = weightsOf(candidates);
  let best: string | undefined;
  let bestScore = -1;
  candidates.forEach((c, i) => {
    const score = weights[i]! / -Math.log(pairUniform(k, nodeDigest(c.id)));
    if (score > bestScore || (score === bestScore && best !== undefined && c.id < best)) {
      best = c.id;
      bestScore = score;
    }
  });
  return best === undefined ? [] : [best];
}
