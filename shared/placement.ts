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
   * round_robin: the original's rotation over the candidates, whatever their load.
   */
  choose(bytes: number, candidates: readonly PlacementCandidate[], count = 1): string[] {
    if (candidates.length === 0 || count <= 0) return [];
    const picked = this.strategy === 'round_robin' ? this.rotate(candidates, count) : this.leastLoaded(candidates, count);
    for (const id of picked) this.record(id, bytes);
    return picked;
  }

  private rotate(candidates: readonly PlacementCandidate[], count: number): string[] {
    const picked: string[] = [];
    for (let i = 0; i < Math.min(count, candidates.length); i++) picked.push(candidates[(this.turn + i) % candidates.length]!.id);
    this.turn++;
    return picked;
  }

  private leastLoaded(candidates: readonly PlacementCandidate[], count: number): string[] {
    const weights = candidates.map((c) => c.weight).filter((w): w is number => w !== undefined && w > 0);
    const average = weights.length ? weights.reduce((a, b) => a + b, 0) / weights.length : 1;
    const load = (c: PlacementCandidate): number => this.bytesOn(c.id) / ((c.weight && c.weight > 0 ? c.weight : average) / average);
    return candidates
      .map((c, order) => ({ id: c.id, load: load(c), order }))
      .sort((a, b) => a.load - b.load || a.order - b.order)
      .slice(0, count)
      .map((c) => c.id);
  }
}
