// Edits of the config file through the real host (worker thread, real files): concurrent edits from two tabs both
// land, a node edit leaves every other byte of the file alone, and a save made from a stale copy is refused.
// Then where reassemble may write: under the project folder, or a folder picked in the (Electron) dialog only.
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { createHost } from '../../electron/host/host.ts';
import type { EngineHost } from '../../electron/host/host.ts';
import type { ConfigSnapshot, SaveResult } from '../../shared/ipc/contract.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { ingestToEnd } from './ingest-to-end.ts';

const CONFIG = `# Config edits test: keep this comment.
data_sources:
  local: { type: "local", path: "./source" }     # the source folder, aligned comment

ingestion:
  chunk_size_mb: 0.25      # aligned too
  retry_delay_seconds: 0.1

nodes:
  - { id: node-a, path: ./nodes/node-a }    # first
  - { id: node-b, path: ./nodes/node-b }
`;

let dir: string;
let outside: string;
let picked: string;
let configPath: string;
let host: EngineHost;
let pickerAnswer: string | null = null;

function value<T>(envelope: { ok: boolean; value?: unknown; error?: unknown }): T {
  if (!envelope.ok) throw new Error(`call failed: ${JSON.stringify(envelope.error)}`);
  return envelope.value as T;
}

beforeAll(async () => {
  dir = await tempDir('config-edits-');
  outside = await tempDir('config-edits-outside-');
  picked = await tempDir('config-edits-picked-');
  configPath = join(dir, 'data_sources.yml');
  await writeFile(configPath, CONFIG);
  await mkdir(join(dir, 'source'));
  await ensureDataFile(join(dir, 'source', 'a.bin'), 600_000, 'a');
  host = createHost({ configPath, pickFolder: async () => pickerAnswer });
});

afterAll(async () => {
  await host?.close();
  await removeTempDirs();
});

describe('config edits', () => {
  it('two tabs adding nodes at the same moment: both nodes land in the file', async () => {
    const [first, second] = await Promise.all([
      host.call('upsertNode', { node: { id: 'node-c', path: './nodes/node-c' } }),
      host.call('upsertNode', { node: { id: 'node-d', path: './nodes/node-d' } }),
    ]);
    expect(first.ok && second.ok).toBe(true);
    const text = await readFile(configPath, 'utf8');
    expect(text).toMatch(/id: node-c/);
    expect(text).toMatch(/id: node-d/);
  });

  it('a node edit changes only that node’s line: comments keep their spacing, new nodes take their siblings’ style', async () => {
    const before = await readFile(configPath, 'utf8');
    value(await host.call('upsertNode', { node: { id: 'node-e', path: './nodes/node e' } }));
    const added = await readFile(configPath, 'utf8');
    expect(added).toBe(`${before}  - { id: node-e, path: "./nodes/node e" }\n`);

    value(await host.call('upsertNode', { node: { id: 'node-a2', path: './nodes/node-a' }, originalId: 'node-a' }));
    const renamed = await readFile(configPath, 'utf8');
    expect(renamed).toBe(added.replace('  - { id: node-a, path: ./nodes/node-a }    # first', '  - { id: node-a2, path: ./nodes/node-a }    # first'));

    value(await host.call('removeNode', { id: 'node-e' }));
    expect(await readFile(configPath, 'utf8')).toBe(renamed.replace('  - { id: node-e, path: "./nodes/node e" }\n', ''));
  });

  it('a save made from a copy of the file that has changed since is refused, with the file as it is now', async () => {
    const loaded = value<ConfigSnapshot>(await host.call('loadConfig', {}));
    value(await host.call('upsertNode', { node: { id: 'node-f', path: './nodes/node-f' } }));
    const stale = value<SaveResult>(await host.call('saveConfig', { text: `${loaded.text}# my edit\n`, baseRevision: loaded.revision }));
    expect(stale.saved).toBe(false);
    expect(stale.conflict?.text).toMatch(/id: node-f/);
    expect(await readFile(configPath, 'utf8')).toMatch(/id: node-f/);
    const fresh = value<SaveResult>(await host.call('saveConfig', { text: `${stale.conflict!.text}# my edit\n`, baseRevision: stale.conflict!.revision }));
    expect(fresh.saved).toBe(true);
    expect(await readFile(configPath, 'utf8')).toMatch(/id: node-f[\s\S]*# my edit\n$/);
  });
});

describe('where reassemble may write', () => {
  let manifestPath = '';

  beforeAll(async () => {
    manifestPath = await ingestToEnd(host);
  });

  const reassemble = (outPath: string) => host.call('reassemble', { manifestPath, key: 'a.bin', outPath });

  it('writes under the project folder', async () => {
    const result = value<{ matched: boolean; outPath: string }>(await reassemble('rebuilt/a.bin'));
    expect(result).toMatchObject({ matched: true, outPath: join(dir, 'rebuilt', 'a.bin') });
  });

  it('refuses an absolute path outside it, a path climbing out of it, and a symlink leading out of it', async () => {
    await symlink(outside, join(dir, 'escape'));
    for (const out of [join(outside, 'a.bin'), '../a.bin', 'escape/a.bin', '/etc/cloud-ingest-test']) {
      const refused = await reassemble(out);
      expect(refused, out).toMatchObject({ ok: false, error: { code: 'forbidden', message: expect.stringContaining('outside the project folder') } });
    }
    expect((await readFile(join(outside, 'a.bin')).catch(() => undefined))).toBeUndefined();
  });

  it('writes under a folder the user picked in the dialog, and nowhere else', async () => {
    pickerAnswer = null;
    expect(value(await host.call('pickOutputFolder', {}))).toEqual({ path: null });
    expect(await reassemble(join(picked, 'a.bin'))).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    pickerAnswer = picked;
    expect(value(await host.call('pickOutputFolder', {}))).toEqual({ path: picked });
    expect(value<{ matched: boolean }>(await reassemble(join(picked, 'sub', 'a.bin'))).matched).toBe(true);
    expect(await reassemble(join(outside, 'a.bin'))).toMatchObject({ ok: false, error: { code: 'forbidden' } });
  });

  it('in serve mode (no dialog) the picker is refused and says why', async () => {
    const served = createHost({ configPath });
    try {
      expect(await served.call('pickOutputFolder', {})).toMatchObject({ ok: false, error: { code: 'forbidden', message: expect.stringContaining('no folder dialog') } });
      expect(value(await served.call('appInfo', {}))).toEqual({ mode: 'serve', projectDir: dir, canPickFolder: false });
      expect(await served.call('reassemble', { manifestPath, key: 'a.bin', outPath: join(picked, 'b.bin') })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    } finally {
      await served.close();
    }
  });
});
