// The host's progress folding: however many engine events arrive between two flushes, one batch goes out,
// with each row of the chunk view once (its latest state), the rows that left the view, and absolute counters.
import { describe, expect, it } from 'vitest';
import { BatchPacer, MAX_ROWS_PER_BATCH, ProgressFolder } from '../../electron/host/progress.ts';
import { CHUNK_VIEW_LIMITS } from '../../shared/ipc/contract.ts';
import type { ChunkUpdate, IngestProgress } from '../../shared/ipc/contract.ts';
import type { ChunkState, IngestEvent } from '../../shared/types.ts';

const startedWith = (chunks: number): IngestEvent => ({ type: 'run-started', runId: 'r', files: 1, chunks, bytes: chunks * 1000, nodes: [], source: { kind: 'local', location: '/src' } });
const started = startedWith(10_000);
const chunk = (i: number, state: ChunkState, nodeId = `n${i % 3}`): IngestEvent => ({ type: 'chunk', id: `f_chunk_${i}`, file: 'f', index: i, size: 1000, state, nodeId, attempt: 1 });

/** Flushes until nothing is left; every batch within the row cap. */
function drain(folder: ProgressFolder): IngestProgress[] {
  const out: IngestProgress[] = [];
  for (let b = folder.flush(); b; b = folder.flush()) {
    expect(b.chunks.length).toBeLessThanOrEqual(MAX_ROWS_PER_BATCH);
    out.push(b);
  }
  return out;
}

