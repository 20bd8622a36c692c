// A run's per-chunk columns live in a file with a few pages in memory: every value set reads back, wherever it
// was set and however far the pages it was on were pushed out since.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NumberColumn } from '../../electron/engine/spill.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ci-column-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 0..n-1 in a scrambled order (a fixed multiplicative step through the indices). */
function scrambled(n: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919) % n);
}

describe('NumberColumn', () => {
  it('reads back every value set, in any order, across far more pages than it keeps', () => {
    const column = new NumberColumn(join(dir, 'c.f64'), -1);
    const n = 200_000;
    for (const i of scrambled(n)) if (i % 3 !== 0) column.set(i, i * 1_000_003);
    expect(column.size).toBe(n);
    for (let i = 0; i < n; i++) expect(column.get(i)).toBe(i % 3 === 0 ? -1 : i * 1_000_003);
    column.close();
  });

  it('reads the fill on a page never set, whatever pages memory held before it', () => {
    const column = new NumberColumn(join(dir, 'c.f64'), -1);
    const cells = 8192; // a page
    for (let page = 0; page < 8; page++) column.set(page * cells + 2, page + 100);
    column.set(20 * cells, 7); // the file now reaches past pages 8-19, which were never set
    for (let page = 8; page < 20; page++) expect(column.get(page * cells + 2)).toBe(-1);
    for (let page = 21; page < 30; page++) expect(column.get(page * cells + 2)).toBe(-1); // past the end of the file
    for (let page = 0; page < 8; page++) expect(column.get(page * cells + 2)).toBe(page + 100);
    column.close();
  });

  it('reads the fill beyond what was set, and keeps values that equal zero or the fill', () => {
    const column = new NumberColumn(join(dir, 'c.f64'), 0);
    column.set(100_000, 2 ** 51 + 1);
    column.set(3, 0);
    column.set(4, -1);
    expect(column.get(2)).toBe(0);
    expect(column.get(4)).toBe(-1);
    expect(column.get(100_000)).toBe(2 ** 51 + 1);
    expect(column.get(100_001)).toBe(0);
    expect(column.size).toBe(100_001);
    column.close();
  });

  it('replaces a value set again after its page left memory', async () => {
    const path = join(dir, 'c.f64');
    const column = new NumberColumn(path, -1);
    column.set(5, 50);
    for (let i = 10_000; i < 150_000; i += 8192) column.set(i, i);
    column.set(5, 51);
    for (let i = 150_000; i < 300_000; i += 8192) column.set(i, i);
    expect(column.get(5)).toBe(51);
    expect(column.get(10_000)).toBe(10_000);
    column.close();
    // The values went to the file: it spans the cells set, not more.
    expect((await stat(path)).size).toBeLessThanOrEqual(8 * (300_000 + 8192));
  });
});
