// A run of 200,000 chunks in 100,000 files, folded by the host's ProgressFolder and applied to the renderer's real
// store batch by batch as the app does: every count exact for the whole run, while the rows, files and log lines
// the store holds stay under their caps, and mirror the host's view of the run.
import { describe, expect, it } from 'vitest';
import { ProgressFolder } from '../../electron/host/progress.ts';
import { droppedLines } from '../../renderer/store/ingest-rows.ts';
import { emptyStates } from '../../renderer/store/selectors.ts';
import { offlineStore } from '../../renderer/test-support.ts';
import { CHUNK_VIEW_LIMITS, CHUNK_VIEW_MAX_ROWS, LOG_LINES_KEPT } from '../../shared/ipc/contract.ts';
import type { ChunkRowState } from '../../shared/ipc/contract.ts';
import type { ChunkState, IngestEvent } from '../../shared/types.ts';

const CHUNKS = 200_000;
const FILES = 100_000;
const NODES = ['n0', 'n1', 'n2'];
/** Chunks in flight at once, as the engine's lanes would have them. */
const LANES = 24;

const fileOf = (i: number): string => `dir/file-${i >> 1}.bin`;
const idOf = (i: number): string => `${fileOf(i)}_chunk_${i & 1}`;
const retriedAt = (i: number): boolean => i % 997 === 3;
const failsAt = (i: number): boolean => i % 4_001 === 17 && !retriedAt(i);