describe('ProgressFolder', () => {
  it('folds 40,000 events into batches of at most MAX_ROWS_PER_BATCH rows, each row once, in its latest state', () => {
    const folder = new ProgressFolder('app-run', { chunkSize: 1000 });
    folder.apply(started);
    for (let i = 0; i < 10_000; i += 1) {
      folder.apply(chunk(i, 'queued'));
      folder.apply(chunk(i, 'reading'));
      folder.apply({ type: 'bytes', chunkId: `f_chunk_${i}`, nodeId: `n${i % 3}`, bytes: 1000 });
      folder.apply(chunk(i, i === 7 ? 'failed' : 'verified'));
    }
    const batches = drain(folder);
    expect(batches.map((b) => b.batch)).toEqual(batches.map((_, i) => i + 1));
    const batch = batches[0]!;
    expect(batch.phase).toBe('running');
    const rows = batches.flatMap((b) => b.chunks);
    // The chunk view: the latest 5,000 finished chunks and the failed one; the counters below cover all 10,000.
    expect(rows).toHaveLength(CHUNK_VIEW_LIMITS.finished + 1);
    expect(new Set(rows.map((c) => c.seq)).size).toBe(rows.length);
    expect(rows.filter((c) => c.state === 'verified').every((c) => c.seq >= 10_000 - CHUNK_VIEW_LIMITS.finished)).toBe(true);
    expect(rows.find((c) => c.seq === 7)).toMatchObject({ seq: 7, state: 'failed', offset: 7000 });
    // Rows that left the view before they were sent are never named as dropped.
    expect(batches.flatMap((b) => b.droppedRows)).toEqual([]);
    // Counters are whole from the first batch on, whatever rows are still to come.
    expect(batch.states).toMatchObject({ verified: 9_999, failed: 1, queued: 0 });
    expect(batch.chunksDone).toBe(9_999);
    expect(batch.chunksFailed).toBe(1);
    expect(batch.bytesDone).toBe(10_000_000);
    expect(batch.nodeBytes).toEqual({ n0: 3_334_000, n1: 3_333_000, n2: 3_333_000 });
    expect(batch.nodeChunks.n1).toBe(3_332); // chunk 7 (on n1) failed
    expect(batch.nodeChunks.n0! + batch.nodeChunks.n1! + batch.nodeChunks.n2!).toBe(9_999);
    expect(folder.flush()).toBeUndefined();
  });

  it('counts queued chunks without listing them: a run’s first batch carries the chunks that moved', () => {
    const folder = new ProgressFolder('big-run');
    folder.apply(started);
    // The engine names the chunks of the first window of its plan as queued; the run's other 8,000 are queued too.
    for (let i = 0; i < 2_000; i += 1) folder.apply(chunk(i, 'queued'));
    folder.apply(chunk(1_999, 'reading'));
    const first = folder.flush()!;
    expect(first.chunks).toEqual([expect.objectContaining({ seq: 1_999, state: 'reading' })]);
    expect(first.states).toMatchObject({ queued: 9_999, reading: 1 });
    expect(JSON.stringify(first).length).toBeLessThan(2_000);
    expect(drain(folder)).toEqual([]);
  });

  it('marks every chunk still waiting or in flight as cancelled when the run is cancelled or stops', () => {
    for (const end of ['finished-cancelled', 'thrown'] as const) {
      const folder = new ProgressFolder('stopped');
      folder.apply(started);
      folder.apply(chunk(0, 'verified'));
      folder.apply(chunk(1, 'sending'));
      folder.apply(chunk(2, 'reading'));
      folder.apply(chunk(3, 'queued'));
      folder.apply(chunk(4, 'retried'));
      drain(folder);
      if (end === 'thrown') folder.fail('cancelled by the user', true);
      else folder.apply({ type: 'run-finished', runId: 'r', status: 'cancelled', manifestPath: '/m.json', elapsedMs: 5, bytes: 0 });
      const rows: ChunkUpdate[] = drain(folder).flatMap((b) => b.chunks);
      // Chunk 3 was still queued: it is counted as cancelled but, like every queued chunk, has no row. So are the
      // run's 9,995 chunks no event named yet.
      expect(rows.map((c) => [c.seq, c.state]), end).toEqual([
        [1, 'cancelled'],
        [2, 'cancelled'],
        [4, 'cancelled'],
      ]);
      expect(folder.snapshot().states).toMatchObject({ verified: 1, cancelled: 9_999, sending: 0, queued: 0, reading: 0, retried: 0 });
      expect(folder.snapshot().nodeStates).toEqual({
        n0: expect.objectContaining({ verified: 1, cancelled: 1, reading: 0, queued: 0 }),
        n1: expect.objectContaining({ cancelled: 2, sending: 0, retried: 0 }),
        n2: expect.objectContaining({ cancelled: 1, reading: 0 }),
      });
    }
  });

  it('reports a run as starting until its first chunk moves (a resumed run reads its journal first)', () => {
    const folder = new ProgressFolder('resumed', { resumed: true });
    folder.apply(started);
    folder.apply(chunk(0, 'queued'));
    expect(folder.flush()).toMatchObject({ phase: 'starting', resumed: true, totals: { chunks: 10_000 } });
    folder.apply({ type: 'chunk', id: 'f_chunk_0', file: 'f', index: 0, size: 1000, state: 'skipped', nodeId: 'n1', attempt: 0 });
    expect(folder.flush()).toMatchObject({ phase: 'running', chunksDone: 1 });
  });

  it('sends only what changed since the last batch, keeping each chunk’s row', () => {
    const folder = new ProgressFolder('app-run');
    folder.apply(started);
    folder.apply(chunk(0, 'reading'));
    folder.apply(chunk(1, 'reading'));
    expect(folder.flush()!.chunks.map((c) => c.seq)).toEqual([0, 1]);
    folder.apply(chunk(1, 'retried'));
    folder.apply(chunk(1, 'verified', 'n2'));
    const second = folder.flush()!;
    expect(second.batch).toBe(2);
    expect(second.chunks).toEqual([expect.objectContaining({ seq: 1, state: 'verified', nodeId: 'n2' })]);
    expect(second.retries).toBe(1);
    const full = folder.snapshot();
    expect(full.full).toBe(true);
    expect(full.chunks.map((c) => [c.seq, c.state])).toEqual([
      [0, 'reading'],
      [1, 'verified'],
    ]);
  });

  it('counts a chunk once per node that verified a copy (replicas)', () => {
    const folder = new ProgressFolder('replicas');
    folder.apply(started);
    folder.apply(chunk(0, 'verified', 'n1'));
    folder.apply(chunk(0, 'verified', 'n2'));
    folder.apply(chunk(0, 'verified', 'n2'));
    expect(folder.flush()!.nodeChunks).toEqual({ n1: 1, n2: 1 });
  });

  it('counts chunks skipped because a node already holds them (a resumed run) apart from the bytes sent', () => {
    const folder = new ProgressFolder('resumed');
    folder.apply(started);
    const skipped = (i: number): IngestEvent => ({ type: 'chunk', id: `f_chunk_${i}`, file: 'f', index: i, size: 1000, state: 'skipped', nodeId: 'n1', attempt: 0 });
    folder.apply(skipped(0));
    folder.apply(skipped(0));
    folder.apply(skipped(1));
    folder.apply(chunk(2, 'sending', 'n2'));
    folder.apply({ type: 'bytes', chunkId: 'f_chunk_2', nodeId: 'n2', bytes: 1000 });
    folder.apply(chunk(2, 'verified', 'n2'));
    const batch = folder.flush()!;
    expect(batch.chunksDone).toBe(3);
    expect(batch.bytesDone).toBe(1000);
    expect(batch.bytesSkipped).toBe(2000);
    expect(batch.nodeChunks).toEqual({ n1: 2, n2: 1 });
    expect(batch.nodeBytes).toEqual({ n1: 2000, n2: 1000 });
  });

  it('names the rows that left the view in the next batch, once, and only rows it had sent', () => {
    const folder = new ProgressFolder('small-view', { rows: { inFlight: 2, finished: 3, failed: 1 } });
    folder.apply(started);
    for (let i = 0; i < 3; i += 1) folder.apply(chunk(i, 'verified'));
    expect(folder.flush()!.chunks.map((c) => c.seq)).toEqual([0, 1, 2]);
    folder.apply(chunk(3, 'verified'));
    folder.apply(chunk(4, 'verified'));
    const next = folder.flush()!;
    expect(next.chunks.map((c) => c.seq)).toEqual([3, 4]);
    expect(next.droppedRows).toEqual([0, 1]);
    // Chunk 5 enters and leaves the view between two batches: never sent, so never dropped.
    for (let i = 5; i < 9; i += 1) folder.apply(chunk(i, 'verified'));
    const after = folder.flush()!;
    expect(after.chunks.map((c) => c.seq)).toEqual([6, 7, 8]);
    expect(after.droppedRows).toEqual([2, 3, 4]);
    // The first failed chunk is kept; a later one is counted, not listed. In flight: the latest two.
    folder.apply(chunk(9, 'failed'));
    folder.apply(chunk(10, 'failed'));
    for (let i = 11; i < 14; i += 1) folder.apply(chunk(i, 'sending'));
    const last = folder.flush()!;
    expect(last.chunks.map((c) => [c.seq, c.state])).toEqual([
      [9, 'failed'],
      [12, 'sending'],
      [13, 'sending'],
    ]);
    expect(last.states).toMatchObject({ verified: 9, failed: 2, sending: 3 });
    expect(folder.snapshot().chunks.map((c) => c.seq)).toEqual([6, 7, 8, 9, 12, 13]);
    expect(folder.flush()).toBeUndefined();
  });

  it('keeps the counts exact when a chunk whose row left the view is sent again (a node died)', () => {
    const folder = new ProgressFolder('resend', { rows: { inFlight: 10, finished: 2, failed: 10 } });
    folder.apply(startedWith(6));
    for (let i = 0; i < 6; i += 1) {
      folder.apply(chunk(i, 'queued'));
      folder.apply(chunk(i, 'reading', 'n1'));
      folder.apply(chunk(i, 'verified', 'n1'));
    }
    // Chunk 0 left the view long ago; n1 died, so it goes again to n2.
    folder.apply({ type: 'node', status: { id: 'n1', kind: 'folder', location: '/n1', state: 'unhealthy', checkedAt: new Date().toISOString() } });
    folder.apply(chunk(0, 'reading', 'n2'));
    let b = drain(folder).at(-1)!;
    expect(b.states).toMatchObject({ verified: 5, reading: 1, queued: 0 });
    expect(b.chunksDone).toBe(5);
    expect(b.nodeStates.n1).toMatchObject({ verified: 5, reading: 0 });
    expect(b.nodeStates.n2).toMatchObject({ reading: 1 });
    folder.apply(chunk(0, 'moved', 'n0'));
    folder.apply(chunk(0, 'verified', 'n0'));
    b = drain(folder).at(-1)!;
    expect(b.states).toMatchObject({ verified: 6, reading: 0, moved: 0 });
    expect(b.chunksDone).toBe(6);
    expect(b.nodeChunks).toEqual({ n1: 6, n0: 1 });
    expect(b.nodeStates.n0).toMatchObject({ verified: 1 });
    expect(folder.snapshot().chunks.find((c) => c.seq === 0)).toMatchObject({ state: 'verified', nodeId: 'n0', moved: true });
  });

  it('sends each batch’s latest 50 log lines, counts the rest, and gives a late renderer the latest 200', () => {
    const folder = new ProgressFolder('loud');
    folder.apply(started);
    for (let i = 0; i < 120; i += 1) folder.apply({ type: 'log', level: 'warn', message: `w${i}` });
    const first = folder.flush()!;
    expect(first.logs).toHaveLength(50);
    expect(first.logs[0]!.message).toBe('w70');
    expect(first.logsDropped).toBe(70);
    for (let b = 0; b < 10; b += 1) {
      for (let i = 0; i < 50; i += 1) folder.apply({ type: 'file', key: `f${b}-${i}`, status: i % 2 ? 'complete' : 'failed', error: 'gone' });
      expect(folder.flush()).toMatchObject({ logsDropped: 0, logs: expect.arrayContaining([{ level: 'error', message: `f${b}-0: gone` }]) });
    }
    const snap = folder.snapshot();
    // 120 warnings (70 never sent) and 250 failed files: the latest 200 lines, the 170 before them counted.
    expect(snap).toMatchObject({ filesDone: 250, filesFailed: 250, logsDropped: 170 });
    expect(snap.logs).toHaveLength(200);
    expect(snap.logs.at(-1)!.message).toBe('f9-48: gone');
  });

  it('ends with the run, or with the error that stopped it', () => {
    const ok = new ProgressFolder('a');
    ok.apply(started);
    ok.apply({ type: 'run-finished', runId: 'r', status: 'complete', manifestPath: '/m.json', elapsedMs: 5, bytes: 0 });
    expect(ok.ended).toBe(true);
    expect(ok.flush()).toMatchObject({ phase: 'finished', status: 'complete', manifestPath: '/m.json' });

    const failed = new ProgressFolder('b');
    failed.fail('No healthy node. Fix: start a node.', false);
    expect(failed.flush()).toMatchObject({ phase: 'failed', error: 'No healthy node. Fix: start a node.', logs: [{ level: 'error', message: 'No healthy node. Fix: start a node.' }] });

    const cancelled = new ProgressFolder('c');
    cancelled.apply(started);
    cancelled.fail('cancelled by the user', true);
    expect(cancelled.flush()!.phase).toBe('cancelled');
  });
});

describe('BatchPacer', () => {
  it('sends at most one batch per interval however often it is poked, and drains what is left', async () => {
    const sentAt: number[] = [];
    let left = 5;
    const pacer = new BatchPacer(() => {
      sentAt.push(Date.now());
      left = Math.max(0, left - 1);
      return left > 0;
    }, 40);
    const poking = setInterval(() => pacer.poke(), 1);
    await new Promise((r) => setTimeout(r, 150));
    clearInterval(poking);
    await pacer.idle();
    expect(left).toBe(0);
    for (let i = 1; i < sentAt.length; i += 1) expect(sentAt[i]! - sentAt[i - 1]!).toBeGreaterThanOrEqual(38);
    expect(sentAt.length).toBeLessThanOrEqual(6);
  });
});
