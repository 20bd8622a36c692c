// A hashing thread that dies under a run costs a retry of the chunks it held, never a node (issue 12, finding 3b).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { detection, MIB, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

describe('a hashing thread lost mid-run', () => {
  it('with retry_attempts: 0, the chunks it held are sent again, no node is marked failed, and the run completes', async () => {
    const root = await tempProject();
    for (const name of ['a.bin', 'b.bin', 'c.bin']) await ensureDataFile(join(root, 'data', name), 24 * MIB, name);
    const nodes = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];
    // replicas: 2 sends every chunk through the teed tap; replicas: 1 from a local folder copies on the threads.
    for (const replicas of [1, 2]) {
      const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 2, max_concurrent_chunks: 4, retry_attempts: 0, retry_delay_seconds: 0.01, replicas: ${replicas} }\n${nodesYaml(nodes)}`;
      const loaded = await writeConfig(root, yaml);
      const pool = new HashPool();
      const events: IngestEvent[] = [];
      let killed = false;
      try {
        const result = await runIngest({
          loaded,
          detection: detection('local'),
          hashPool: pool,
          onEvent: (e) => {
            events.push(e);
            if (!killed && e.type === 'chunk' && e.state === 'sending' && e.index >= 3) {
              // Only a thread with a job open is stopped (none may be, between two chunks): try again on the next one.
              killed = pool.jobsPerThread().some((jobs) => jobs > 0);
              if (killed) void pool.terminateThread();
            }
          },
        });
        expect(killed).toBe(true);
        expect(pool.lostThreads).toBeGreaterThanOrEqual(1);
        expect(result.manifest.status).toBe('complete');
        expect(events.filter((e) => e.type === 'node' && e.status.state !== 'healthy' && e.status.error !== 'not probed yet')).toEqual([]);
        expect(result.manifest.chunks.every((c) => c.movedFrom.length === 0)).toBe(true);
        const report = await verifyRun({ loaded, manifestPath: result.manifestPath });
        expect(report.problems).toEqual([]);
      } finally {
        await pool.close();
      }
    }
  });
});
