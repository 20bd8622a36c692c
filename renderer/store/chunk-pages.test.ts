// A large run's table pages: which pages rows on screen need, which the store keeps, and a row's place in them.
import { describe, expect, it } from 'vitest';
import { CHUNK_PAGE_MARGIN, CHUNK_PAGE_ROWS, CHUNK_PAGES_KEPT, keepPages, pagesCovering, rowAt } from './chunk-pages.ts';
import type { ChunkPage } from './chunk-pages.ts';

const page = (n: number, nodeId = 'n1', rows: ChunkPage['rows'] = null): ChunkPage => ({ manifestPath: '/r.json', nodeId, page: n, rows });

describe('chunk pages', () => {
  it('covers the rows on screen and a margin either side, within the table', () => {
    expect(CHUNK_PAGE_MARGIN).toBeLessThan(CHUNK_PAGE_ROWS);
    expect(pagesCovering(0, 20, 1_000_000)).toEqual([0]);
    expect(pagesCovering(CHUNK_PAGE_ROWS - 30, CHUNK_PAGE_ROWS - 10, 1_000_000)).toEqual([0, 1]); // the margin reaches the next page
    expect(pagesCovering(500_010, 500_030, 1_000_000)).toEqual([2_499, 2_500]);
    expect(pagesCovering(999_980, 1_000_000, 1_000_000)).toEqual([4_999]); // never past the last row
    expect(pagesCovering(0, 0, 1_000_000)).toEqual([]);
    expect(pagesCovering(0, 20, 0)).toEqual([]);
  });

  it('keeps at most CHUNK_PAGES_KEPT pages, dropping the oldest but never one on screen', () => {
    const old = Array.from({ length: CHUNK_PAGES_KEPT }, (_, i) => page(i));
    const kept = keepPages(old, [page(100), page(101)], (p) => p.page === 0 || p.page >= 100);
    expect(kept).toHaveLength(CHUNK_PAGES_KEPT);
    expect(kept.map((p) => p.page)).toEqual([0, ...Array.from({ length: CHUNK_PAGES_KEPT - 3 }, (_, i) => i + 3), 100, 101]);
    expect(keepPages([page(1)], [page(2)], () => false)).toHaveLength(2);
  });

  it('finds a row in its page, of its node, or null while it loads', () => {
    const rows = Array.from({ length: CHUNK_PAGE_ROWS }, (_, i) => ({ chunk: { id: `c${CHUNK_PAGE_ROWS + i}` }, location: `/x/${i}` })) as unknown as ChunkPage['rows'];
    const pages = [page(1, 'n1', rows), page(2, 'n1'), page(1, 'n2', [])];
    expect(rowAt(pages, '/r.json', 'n1', CHUNK_PAGE_ROWS + 7)?.chunk.id).toBe(`c${CHUNK_PAGE_ROWS + 7}`);
    expect(rowAt(pages, '/r.json', 'n1', 2 * CHUNK_PAGE_ROWS)).toBeNull();
    expect(rowAt(pages, '/r.json', 'n1', 0)).toBeNull();
    expect(rowAt(pages, '/other.json', 'n1', CHUNK_PAGE_ROWS)).toBeNull();
  });
});
