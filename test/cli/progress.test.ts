// The CLI's live progress counts each source byte once: with replicas the engine reports a chunk's bytes once per
// node it goes to, and the bar and its MB/s must not add those up. The events are a real run's (two copies of each
// chunk on two folder nodes), replayed into the view the CLI draws on a terminal.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_TRACKED_IN_FLIGHT, ProgressView } from '../../electron/cli/progress.ts';
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

describe('live progress over 200,000 chunks in 100,000 files', () => {
  it('counts every chunk and keeps only the chunks in flight', () => {
    const screen = terminal();
    const view = new ProgressView(screen.stream);
    const CHUNKS = 200_000;
    const chunk = (i: number, state: 'queued' | 'reading' | 'sending' | 'verified' | 'retried' | 'failed'): IngestEvent => ({ type: 'chunk', id: `f${i >> 1}_chunk_${i & 1}`, file: `f${i >> 1}`, index: i & 1, size: 1000, state, nodeId: `n${i % 3}`, attempt: 1 });
    const bytes = (i: number, n: number): IngestEvent => ({ type: 'bytes', chunkId: `f${i >> 1}_chunk_${i & 1}`, nodeId: `n${i % 3}`, bytes: n });
    view.handle({ type: 'run-started', runId: 'r', files: 0, chunks: 0, bytes: 0, nodes: [], source: { kind: 'local', location: '/src' } });
    view.handle({ type: 'listed', files: CHUNKS / 2, chunks: CHUNKS, bytes: CHUNKS * 1000, done: true });
    for (let i = 0; i < CHUNKS; i += 1) view.handle(chunk(i, 'queued'));
    let maxTracked = 0;
    let verified = 0;
    const perNode = [0, 0, 0];
    for (let i = 0; i < CHUNKS; i += 1) {
      view.handle(chunk(i, 'reading'));
      view.handle(bytes(i, 400));
      // Every tenth chunk's delivery ends without a final state (a re-send that failed): never let go of otherwise.
      if (i % 10 === 9) continue;
      view.handle(bytes(i, 600));
      view.handle(chunk(i, 'sending'));
      if (i % 1000 === 0) view.handle(chunk(i, 'failed'));
      else {
        view.handle(chunk(i, 'verified'));
        verified += 1;
        perNode[i % 3]! += 1;
      }
      maxTracked = Math.max(maxTracked, view.chunksInFlight);
    }
    for (let f = 0; f < CHUNKS / 2; f += 1) view.handle({ type: 'file', key: `f${f}`, status: f % 500 ? 'complete' : 'failed', error: 'gone' });
    expect(maxTracked).toBeLessThanOrEqual(MAX_TRACKED_IN_FLIGHT);
    expect(view.chunksInFlight).toBe(MAX_TRACKED_IN_FLIGHT);
    view.handle({ type: 'run-finished', runId: 'r', status: 'partial', manifestPath: '/m.json', elapsedMs: 1, bytes: 0 });
    expect(view.chunksInFlight).toBe(0);
    const last = screen.text().split('\r\x1b[2K').at(-1)!;
    expect(last).toContain(`chunks ${verified}/${CHUNKS}`);
    for (const n of [0, 1, 2]) expect(last).toContain(` n${n}:${perNode[n]}`);
    expect(screen.text().split('\n').filter((l) => l.includes('failed: f')).length).toBe(CHUNKS / 2 / 500);
  });
});
