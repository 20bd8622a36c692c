// A hashing thread that dies under a run costs a retry of the chunks it held, never a node (issue 12, finding 3b);
// a chunk that keeps stopping its thread fails its own file, and still no node.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import type { IngestResult } from '../../electron/engine/ingest.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { detection, MIB, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

const NODES = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];

/** A project with these files (name → bytes) in ./data and two folder nodes. */
async function projectWith(files: Record<string, number>): Promise<string> {
  const root = await tempProject();
  for (const [name, size] of Object.entries(files)) await ensureDataFile(join(root, 'data', name), size, name);
  return root;
}

/** A run of the project with these ingestion settings on its own pool, `onEvent` seeing every event with the pool. */
async function ingest(root: string, ingestion: string, onEvent: (e: IngestEvent, pool: HashPool) => void): Promise<{ loaded: LoadedConfig; result: IngestResult; events: IngestEvent[] }> {
  const loaded = await writeConfig(root, `data_sources:\n  local: { type: local, path: ./data }\ningestion: { ${ingestion} }\n${nodesYaml(NODES)}`);
  const pool = new HashPool(2);
  const events: IngestEvent[] = [];
  try {
    const seen = (e: IngestEvent): void => {
      events.push(e);
      onEvent(e, pool);
    };
    const result = await runIngest({ loaded, detection: detection('local'), hashPool: pool, onEvent: seen });
    expect(pool.lostThreads).toBeGreaterThanOrEqual(1);
    return { loaded, result, events };
  } finally {
    await pool.close();
  }
}

/** No node was marked anything but healthy, no chunk moved, and every copy the manifest names verifies. */
async function expectNoNodeBlamed(loaded: LoadedConfig, result: IngestResult, events: IngestEvent[]): Promise<void> {
  expect(events.filter((e) => e.type === 'node' && e.status.state !== 'healthy' && e.status.error !== 'not probed yet')).toEqual([]);
  expect(result.manifest.chunks.every((c) => c.movedFrom.length === 0)).toBe(true);
  expect((await verifyRun({ loaded, manifestPath: result.manifestPath })).problems).toEqual([]);
}

describe('a hashing thread lost mid-run', () => {
  it('with retry_attempts: 0, the chunks it held are sent again, no node is marked failed, and the run completes', async () => {
    const root = await projectWith({ 'a.bin': 24 * MIB, 'b.bin': 24 * MIB, 'c.bin': 24 * MIB });
    // replicas: 2 sends every chunk through the teed tap; replicas: 1 from a local folder copies on the threads.
    for (const replicas of [1, 2]) {
      let killed = false;
      const { loaded, result, events } = await ingest(root, `chunk_size_mb: 2, max_concurrent_chunks: 4, retry_attempts: 0, retry_delay_seconds: 0.01, replicas: ${replicas}`, (e, pool) => {
        if (!killed && e.type === 'chunk' && e.state === 'sending' && e.index >= 3) {
          // Only a thread with a job open is stopped (none may be, between two chunks): try again on the next one.
          killed = pool.jobsPerThread().some((jobs) => jobs > 0);
          if (killed) void pool.terminateThread();
        }
      });
      expect(killed).toBe(true);
      expect(result.manifest.status).toBe('complete');
      await expectNoNodeBlamed(loaded, result, events);
    }
  });

  it('a chunk under which the thread is lost every time fails alone: its file fails, no node is blamed, the other files complete', async () => {
    const root = await projectWith({ 'a.bin': 4 * MIB, 'bad.bin': 16 * MIB, 'c.bin': 4 * MIB });
    let kills = 0;
    let killedThisAttempt = false;
    // One chunk at a time, so a thread stopped while bad.bin's chunk is copied holds no other chunk's job.
    const { loaded, result, events } = await ingest(root, 'chunk_size_mb: 16, max_concurrent_chunks: 1, retry_attempts: 2, retry_delay_seconds: 0.01', (e, pool) => {
      // The first progress of each copy of bad.bin's chunk, while its job is open on a thread: that thread is
      // stopped, as a chunk that crashes its thread (or runs it out of memory) every time would stop it.
      if (e.type === 'bytes' && e.chunkId.startsWith('bad.bin') && !killedThisAttempt && pool.jobsPerThread().some((jobs) => jobs > 0)) {
        killedThisAttempt = true;
        kills++;
        void pool.terminateThread();
      }
      if (e.type === 'chunk' && (e.state === 'retried' || e.state === 'moved') && e.file === 'bad.bin') killedThisAttempt = false;
    });
    expect(kills).toBe(4);
    expect(result.manifest.status).toBe('partial');
    const byKey = new Map(result.manifest.files.map((f) => [f.key, f]));
    expect(byKey.get('a.bin')?.status).toBe('complete');
    expect(byKey.get('c.bin')?.status).toBe('complete');
    expect(byKey.get('bad.bin')?.status).toBe('failed');
    expect(byKey.get('bad.bin')?.error).toMatch(/^chunk bad.bin\S*: the hashing thread copying it stopped 4 times .*no node is blamed/);
    expect(result.failedFiles.count).toBe(1);
    await expectNoNodeBlamed(loaded, result, events);
  });
});
