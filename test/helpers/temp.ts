// Temp folders made by tests and by the scripts that reuse test helpers, removed together when they are done.
// No test-runner hooks here (scripts import it): whoever makes folders calls removeTempDirs when done.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A new folder under the system temp folder, removed by the next removeTempDirs. */
export async function tempDir(prefix = 'ci-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
