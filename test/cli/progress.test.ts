// The CLI's live progress counts each source byte once: with replicas the engine reports a chunk's bytes once per
// node it goes to, and the bar and its MB/s must not add those up. The events are a real run's (two copies of each
// chunk on two folder nodes), replayed into the view the CLI draws on a terminal.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProgressView } from '../../electron/cli/progress.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import type { IngestEvent } from '../../shared/types.ts';
import { detection, MIB, nodesYaml, tempProject, writeConfig } from '../engine/fixtures.ts';

const term = process.env.TERM;
beforeEach(() => void (process.env.TERM = 'xterm'));
afterEach(() => void (process.env.TERM = term));

/** A terminal that keeps what is drawn on it. */
function terminal(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = { isTTY: true, columns: 200, write: (s: string) => ((text += s), true) };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

/** The bytes the bar shows once `events` have happened (its last redraw), in MiB. */
function shownMiB(events: IngestEvent[]): number {
  const screen = terminal();
  const view = new ProgressView(screen.stream);
  for (const event of events) view.handle(event);
  view.stop();
  const last = screen.text().split('\r\x1b[2K').at(-1)!;
  const m = /(\d+(?:\.\d+)?) (B|KiB|MiB)\/\d/.exec(last);
  expect(m, `no byte count in ${JSON.stringify(last)}`).not.toBeNull();
  return Number(m![1]) / (m![2] === 'MiB' ? 1 : m![2] === 'KiB' ? 1024 : MIB);
}

describe('live progress with replicas', () => {
  it('shows the source bytes read, not bytes × replicas', async () => {
    const root = await tempProject();
    await ensureDataFile(join(root, 'data', 'big.bin'), 12 * MIB, 'big.bin');
    const nodes = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];
    const loaded = await writeConfig(
      root,
      `data_sources:\n  local: { type: local, path: ./data }\ningestion: { chunk_size_mb: 4, max_concurrent_chunks: 3, retry_attempts: 1, retry_delay_seconds: 0.05, replicas: 2 }\n${nodesYaml(nodes)}`,
    );
    const events: IngestEvent[] = [];
    const { manifest } = await runIngest({ loaded, detection: detection('local'), onEvent: (e) => events.push(e) });
    expect(manifest.status).toBe('complete');
    expect(manifest.chunks.every((c) => c.copies.length === 2)).toBe(true);

    // What was read from the source after each event: chunks done, plus each chunk in flight once (its furthest node).
    const done = new Set<string>();
    const inFlight = new Map<string, Map<string, number>>();
    let doneBytes = 0;
    let checked = 0;
    let sawPartial = false;
    for (const [i, event] of events.entries()) {
      if (event.type === 'bytes') {
        const perNode = inFlight.get(event.chunkId) ?? new Map<string, number>();
        perNode.set(event.nodeId, (perNode.get(event.nodeId) ?? 0) + event.bytes);
        inFlight.set(event.chunkId, perNode);
      } else if (event.type === 'chunk' && (event.state === 'verified' || event.state === 'skipped') && !done.has(event.id)) {
        done.add(event.id);
        inFlight.delete(event.id);
        doneBytes += event.size;
      } else if (event.type === 'chunk' && (event.state === 'retried' || event.state === 'moved' || event.state === 'failed')) {
        inFlight.delete(event.id);
      }
      if (event.type !== 'bytes') continue;
      let partial = 0;
      for (const perNode of inFlight.values()) partial += Math.max(...perNode.values());
      sawPartial ||= partial >= 0.5 * MIB;
      const read = Math.min(12 * MIB, doneBytes + partial) / MIB;
      // formatBytes shows one decimal.
      expect(shownMiB(events.slice(0, i + 1)), `after event ${i}: ${read.toFixed(2)} MiB read`).toBeLessThanOrEqual(read + 0.05);
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
    expect(sawPartial, 'the run never had a chunk part-way through: nothing was checked').toBe(true);
  });
});