describe('the app’s progress over a 200,000-chunk run', () => {
  it('keeps every count exact and every row, file and log line it holds under its cap', () => {
    const folder = new ProgressFolder('big', { chunkSize: 1000 });
    const store = offlineStore();
    // The test's own record of every chunk, to check the counts against.
    const truth = new Map<string, { state: ChunkRowState; nodeId?: string }>();
    const copies = new Set<string>();
    const finishedOrder: number[] = [];
    let chunkEvents = 0;
    let fileEvents = 0;
    let logLines = 0;
    let retries = 0;
    let maxRows = 0;
    let maxFiles = 0;

    const deliver = (): void => {
      const batch = folder.flush();
      if (!batch) return;
      store.getState().applyProgress(batch);
      const { chunks, files, logs } = store.getState().ingest;
      maxRows = Math.max(maxRows, chunks.length);
      maxFiles = Math.max(maxFiles, files.length);
      expect(logs.filter((l) => l.level !== 'dropped').length).toBeLessThanOrEqual(LOG_LINES_KEPT);
    };
    const drain = (): void => {
      for (let i = 0; i < 1_000 && folder.pending; i += 1) deliver();
      expect(folder.pending).toBe(false);
    };
    let sinceBatch = 0;
    const emit = (e: IngestEvent): void => {
      folder.apply(e);
      if (e.type === 'chunk') chunkEvents += 1;
      if (e.type === 'file') fileEvents += 1;
      if (e.type === 'log' || (e.type === 'file' && e.status === 'failed')) logLines += 1;
      // A batch every 2,000 events: far more change between two batches than one batch carries.
      if (++sinceBatch === 2_000) {
        sinceBatch = 0;
        deliver();
      }
    };
    const chunk = (i: number, state: ChunkState, nodeId?: string, attempt = 1): void => {
      const before = truth.get(idOf(i));
      const node = nodeId ?? before?.nodeId;
      truth.set(idOf(i), { state, ...(node !== undefined ? { nodeId: node } : {}) });
      if ((state === 'verified' || state === 'skipped') && node !== undefined) copies.add(`${i}@${node}`);
      if (state === 'verified' || state === 'failed') finishedOrder.push(i);
      emit({ type: 'chunk', id: idOf(i), file: fileOf(i), index: i & 1, size: 1000, state, attempt, ...(nodeId !== undefined ? { nodeId } : {}), ...(state === 'failed' ? { error: 'source gone' } : {}) });
    };
    const expectExactCounts = (): void => {
      const meta = store.getState().ingest.meta!;
      const states = emptyStates();
      const perNode = new Map(NODES.map((n) => [n, emptyStates()]));
      for (const { state, nodeId } of truth.values()) {
        states[state] += 1;
        if (nodeId !== undefined) perNode.get(nodeId)![state] += 1;
      }
      states.queued += CHUNKS - truth.size;
      expect(meta.states).toEqual(states);
      for (const [nodeId, counts] of perNode) expect(meta.nodeStates[nodeId] ?? emptyStates(), nodeId).toEqual(counts);
      expect(meta.chunksDone).toBe(states.verified + states.skipped);
      expect(meta.chunksFailed).toBe(states.failed);
      expect(meta.retries).toBe(retries);
      const held = Object.fromEntries(NODES.map((n) => [n, [...copies].filter((c) => c.endsWith(`@${n}`)).length]));
      expect(meta.nodeChunks).toEqual(held);
    };
    /** The store's rows are the host's view: every chunk in flight, each row in its chunk's latest state. */
    const expectRowsMirrorTheRun = (): void => {
      const rows = store.getState().ingest.chunks;
      expect(rows).toEqual(folder.snapshot().chunks);
      for (const row of rows) expect(row.state, row.id).toBe(truth.get(row.id)!.state);
      const inFlight = [...truth.values()].filter((c) => c.state === 'reading' || c.state === 'sending' || c.state === 'retried').length;
      expect(rows.filter((r) => r.state === 'reading' || r.state === 'sending' || r.state === 'retried')).toHaveLength(Math.min(inFlight, CHUNK_VIEW_LIMITS.inFlight));
    };

    emit({ type: 'run-started', runId: 'big', files: FILES, chunks: CHUNKS, bytes: CHUNKS * 1000, nodes: [], source: { kind: 'local', location: '/src' } });
    const failedFiles = new Set<string>();
    for (let t = 0; t < CHUNKS + LANES; t += 1) {
      // The engine plans the run 2,048 chunks at a time and names a window's chunks as queued when it plans it.
      if (t % 2_048 === 0) for (let i = t; i < Math.min(CHUNKS, t + 2_048); i += 1) emit({ type: 'chunk', id: idOf(i), file: fileOf(i), index: i & 1, size: 1000, state: 'queued', attempt: 0 });
      if (t < CHUNKS) chunk(t, 'reading', NODES[t % 3]);
      const sending = t - LANES / 2;
      if (sending >= 0 && sending < CHUNKS) {
        emit({ type: 'bytes', chunkId: idOf(sending), nodeId: NODES[sending % 3]!, bytes: 1000 });
        chunk(sending, 'sending', NODES[sending % 3]);
      }
      const done = t - LANES;
      if (done < 0) continue;
      if (retriedAt(done)) {
        retries += 1;
        chunk(done, 'retried', NODES[done % 3]);
        emit({ type: 'log', level: 'warn', message: `${idOf(done)}: node timed out; trying again` });
        chunk(done, 'reading', NODES[(done + 1) % 3], 2);
        chunk(done, 'verified', NODES[(done + 1) % 3], 2);
      } else if (failsAt(done)) {
        chunk(done, 'failed');
        if (!failedFiles.has(fileOf(done))) {
          failedFiles.add(fileOf(done));
          emit({ type: 'file', key: fileOf(done), status: 'failed', error: 'source gone' });
        }
      } else chunk(done, 'verified', NODES[done % 3]);
      if (t === CHUNKS / 2) {
        drain();
        expectExactCounts();
        expectRowsMirrorTheRun();
      }
    }
    // A node died: every 10,000th chunk, long out of the view, is sent again to another node.
    for (let i = 5; i < CHUNKS; i += 10_000) {
      if (truth.get(idOf(i))!.state !== 'verified') continue;
      chunk(i, 'reading', 'n2', 1);
      chunk(i, 'sending', 'n2', 1);
      drain();
      expect(store.getState().ingest.meta!.states.verified).toBe([...truth.values()].filter((c) => c.state === 'verified').length);
      chunk(i, 'verified', 'n2', 1);
    }
    for (let f = 0; f < FILES; f += 1) if (!failedFiles.has(`dir/file-${f}.bin`)) emit({ type: 'file', key: `dir/file-${f}.bin`, status: 'complete' });
    emit({ type: 'run-finished', runId: 'big', status: 'partial', manifestPath: '/m/big.json', elapsedMs: 1, bytes: 0 });
    drain();

    expect(chunkEvents).toBeGreaterThanOrEqual(CHUNKS * 4);
    expect(fileEvents).toBe(FILES);
    const { meta, chunks, files, logs } = store.getState().ingest;
    expect(meta).toMatchObject({ phase: 'finished', status: 'partial', filesDone: FILES - failedFiles.size, filesFailed: failedFiles.size, totals: { files: FILES, chunks: CHUNKS } });
    expectExactCounts();
    const failed = [...truth.values()].filter((c) => c.state === 'failed').length;
    expect(failed).toBeGreaterThan(40);
    expect(meta!.states).toMatchObject({ queued: 0, reading: 0, sending: 0, failed, verified: CHUNKS - failed });
    expectRowsMirrorTheRun();

    // Bounded: the rows are the latest 5,000 finished and every failed one (under the cap of 1,000 here).
    expect(maxRows).toBeLessThanOrEqual(CHUNK_VIEW_MAX_ROWS);
    expect(chunks.filter((c) => c.state === 'failed')).toHaveLength(failed);
    const latest = new Set<number>();
    for (let k = finishedOrder.length - 1; k >= 0 && latest.size < CHUNK_VIEW_LIMITS.finished; k -= 1) {
      if (truth.get(idOf(finishedOrder[k]!))!.state === 'verified') latest.add(finishedOrder[k]!);
    }
    expect(new Set(chunks.filter((c) => c.state === 'verified').map((c) => c.seq))).toEqual(latest);
    expect(maxFiles).toBeLessThanOrEqual(CHUNK_VIEW_MAX_ROWS);
    expect(files.map((f) => f.name).sort()).toEqual([...new Set(chunks.map((c) => c.file))].sort());
    // The log: its latest 200 lines, and marks that count every line before or between them.
    const kept = logs.filter((l) => l.level !== 'dropped').length;
    expect(kept).toBe(LOG_LINES_KEPT);
    expect(kept + droppedLines(logs)).toBe(logLines);
    expect(logs.at(-1)).toMatchObject({ level: 'warn' });
  });
});
