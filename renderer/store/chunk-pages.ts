// A large run's node tables, a page at a time: which pages the rows on screen need, which to keep (a bounded few),
// and a row's place in them. Pure functions on the store's `received.pages`.
import type { NodeChunkRow } from '../../shared/ipc/contract.ts';

/** Rows one page holds (one `manifestChunks` request). */
export const CHUNK_PAGE_ROWS = 200;
/** Pages the store keeps at most, over every node and manifest. */
export const CHUNK_PAGES_KEPT = 20;
/** Rows above and below the visible ones that are fetched ahead of a scroll. */
export const CHUNK_PAGE_MARGIN = 100;

/** A page of a node's copies in a large run, as the host sent it; `rows` is null while it loads. */
export interface ChunkPage {
  manifestPath: string;
  nodeId: string;
  /** Rows `page × CHUNK_PAGE_ROWS` onward. */
  page: number;
  rows: NodeChunkRow[] | null;
}

/** The pages covering rows `first` to `last - 1` and a margin either side. */
export function pagesCovering(first: number, last: number, total: number): number[] {
  if (total <= 0 || last <= first) return [];
  const from = Math.floor(Math.max(0, first - CHUNK_PAGE_MARGIN) / CHUNK_PAGE_ROWS);
  const to = Math.floor(Math.min(total - 1, last - 1 + CHUNK_PAGE_MARGIN) / CHUNK_PAGE_ROWS);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export function samePage(p: ChunkPage, manifestPath: string, nodeId: string, page: number): boolean {
  return p.page === page && p.nodeId === nodeId && p.manifestPath === manifestPath;
}

/**
 * `pages` with `added` after them, the oldest dropped until at most CHUNK_PAGES_KEPT are left; `wanted` pages (the
 * ones on screen) are never dropped.
 */
export function keepPages(pages: ChunkPage[], added: ChunkPage[], wanted: (p: ChunkPage) => boolean): ChunkPage[] {
  const all = [...pages, ...added];
  let excess = all.length - CHUNK_PAGES_KEPT;
  return all.filter((p) => {
    if (excess <= 0 || wanted(p)) return true;
    excess -= 1;
    return false;
  });
}

/** Row `index` of a node's table, null while its page is not here. */
export function rowAt(pages: ChunkPage[], manifestPath: string, nodeId: string, index: number): NodeChunkRow | null {
  const page = pages.find((p) => samePage(p, manifestPath, nodeId, Math.floor(index / CHUNK_PAGE_ROWS)));
  return page?.rows?.[index % CHUNK_PAGE_ROWS] ?? null;
}
