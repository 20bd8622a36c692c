// Real folder conditions for the folder-node tests: a small filesystem that fills up (a tmpfs of a given size,
// mounted for the test) and a folder nothing may be written to (`chattr +i`, which stops root too; chmod as others).
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/temp.ts';

const run = promisify(execFile);
const mounted: string[] = [];
const immutable: string[] = [];

const isRoot = (): boolean => process.getuid?.() === 0;

/** A new empty folder on its own tmpfs of `bytes` (rounded up to pages): writes past that fail with ENOSPC. */
export async function smallFilesystem(bytes: number): Promise<string> {
  const dir = await tempDir('ci-small-fs-');
  if (!isRoot()) throw new Error(`a small filesystem for a full folder node needs root (mount -t tmpfs); running as uid ${process.getuid?.()}`);
  await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  mounted.push(dir);
  return dir;
}

/**
 * Makes `dir` refuse new files, renames and deletions, even for root (root ignores chmod, not the immutable
 * attribute). Checked by trying to create a file; throws if the folder still takes one.
 */
export async function makeReadOnly(dir: string): Promise<void> {
  if (isRoot()) {
    await run('chattr', ['+i', dir]);
    immutable.push(dir);
    const { stdout } = await run('lsattr', ['-d', dir]);
    if (!/^\S*i/.test(stdout)) throw new Error(`chattr +i did not take on ${dir}: ${stdout.trim()}`);
  } else {
    await run('chmod', ['0555', dir]);
  }
  const probe = join(dir, 'can-i-write');
  const writable = await writeFile(probe, '').then(
    () => true,
    () => false,
  );
  if (writable) {
    await rm(probe, { force: true });
    throw new Error(`${dir} still accepts new files after being made read-only`);
  }
}

export async function makeWritable(dir: string): Promise<void> {
  if (isRoot()) {
    await run('chattr', ['-i', dir]);
    immutable.splice(immutable.indexOf(dir), 1);
  } else await run('chmod', ['0755', dir]);
}

/** Undoes every mount and immutable flag this file made; call from afterAll before removing temp folders. */
export async function releaseFolders(): Promise<void> {
  for (const dir of immutable.splice(0)) await run('chattr', ['-i', dir]).catch(() => undefined);
  for (const dir of mounted.splice(0)) await run('umount', [dir]).catch(() => run('umount', ['-l', dir]).catch(() => undefined));
}
