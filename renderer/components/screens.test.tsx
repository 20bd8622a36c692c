// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChunkUpdate } from '../../shared/ipc/contract.ts';
import { StoreProvider } from '../store/context.tsx';
import type { AppStore } from '../store/store.ts';
import { countStates } from '../store/selectors.ts';
import { batch, offlineStore } from '../test-support.ts';
import { ConfigScreen } from './ConfigScreen.tsx';
import { IngestScreen } from './IngestScreen.tsx';
import { groupByNode, layoutCells } from './DistributionMap.tsx';

afterEach(cleanup);

const GOOD = `data_sources:
  local: { type: "local", path: "./src" }
ingestion:
  chunk_size_mb: 1
`;

function show(store: AppStore, ui: ReactNode) {
  return render(<StoreProvider store={store}>{ui}</StoreProvider>);
}

describe('ConfigScreen', () => {
  it('lists each problem with its line and blocks saving until the text is valid', () => {
    const store = offlineStore();
    store.getState().applySnapshot({ path: '/x/config/data_sources.yml', fileName: 'config/data_sources.yml', text: GOOD, revision: 'r1', diagnostics: [] });
    show(store, <ConfigScreen />);
    expect(screen.getByTestId('config-status').textContent).toBe('valid · saved');
    expect(screen.queryByTestId('diagnostic')).toBeNull();
    expect((screen.getByRole('button', { name: 'Save' }) as HTMLButtonElement).disabled).toBe(true);

    act(() => store.getState().setDraft(GOOD.replace('chunk_size_mb: 1', 'chunk_size_mb: zero')));
    const problem = screen.getByTestId('diagnostic');
    expect(problem.getAttribute('data-line')).toBe('4');
    expect(within(problem).getByText(/Line 4:/)).toBeTruthy();
    expect(problem.textContent).toContain('ingestion.chunk_size_mb');
    expect(problem.textContent).toContain('Fix:');
    expect(screen.getByTestId('config-status').textContent).toBe('1 error');
    expect((screen.getByRole('button', { name: 'Save' }) as HTMLButtonElement).disabled).toBe(true);

    act(() => store.getState().setDraft(`${GOOD}# a comment\n`));
    expect(screen.queryByTestId('diagnostic')).toBeNull();
    expect(screen.getByTestId('config-status').textContent).toBe('valid · unsaved');
    expect((screen.getByRole('button', { name: 'Save' }) as HTMLButtonElement).disabled).toBe(false);
  });

  it('shows why a save failed', async () => {
    const store = offlineStore();
    store.getState().applySnapshot({ path: '/x/c.yml', fileName: 'c.yml', text: GOOD, revision: 'r1', diagnostics: [] });
    show(store, <ConfigScreen />);
    act(() => store.getState().setDraft(`${GOOD}# edit\n`));
    await act(async () => {
      fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    });
    expect(screen.getByRole('alert').textContent).toBe('not connected to the engine');
  });
});

