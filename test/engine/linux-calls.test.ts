// The Linux calls the hashing threads use for small files when they can (linux-calls.js): a rename that never
// takes over a name, and an open that refuses any symlink on the way. Each answers undefined where it cannot
// decide, so the caller falls back to Node's calls; the pools' own behaviour with both is in hashing-writes and
// local-source-inside.
import { readSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closeFile, linuxCallsAvailable, openNoSymlinks, renameNoReplace } from '../../electron/engine/hash/linux-calls.js';
import { tempDir } from '../helpers/temp.ts';

describe.runIf(process.platform === 'linux')('Linux calls for small files', () => {
  it('are there on this machine (koffi, renameat2, openat2)', () => {
    expect(linuxCallsAvailable()).toEqual({ renameNoReplace: true, openNoSymlinks: true });
  });

  it('renameNoReplace renames to a free name, and leaves both files as they were when the name is taken', async () => {
    const dir = await tempDir('ci-linux-calls-');
    await writeFile(join(dir, 'a'), 'first');
    await writeFile(join(dir, 'b'), 'second');
    expect(renameNoReplace(join(dir, 'a'), join(dir, 'b'))).toBe(false);
    expect(await readFile(join(dir, 'a'), 'utf8')).toBe('first');
    expect(await readFile(join(dir, 'b'), 'utf8')).toBe('second');
    expect(renameNoReplace(join(dir, 'a'), join(dir, 'c'))).toBe(true);
    expect(await readFile(join(dir, 'c'), 'utf8')).toBe('first');
    expect(renameNoReplace(join(dir, 'gone'), join(dir, 'd')), 'a failure is left to the caller to report').toBeUndefined();
  });

  it('openNoSymlinks opens a path with no symlink in it, and no other', async () => {
    const dir = await tempDir('ci-linux-calls-');
    await mkdir(join(dir, 'real'));
    await writeFile(join(dir, 'real', 'file'), 'bytes');
    await symlink(join(dir, 'real', 'file'), join(dir, 'link'));
    await symlink(join(dir, 'real'), join(dir, 'folder-link'));
    const fd = openNoSymlinks(join(dir, 'real', 'file'));
    expect(fd).toBeTypeOf('number');
    const bytes = Buffer.alloc(5);
    expect(readSync(fd!, bytes, 0, 5, 0)).toBe(5);
    expect(bytes.toString()).toBe('bytes');
    closeFile(fd!);
    expect(openNoSymlinks(join(dir, 'link')), 'the file is a symlink').toBeUndefined();
    expect(openNoSymlinks(join(dir, 'folder-link', 'file')), 'a folder on the way is a symlink').toBeUndefined();
    expect(openNoSymlinks(join(dir, 'missing'))).toBeUndefined();
  });
});
