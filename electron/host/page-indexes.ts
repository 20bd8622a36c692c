// The page indexes of the manifests the Received screen opened last: built on first need (one streamed pass, a few
// hundred KB at a million chunks), shared by concurrent requests, kept for the latest few manifests only, and built
// again when the file's size or modification time changed.
import { stat } from 'node:fs/promises';
import { buildChunkPageIndex, ManifestError } from '../engine/index.ts';
import type { ChunkPageIndex } from '../engine/index.ts';

/** Manifests whose page index is kept. */
export const PAGE_INDEXES_KEPT = 2;

interface Entry {
  stamp: string;
  index: Promise<ChunkPageIndex>;
}

export class PageIndexCache {
  private readonly kept: number;
  /** By path, least recently used first. */
  private readonly entries = new Map<string, Entry>();
  private readonly build: (path: string) => Promise<ChunkPageIndex>;

  constructor(kept = PAGE_INDEXES_KEPT, build: (path: string) => Promise<ChunkPageIndex> = buildChunkPageIndex) {
    this.kept = kept;
    this.build = build;
  }

  /**
   * The index of the manifest at `path` (an absolute path the caller has checked), built if it has none for this
   * version of the file: by `build` when given (a pass that takes the preview too), else by the cache's own.
   */
  async get(path: string, build: (path: string) => Promise<ChunkPageIndex> = this.build): Promise<ChunkPageIndex> {
    const stamp = await fileStamp(path);
    const hit = this.entries.get(path);
    this.entries.delete(path);
    const entry = hit?.stamp === stamp ? hit : { stamp, index: build(path) };
    this.entries.set(path, entry);
    entry.index.catch(() => {
      if (this.entries.get(path) === entry) this.entries.delete(path); // a failed build is not kept
    });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.kept) break;
      this.entries.delete(oldest);
    }
    return entry.index;
  }

  /** Paths with an index kept, least recently used first (for tests). */
  paths(): string[] {
    return [...this.entries.keys()];
  }
}

async function fileStamp(path: string): Promise<string> {
  try {
    const { size, mtimeMs, ino } = await stat(path);
    return `${size}:${mtimeMs}:${ino}`;
  } catch {
    throw new ManifestError(`Cannot read manifest ${path}. Fix: pick a run from the list.`);
  }
}
