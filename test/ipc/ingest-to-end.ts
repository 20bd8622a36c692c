// A run through the host, start to end, for tests that need a manifest of a real run.
import { expect } from 'vitest';
import type { EngineHost } from '../../electron/host/host.ts';
import type { IngestProgress } from '../../shared/ipc/contract.ts';
import { until } from '../helpers/until.ts';

/** Starts an ingest with the host's config, waits until it finished, and gives its manifest's path. */
export async function ingestToEnd(host: EngineHost): Promise<string> {
  let last: IngestProgress | undefined;
  const off = host.subscribe((event, payload) => {
    if (event === 'ingestProgress') last = payload as IngestProgress;
  });
  try {
    const started = await host.call('startIngest', {});
    if (!started.ok) throw new Error(`startIngest failed: ${JSON.stringify(started.error)}`);
    await until(() => last?.phase === 'finished' || last?.phase === 'failed', 'the ingest to end');
  } finally {
    off();
  }
  expect(last?.phase).toBe('finished');
  return last!.manifestPath!;
}
