// Listing runs reads each manifest's head (up to its `files`), not the whole file: a million-file run's manifest
// is hundreds of MB, and `cloud-ingest runs`, `verify` (finding the latest run) and the app's run list read every
// manifest in the folder.
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { ManifestError, readManifestHead, StreamedArray, writeJsonAtomic } from '../../electron/engine/manifest.ts';
import { tempDir } from '../helpers/temp.ts';

const CLI = join(import.meta.dirname, '..', '..', 'bin', 'cloud-ingest.js');

function manifestOf(runId: string, files: number, extra: Record<string, unknown> = {}) {
  return {
    version: 1,
    runId,
    startedAt: '2026-12-06T10:00:00.000Z',
    finishedAt: '2026-12-06T10:01:00.000Z',
    status: 'complete',
    ...extra,
    files: new StreamedArray(function* () {
      for (let i = 0; i < files; i++) yield { key: `train/${String(i).padStart(7, '0')}.jpg`, size: 8192, checksum: 'd41d8cd98f00b204e9800998ecf8427e', chunkCount: 1, status: 'complete' };
    }),
    chunks: [],
    totals: { files, chunks: 0 },
  };
}

describe('a manifest head', () => {
  it('reads the members before `files`, in the one-line-per-entry layout and in the older indented one', async () => {
    const dir = await tempDir('ci-manifest-head-');
    // A head longer than one read block, with multi-byte characters across the block boundary.
    const configPath = `/data/${'ünïcödé-'.repeat(9000)}config.yml`;
    await writeJsonAtomic(join(dir, 'new.json'), manifestOf('r-new', 3, { configPath }));
    expect(await readManifestHead(join(dir, 'new.json'))).toMatchObject({ version: 1, runId: 'r-new', status: 'complete', configPath });
    const older = { version: 1, runId: 'r-old', startedAt: '2026-01-01T00:00:00.000Z', status: 'partial', files: [{ key: 'a', size: 1 }], chunks: [] };
    await writeFile(join(dir, 'old.json'), JSON.stringify(older, null, 2));
    expect(await readManifestHead(join(dir, 'old.json'))).toEqual({ version: 1, runId: 'r-old', startedAt: '2026-01-01T00:00:00.000Z', status: 'partial' });
  });

  it('names the file and the fix for a file that is not a manifest', async () => {
    const dir = await tempDir('ci-manifest-head-');
    await writeFile(join(dir, 'other.json'), '{\n  "name": "x",\n  "files": []\n}\n');
    await expect(readManifestHead(join(dir, 'other.json'))).rejects.toThrow(ManifestError);
    await expect(readManifestHead(join(dir, 'other.json'))).rejects.toThrow(/other\.json is not a Cloud Ingest manifest.*Fix:/);
  });

  it('`cloud-ingest runs` lists a 400,000-file run within a 40 MB heap', async () => {
    const root = await tempDir('ci-manifest-head-cli-');
    await mkdir(join(root, 'config'), { recursive: true });
    await mkdir(join(root, 'data'), { recursive: true });
    await writeFile(join(root, 'config', 'data_sources.yml'), 'data_sources:\n  local: { type: local, path: ./data }\nnodes:\n  - { id: n1, path: ./nodes/n1 }\n');
    await mkdir(join(root, '.cloud-ingest', 'runs'), { recursive: true });
    await writeJsonAtomic(join(root, '.cloud-ingest', 'runs', 'r-big.json'), manifestOf('r-big', 400_000));
    const listed = spawnSync(process.execPath, [...ENGINE_NODE_FLAGS, '--max-old-space-size=40', CLI, 'runs', '--config', 'config/data_sources.yml', '--json'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(listed.stderr).toBe('');
    expect(listed.status).toBe(0);
    expect(listed.stdout).toContain('r-big');
  }, 120_000);
});
