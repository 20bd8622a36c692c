// Folders a writer makes on first use and then trusts to exist: a node's chunk subfolders and their temp twins.
import { mkdir } from 'node:fs/promises';

/** Folders made once each (recursively), by key. A failure is not remembered: the next use tries again. */
export class MadeFolders {
  private readonly made = new Map<string, Promise<void>>();
  private readonly done = new Set<string>();

  /** Whether `key`'s folders are made (a batch whose folders all are needs no promise per folder). */
  has(key: string): boolean {
    return this.done.has(key);
  }

  /** Makes `folders` the first time `key` is asked for; later calls wait for that. */
  ensure(key: string, folders: () => string[]): Promise<void> {
    let made = this.made.get(key);
    if (!made) {
      made = Promise.all(folders().map((folder) => mkdir(folder, { recursive: true }))).then(() => void this.done.add(key));
      this.made.set(key, made);
      made.catch(() => this.made.delete(key));
    }
    return made;
  }
}
