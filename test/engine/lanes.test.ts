// Lanes: from a local folder to folder nodes, whole files of one chunk are queued to the hashing threads beyond
// max_concurrent_chunks (each thread copies one at a time), while the chunks of bigger files stay within it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HashPool } from '../../electron/engine/hash/pool.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { detection, MIB, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

const NODES = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];
const SMALL_FILES = 400;

/** The most chunks in flight at once (from 'reading' to their end), of those `counts` accepts. */
function mostInFlight(events: readonly IngestEvent[], counts: (file: string) => boolean): number {
  const inFlight = new Set<string>();
  let most = 0;
  for (const e of events) {
    if (e.type !== 'chunk' || !counts(e.file)) continue;
    if (e.state === 'reading') inFlight.add(e.id);
    if (e.state === 'verified' || e.state === 'failed' || e.state === 'skipped') inFlight.delete(e.id);
    most = Math.max(most, inFlight.size);
  }
  return most;
}

describe('delivery lanes, local folder to folder nodes', () => {
  it('queues small whole files to the hashing threads beyond max_concurrent_chunks, never a big file\'s chunks', async () => {
    const root = await tempProject();
    const data = join(root, 'data');
    await mkdir(join(data, 'small'), { recursive: true });
    for (let i = 0; i < SMALL_FILES; i++) await writeFile(join(data, 'small', `${String(i).padStart(4, '0')}.txt`), `sample ${i}\n`.repeat(1 + (i % 50)));
    await ensureDataFile(join(data, 'big.bin'), 6 * MIB, 'big');
    const loaded = await writeConfig(root, `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 1, max_concurrent_chunks: 2 }\n${nodesYaml(NODES)}`);
    const events: IngestEvent[] = [];
    // Two hashing threads, whatever this machine's core count: max_concurrent_chunks: 2 allows one file per thread.
    const hashPool = new HashPool(2);
    const { manifest } = await runIngest({ loaded, detection: detection('local'), hashPool, onEvent: (e) => events.push(e) }).finally(() => hashPool.close());

    expect(manifest.status).toBe('complete');
    expect(manifest.files).toHaveLength(SMALL_FILES + 1);
    expect(manifest.chunks.filter((c) => c.file === 'big.bin')).toHaveLength(6);
    expect(mostInFlight(events, (file) => file === 'big.bin')).toBeLessThanOrEqual(2);
    expect(mostInFlight(events, (file) => file !== 'big.bin')).toBeGreaterThan(2);
  });
});
