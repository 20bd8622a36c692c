// Stable (rendezvous / HRW) placement: deterministic, weighted by capacity, and a node joining or leaving moves
// about 1/N of the chunks, as in NVIDIA AIStore's core/meta/hrw.go. Measured over many chunk ids.
import { describe, expect, it } from 'vitest';
import { Placer, rendezvousOrder, rendezvousPick } from '../../shared/placement.ts';
import type { PlacementCandidate } from '../../shared/placement.ts';

const CHUNKS = 60_000;
const ids = Array.from({ length: CHUNKS }, (_, i) => `images/shard-${String(Math.floor(i / 7)).padStart(5, '0')}.tar_chunk_${i % 7}`);

function nodes(n: number, prefix = 'node-'): PlacementCandidate[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i + 1}` }));
}

function place(candidates: readonly PlacementCandidate[]): string[] {
  return ids.map((id) => rendezvousPick(id, candidates)[0]!);
}

function movedFraction(before: string[], after: string[]): number {
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++;
  return moved / before.length;
}

function shares(placed: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of placed) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

describe('stable placement (rendezvous hashing)', () => {
  it('spreads chunks evenly over equal nodes', () => {
    const counts = shares(place(nodes(10)));
    expect(counts.size).toBe(10);
    for (const count of counts.values()) expect(Math.abs(count / CHUNKS - 0.1)).toBeLessThan(0.01);
  });

  it.each([4, 10, 25])('adding one node to %i moves about 1/(N+1) of the chunks, all of them to the new node', (n) => {
    const before = place(nodes(n));
    const grown = [...nodes(n), { id: 'joiner' }];
    const after = place(grown);
    const fraction = movedFraction(before, after);
    expect(Math.abs(fraction - 1 / (n + 1))).toBeLessThan(0.15 / (n + 1) + 0.003);
    for (let i = 0; i < CHUNKS; i++) if (before[i] !== after[i]) expect(after[i]).toBe('joiner');
  });

  it.each([4, 10, 25])('removing one node of %i moves only its own chunks (about 1/N)', (n) => {
    const all = nodes(n);
    const before = place(all);
    const leaving = all[Math.floor(n / 2)]!.id;
    const after = place(all.filter((c) => c.id !== leaving));
    const fraction = movedFraction(before, after);
    expect(Math.abs(fraction - 1 / n)).toBeLessThan(0.15 / n + 0.003);
    for (let i = 0; i < CHUNKS; i++) expect(before[i] !== after[i]).toBe(before[i] === leaving);
  });

  it('weights by capacity: a node with twice the capacity gets about twice the chunks', () => {
    const weighted = [{ id: 'big', weight: 2_000 }, { id: 'a', weight: 1_000 }, { id: 'b', weight: 1_000 }];
    const counts = shares(place(weighted));
    expect(Math.abs(counts.get('big')! / CHUNKS - 0.5)).toBeLessThan(0.015);
    expect(Math.abs(counts.get('a')! / CHUNKS - 0.25)).toBeLessThan(0.015);
    // A node without a known capacity weighs the average of the others, not 1 byte.
    const unknown = shares(place([{ id: 'x', weight: 5e12 }, { id: 'y' }]));
    expect(Math.abs(unknown.get('y')! / CHUNKS - 0.5)).toBeLessThan(0.015);
  });

  it('is deterministic and independent of candidate order and of other chunks', () => {
    const set = nodes(7);
    const reversed = [...set].reverse();
    for (const id of ids.slice(0, 2000)) {
      expect(rendezvousPick(id, set)).toEqual(rendezvousPick(id, reversed));
      expect(rendezvousOrder(id, set)).toEqual(rendezvousOrder(id, reversed));
    }
    const placer = new Placer('stable');
    const first = ids.slice(0, 500).map((id) => placer.choose(1, set, 1, id)[0]);
    const again = new Placer('stable');
    // Another placer that planned other chunks first gives the same answer: no state between chunks.
    for (const id of ids.slice(1000, 3000)) again.choose(1, set, 1, id);
    expect(ids.slice(0, 500).map((id) => again.choose(1, set, 1, id)[0])).toEqual(first);
  });

  it('replicas go to the top distinct nodes, and a failed node is replaced by the runner-up', () => {
    const set = nodes(5);
    const placer = new Placer('stable');
    for (const id of ids.slice(0, 1000)) {
      const order = rendezvousOrder(id, set);
      const two = placer.choose(1, set, 2, id);
      expect(two).toEqual(order.slice(0, 2));
      expect(new Set(two).size).toBe(2);
      const withoutFirst = set.filter((c) => c.id !== order[0]);
      expect(placer.choose(1, withoutFirst, 1, id)).toEqual([order[1]]);
    }
  });

  it('asks for the chunk id rather than guessing', () => {
    expect(() => new Placer('stable').choose(1, nodes(3))).toThrow(/needs the chunk id/);
  });

  it('places a million chunk-node pairs in well under a second', () => {
    const set = nodes(10);
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) rendezvousPick(`k/${i}_chunk_0`, set);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe('balanced placement', () => {
  it('one node at a time is the first of the least loaded by weighted bytes, as when asking for two', () => {
    const candidates: PlacementCandidate[] = [{ id: 'small', weight: 1 }, { id: 'big', weight: 3 }, { id: 'plain' }, { id: 'same', weight: 1 }];
    const one = new Placer('balanced');
    const two = new Placer('balanced');
    const sizes = Array.from({ length: 500 }, (_, i) => 1 + ((i * 7919) % 1000));
    for (const size of sizes) {
      const [picked] = one.choose(size, candidates, 1);
      const [first, second] = two.choose(size, candidates, 2);
      expect(picked).toBe(first);
      two.release(second!, size); // keep both placers' loads the same
    }
    // Weighted by capacity: 'big' (3 of an average 5/3) takes the most bytes; 'plain' weighs the average.
    const bytes = candidates.map((c) => one.bytesOn(c.id));
    expect(bytes[1]).toBe(Math.max(...bytes));
    expect(one.choose(1, [{ id: 'a' }, { id: 'b' }], 1)).toEqual(['a']); // a tie goes to the first candidate
  });
});
