// @vitest-environment jsdom
import { describe, expect, it } from 'vitest';
import { CHUNK_VIEW_MAX_ROWS } from '../../shared/ipc/contract.ts';
import type { ChunkUpdate } from '../../shared/ipc/contract.ts';
import { batch, offlineStore } from '../test-support.ts';
import { countStates, ingestFigures, selectDirty } from './selectors.ts';

const chunk = (seq: number, state: ChunkUpdate['state'], nodeId = 'n1'): ChunkUpdate => ({ seq, id: `f_chunk_${seq}`, file: 'f', index: seq, offset: seq * 1000, size: 1000, state, nodeId, attempt: 1 });

describe('config slice', () => {
  it('tracks the draft against the saved text; dirtiness is derived, not stored', () => {
    const store = offlineStore();
    store.getState().applySnapshot({ path: '/p/c.yml', fileName: 'c.yml', text: 'a: 1\n', revision: 'r1', diagnostics: [] });
    expect(selectDirty(store.getState())).toBe(false);
    store.getState().setDraft('a: 2\n');
    expect(selectDirty(store.getState())).toBe(true);
    expect(store.getState().config.saved).toBe('a: 1\n');
    expect('dirty' in store.getState().config).toBe(false);
  });

  it('shows the transport error where the action happened', async () => {
    const store = offlineStore();
    await store.getState().loadConfig();
    expect(store.getState().config.error).toBe('not connected to the engine');
    expect(store.getState().config.loading).toBe(false);
    await store.getState().startIngest();
    expect(store.getState().ingest.error).toBe('not connected to the engine');
    expect(store.getState().ingest.starting).toBe(false);
  });
});

describe('ingest slice', () => {
  it('applies deltas by row, replaces rows on a full batch or a new run', () => {
    const store = offlineStore();
    store.getState().applyProgress(batch({ batch: 1, chunks: [chunk(0, 'reading'), chunk(1, 'queued')] }));
    store.getState().applyProgress(batch({ batch: 2, chunks: [chunk(1, 'verified'), chunk(2, 'sending', 'n2')], bytesDone: 2000, chunksDone: 1 }));
    let s = store.getState().ingest;
    expect(s.chunks.map((c) => c?.state)).toEqual(['reading', 'verified', 'sending']);
    expect(s.meta?.bytesDone).toBe(2000);
    expect('chunks' in (s.meta ?? {})).toBe(false);

    store.getState().applyProgress(batch({ batch: 3, full: true, chunks: [chunk(0, 'verified')] }));
    expect(store.getState().ingest.chunks.map((c) => c?.state)).toEqual(['verified']);

    store.getState().applyProgress(batch({ runId: 'run-2', batch: 1, chunks: [chunk(0, 'queued')] }));
    s = store.getState().ingest;
    expect(s.meta?.runId).toBe('run-2');
    expect(s.chunks.map((c) => c?.state)).toEqual(['queued']);
  });

  it('drops the rows the host says left the view, and the files no row shows any more; colours keep their place', () => {
    const store = offlineStore();
    const row = (seq: number, file: string): ChunkUpdate => ({ ...chunk(seq, 'verified'), id: `${file}_chunk_${seq}`, file });
    store.getState().applyProgress(batch({ batch: 1, chunks: [row(0, 'a'), row(1, 'b'), row(2, 'c')] }));
    expect(store.getState().ingest.files).toEqual([{ name: 'a', order: 0 }, { name: 'b', order: 1 }, { name: 'c', order: 2 }]);
    store.getState().applyProgress(batch({ batch: 2, chunks: [row(3, 'd')], droppedRows: [0, 1] }));
    const s = store.getState().ingest;
    expect(s.chunks.map((c) => c.seq)).toEqual([2, 3]);
    expect(s.files).toEqual([{ name: 'c', order: 2 }, { name: 'd', order: 3 }]);
    // A batch with no row change keeps the same rows and files (the picture does not redraw).
    store.getState().applyProgress(batch({ batch: 3, bytesDone: 5 }));
    expect(store.getState().ingest.chunks).toBe(s.chunks);
    expect(store.getState().ingest.files).toBe(s.files);
  });

  it('keeps the latest 200 log lines, with a mark wherever lines were dropped', () => {
    const store = offlineStore();
    for (let i = 0; i < 30; i += 1) {
      store.getState().applyProgress(batch({ batch: i + 1, logs: Array.from({ length: 10 }, (_, j) => ({ level: 'info' as const, message: `m${i}-${j}` })), logsDropped: i === 29 ? 7 : 0 }));
    }
    const logs = store.getState().ingest.logs;
    // 300 lines arrived, and the host left 7 out before the last batch's: the latest 200, a mark for the 100 before
    // them, and a mark where the 7 were.
    expect(logs.filter((l) => l.level !== 'dropped')).toHaveLength(200);
    expect(logs[0]).toEqual({ level: 'dropped', count: 100 });
    expect(logs[1]).toEqual({ level: 'info', message: 'm10-0' });
    expect(logs.at(-11)).toEqual({ level: 'dropped', count: 7 });
    expect(logs.at(-1)).toEqual({ level: 'info', message: 'm29-9' });
    // A full batch starts the log over: the host's latest lines, and how many came before them.
    store.getState().applyProgress(batch({ batch: 31, full: true, logs: [{ level: 'warn', message: 'late' }], logsDropped: 42 }));
    expect(store.getState().ingest.logs).toEqual([{ level: 'dropped', count: 42 }, { level: 'warn', message: 'late' }]);
  });

  it('holds at most CHUNK_VIEW_MAX_ROWS rows, whatever a batch carries', () => {
    const store = offlineStore();
    const updates = Array.from({ length: 100_000 }, (_, i) => chunk(i, i % 20 ? 'verified' : 'sending'));
    store.getState().applyProgress(batch({ totals: { files: 1, chunks: 100_000, bytes: 1e8 }, chunks: updates }));
    const rows = store.getState().ingest.chunks;
    expect(rows).toHaveLength(CHUNK_VIEW_MAX_ROWS);
    // Finished rows make way first (the lowest-numbered): every row in flight is kept.
    expect(countStates(rows)).toMatchObject({ sending: 5_000, verified: CHUNK_VIEW_MAX_ROWS - 5_000 });
    expect(rows.every((r, i) => i === 0 || r.seq > rows[i - 1]!.seq)).toBe(true);
  });
});

