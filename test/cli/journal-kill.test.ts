// A run killed (SIGKILL) the moment its journal appears can still be resumed: the journal never exists without
// its start line. The fault suite found runs killed in that window whose `--resume` failed with "no start line".
import { watch } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../shared/types.ts';
import { startCli } from '../helpers/cli-process.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

afterAll(removeTempDirs);

const JOURNAL = '.journal.jsonl';

const CONFIG = [
  'data_sources:',
  '  local: { type: local, path: ./data }',
  'ingestion: { chunk_size_mb: 1, max_concurrent_chunks: 2, retry_attempts: 1, retry_delay_seconds: 0.05, manifest_dir: ./runs }',
  'nodes:',
  '  - { id: n1, path: ./n1 }',
  '  - { id: n2, path: ./n2 }',
  '',
].join('\n');

/** Starts a run and SIGKILLs it as soon as a journal file shows up in `runs`; returns that journal's run id. */
async function killWhenJournalAppears(root: string): Promise<string> {
  const runs = join(root, 'runs');
  let runId: string | undefined;
  const run = startCli(root, ['run', '--config', 'config/data_sources.yml', '--json']);
  const watcher = watch(runs, (_event, name) => {
    if (runId === undefined && name?.endsWith(JOURNAL)) {
      run.child.kill('SIGKILL');
      runId = name.slice(0, -JOURNAL.length);
    }
  });
  const end = await run.exit;
  watcher.close();
  expect(end.signal, `the run ended before its journal appeared:\n${end.stderr.slice(-1000)}`).toBe('SIGKILL');
  expect(runId).toBeDefined();
  return runId!;
}

describe('a run killed as its journal appears', () => {
  it('is resumed by its run id to a complete manifest', { timeout: 120_000 }, async () => {
    for (let trial = 0; trial < 3; trial++) {
      const root = await tempDir('ci-journal-kill-');
      await mkdir(join(root, 'config'));
      await mkdir(join(root, 'data'));
      await mkdir(join(root, 'runs'));
      await writeFile(join(root, 'config', 'data_sources.yml'), CONFIG);
      for (let i = 0; i < 4; i++) await writeFile(join(root, 'data', `part-${i}.bin`), Buffer.alloc(1_500_000 + i, i + 1));

      const runId = await killWhenJournalAppears(root);
      const resumed = await startCli(root, ['run', '--config', 'config/data_sources.yml', '--resume', runId, '--json']).exit;
      expect(resumed.code, `trial ${trial}: ${resumed.stderr.slice(-2000)}`).toBe(0);
      const manifest = JSON.parse(await readFile(JSON.parse(resumed.stdout).manifest as string, 'utf8')) as Manifest;
      expect(manifest.runId).toBe(runId);
      expect(manifest.status).toBe('complete');
      expect(manifest.totals.chunks).toBe(8);
    }
  });
});