describe('IngestScreen', () => {
  const chunk = (seq: number, state: ChunkUpdate['state']): ChunkUpdate => ({ seq, id: `big.bin_chunk_${seq}`, file: seq % 3 ? 'big.bin' : 'other.bin', index: seq, offset: seq * 1024, size: 1024, state, nodeId: `node-${seq % 4}`, attempt: 1 });

  it('shows 100,000 chunks with a bounded DOM, overall figures and every node', () => {
    const store = offlineStore();
    const chunks = Array.from({ length: 100_000 }, (_, i) => chunk(i, i < 60_000 ? 'verified' : 'queued'));
    store.getState().applyProgress(
      batch({ totals: { files: 2, chunks: 100_000, bytes: 100_000 * 1024 }, chunksDone: 60_000, bytesDone: 60_000 * 1024, elapsedMs: 10_000, chunks, nodeBytes: { 'node-0': 1, 'node-1': 2, 'node-2': 3, 'node-3': 4 } }),
    );
    const { container } = show(store, <IngestScreen />);
    expect(screen.getByTestId('percent').textContent).toBe('60.0%');
    expect(screen.getByTestId('chunks-done').textContent).toBe('60000 / 100000');
    const list = screen.getByTestId('chunk-list');
    expect(list.getAttribute('aria-rowcount')).toBe('100000');
    expect(within(list).getAllByRole('row').length).toBeLessThanOrEqual(30);
    expect(container.querySelectorAll('*').length).toBeLessThan(1500);
    for (let n = 0; n < 4; n += 1) expect(screen.getByTestId(`dist-node-${n}`).getAttribute('data-chunks')).toBe('25000');
    expect((screen.getByRole('button', { name: 'Start ingest' }) as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByRole('button', { name: 'Cancel' }) as HTMLButtonElement).disabled).toBe(false);
  });

  it('filters the chunk view by state', () => {
    const store = offlineStore();
    const chunks = Array.from({ length: 1000 }, (_, i) => chunk(i, i % 100 === 0 ? 'failed' : 'verified'));
    store.getState().applyProgress(batch({ totals: { files: 2, chunks: 1000, bytes: 1000 * 1024 }, chunks, chunksFailed: 10, states: countStates(chunks) }));
    show(store, <IngestScreen />);
    const list = screen.getByTestId('chunk-list');
    expect(list.getAttribute('aria-rowcount')).toBe('1000');
    fireEvent.click(screen.getByRole('button', { name: 'failed 10' }));
    expect(list.getAttribute('aria-rowcount')).toBe('10');
    const texts = within(list).getAllByRole('row').map((r) => r.textContent ?? '');
    expect(texts).toHaveLength(10);
    expect(texts[1]).toContain('big.bin_chunk_100');
    expect(texts.every((t) => t.includes('failed') && !t.includes('verified'))).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'all 1000' }));
    expect(list.getAttribute('aria-rowcount')).toBe('1000');
  });

  it('lists unfinished runs with how they ended, and offers Resume only while no run is going', async () => {
    const store = offlineStore();
    store.setState({
      resumable: {
        runs: [
          { runId: 'run-b', startedAt: '2025-03-04T05:06:07.000Z', chunksDone: 42, lastStatus: 'cancelled' },
          { runId: 'run-a', startedAt: '2025-03-03T05:06:07.000Z', chunksDone: 7 },
        ],
        error: null,
      },
    });
    show(store, <IngestScreen />);
    const table = screen.getByRole('table', { name: 'Unfinished runs' });
    const rows = within(table).getAllByRole('row').slice(1).map((r) => Array.from(r.querySelectorAll('td')).map((td) => td.textContent));
    expect(rows.map((r) => [r[0], r[2], r[3], r[4]])).toEqual([
      ['run-b', '42', 'cancelled', 'Resume'],
      ['run-a', '7', 'killed', 'Resume'],
    ]);
    expect(rows[0]?.[1]).toBe(new Date('2025-03-04T05:06:07.000Z').toLocaleString());
    // Opening the screen asked the host for the list; offline, the card says why.
    expect(await screen.findByText('not connected to the engine')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Resume run-b' }).hasAttribute('disabled')).toBe(false);
    act(() => store.getState().applyProgress(batch({ runId: 'run-c', phase: 'running' })));
    expect(screen.getByRole('button', { name: 'Resume run-b' }).hasAttribute('disabled')).toBe(true);
    expect(screen.getByRole('button', { name: 'Resume run-a' }).hasAttribute('disabled')).toBe(true);
  });

  it('lays out distribution cells for any count', () => {
    expect(layoutCells(6)).toMatchObject({ cell: 16 });
    const big = layoutCells(100_000);
    expect(big.cell).toBe(1);
    expect(big.perRow * Math.floor(big.height / big.cell)).toBeGreaterThanOrEqual(36_000);
    const groups = groupByNode([chunk(0, 'verified'), undefined, chunk(5, 'failed')], ['node-0', 'node-9']);
    expect([...groups.keys()]).toEqual(['node-0', 'node-9', 'node-1']);
  });
});

describe('config screen words', () => {
  it('says a probe that answered as another cloud did answer, and one that did not, did not', async () => {
    const { probeText } = await import('./ConfigScreen.tsx');
    expect(probeText({ cloud: 'gcp', endpoint: 'x', ok: false, detail: 'answered, but not like this cloud', elapsedMs: 216 })).toBe('gcp: not this cloud (216 ms) — answered, but not like this cloud');
    expect(probeText({ cloud: 'azure', endpoint: 'x', ok: false, detail: 'connection refused', elapsedMs: 3 })).toBe('azure: no answer (3 ms) — connection refused');
    expect(probeText({ cloud: 'aws', endpoint: 'x', ok: true, detail: 'identity document', elapsedMs: 12 })).toMatch(/^aws: this cloud/);
  });

  it('lists one problem per position, however many errors the parser gives for it', async () => {
    const { distinctDiagnostics } = await import('./ConfigScreen.tsx');
    const d = { severity: 'error' as const, file: 'c.yml', line: 4, column: 18, key: '', message: 'a', fix: 'f' };
    expect(distinctDiagnostics([d, { ...d, message: 'b' }, { ...d, line: 5 }])).toHaveLength(2);
  });

  it('shows "not loaded" (not "valid · saved") when the config could not be read', async () => {
    const store = offlineStore();
    await store.getState().loadConfig();
    show(store, <ConfigScreen />);
    expect(screen.getByTestId('config-status').textContent).toBe('not loaded');
    expect(screen.queryByText(/No problems/)).toBeNull();
  });

  it('asks before Reload discards unsaved edits', () => {
    const store = offlineStore();
    store.getState().applySnapshot({ path: '/x/c.yml', fileName: 'c.yml', text: GOOD, revision: 'r1', diagnostics: [] });
    show(store, <ConfigScreen />);
    act(() => store.getState().setDraft(`${GOOD}# mine\n`));
    fireEvent.click(screen.getByRole('button', { name: 'Reload' }));
    expect(screen.getByTestId('confirm-reload').textContent).toContain('Discard your unsaved edits');
    fireEvent.click(screen.getByRole('button', { name: 'Keep editing' }));
    expect(store.getState().config.draft).toBe(`${GOOD}# mine\n`);
  });
});

describe('editor diagnostics', () => {
  it('underlines just the offending token', async () => {
    const { tokenLength } = await import('./YamlEditor.tsx');
    expect(tokenLength('"lots", max_concurrent_chunks: 10 }')).toBe(6);
    expect(tokenLength('-3, retry: 1 }')).toBe(2);
    expect(tokenLength('abc   # comment')).toBe(3);
    expect(tokenLength('{ type: s3 }')).toBe(12);
    expect(tokenLength('x')).toBe(1);
  });
});