describe('ingest figures (derived)', () => {
  it('computes percent, speed and ETA from the counters', () => {
    const s = offlineStore();
    s.getState().applyProgress(batch({ bytesDone: 1000, chunksDone: 1, elapsedMs: 2000, totals: { files: 1, chunks: 4, bytes: 4000 } }));
    const f = ingestFigures(s.getState().ingest.meta);
    expect(f.percent).toBe(25);
    expect(f.bytesPerSecond).toBe(500);
    expect(f.etaSeconds).toBe(6);
    expect(f.running).toBe(true);
    expect(ingestFigures(null)).toEqual({ percent: 0, bytesPerSecond: 0, etaSeconds: null, running: false });
    s.getState().applyProgress(batch({ batch: 2, phase: 'finished', bytesDone: 4000, chunksDone: 4 }));
    expect(ingestFigures(s.getState().ingest.meta)).toMatchObject({ percent: 100, etaSeconds: null, running: false });
  });

  it('counts skipped bytes (a resumed run’s earlier work) towards completion and the ETA, not the speed', () => {
    const s = offlineStore();
    s.getState().applyProgress(batch({ bytesDone: 1000, bytesSkipped: 2000, chunksDone: 3, elapsedMs: 2000, totals: { files: 1, chunks: 8, bytes: 8000 } }));
    const f = ingestFigures(s.getState().ingest.meta);
    expect(f.percent).toBe(37.5);
    expect(f.bytesPerSecond).toBe(500);
    expect(f.etaSeconds).toBe(10);
  });
});

describe('resumable runs', () => {
  // The host's answers (real runs, unknown ids) are tested through the real host in test/ipc/resume.test.ts.
  it('shows why the list or a resume failed, where each is shown', async () => {
    const s = offlineStore();
    await s.getState().listResumable();
    expect(s.getState().resumable).toEqual({ runs: [], error: 'not connected to the engine' });
    await s.getState().resumeIngest('r-9');
    expect(s.getState().ingest).toMatchObject({ starting: false, error: 'not connected to the engine', meta: null });
  });
});
