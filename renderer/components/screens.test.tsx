// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import type { ChunkUpdate, NodeChunkRow, OpenedManifest, Req } from '../../shared/ipc/contract.ts';
import type { ManifestChunk } from '../../shared/types.ts';
import { CHUNK_PAGE_ROWS, CHUNK_PAGES_KEPT } from '../store/chunk-pages.ts';
import { StoreProvider } from '../store/context.tsx';
import type { AppStore } from '../store/store.ts';
import { countStates, emptyStates } from '../store/selectors.ts';
import { batch, offlineStore, storeAnswering } from '../test-support.ts';
import { ConfigScreen } from './ConfigScreen.tsx';
import { IngestScreen } from './IngestScreen.tsx';
import { ReassembleCard, ReceivedScreen } from './ReceivedScreen.tsx';
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

  it('shows a 100,000-chunk run from its bounded view: exact figures, a bounded DOM, every node, and what the list leaves out', () => {
    const store = offlineStore();
    // The host's view 60,000 chunks into the run: the latest 5,000 finished and 8 in flight (queued ones have no row).
    const finished = Array.from({ length: 5_000 }, (_, i) => ({ ...chunk(55_000 + i, 'verified'), file: `file-${(55_000 + i) >> 1}` }));
    const sending = Array.from({ length: 8 }, (_, i) => ({ ...chunk(60_000 + i, 'sending'), file: `file-${(60_000 + i) >> 1}` }));
    const states = { ...emptyStates(), verified: 60_000, sending: 8, queued: 39_992 };
    const perNode = { ...emptyStates(), verified: 15_000, sending: 2 };
    store.getState().applyProgress(
      batch({
        totals: { files: 50_000, chunks: 100_000, bytes: 100_000 * 1024 },
        chunksDone: 60_000,
        bytesDone: 60_000 * 1024,
        elapsedMs: 10_000,
        states,
        chunks: [...finished, ...sending],
        nodeBytes: { 'node-0': 1, 'node-1': 2, 'node-2': 3, 'node-3': 4 },
        nodeChunks: { 'node-0': 15_000, 'node-1': 15_000, 'node-2': 15_000, 'node-3': 15_000 },
        nodeStates: { 'node-0': perNode, 'node-1': perNode, 'node-2': perNode, 'node-3': perNode },
      }),
    );
    const { container } = show(store, <IngestScreen />);
    expect(screen.getByTestId('percent').textContent).toBe('60.0%');
    expect(screen.getByTestId('chunks-done').textContent).toBe('60000 / 100000');
    // The state buttons count every chunk; the list holds the view and says what it leaves out.
    expect(screen.getByRole('button', { name: 'all 100000' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'verified 60000' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'queued 39992' })).toBeTruthy();
    const list = screen.getByTestId('chunk-list');
    expect(list.getAttribute('aria-rowcount')).toBe('5008');
    expect(screen.getByTestId('chunk-window-note').textContent).toMatch(/^Showing the latest 5,008 of 100,000 chunks: every chunk in flight, the latest 5,000 finished and the first 1,000 failed; queued chunks are counted, not listed\./);
    expect(within(list).getAllByRole('row').length).toBeLessThanOrEqual(30);
    expect(container.querySelectorAll('*').length).toBeLessThan(1500);
    // Each node's figures count every chunk; its cells are its rows of the view.
    for (let n = 0; n < 4; n += 1) {
      expect(screen.getByTestId(`dist-node-${n}`).getAttribute('data-chunks')).toBe('1252');
      expect(screen.getByTestId(`share-node-${n}`).textContent).toContain('15000 chunks');
    }
    expect(screen.getByTestId('dist-window-note').textContent).toContain("its 5,008 chunks of the run's 100,000");
    // The legend: the files of the rows (2,504 of 50,000), the first 200 listed, the rest found by name.
    expect(screen.getByText(/2504 of 50000 files/)).toBeTruthy();
    expect(within(screen.getByRole('list', { name: 'Files' })).getAllByRole('button')).toHaveLength(200);
    expect(screen.getByTestId('legend-more').textContent).toBe('… 2304 more: find one by name');
    fireEvent.change(screen.getByRole('searchbox', { name: 'Find a file' }), { target: { value: 'file-30003' } });
    expect(within(screen.getByRole('list', { name: 'Files' })).getAllByRole('button').map((b) => b.textContent)).toEqual(['file-30003']);

    fireEvent.click(screen.getByRole('button', { name: 'queued 39992' }));
    expect(list.getAttribute('aria-rowcount')).toBe('0');
    expect(screen.getByTestId('chunk-window-note').textContent).toBe('39,992 queued chunks are counted, not listed: each is listed once it starts.');
    fireEvent.click(screen.getByRole('button', { name: 'verified 60000' }));
    expect(screen.getByTestId('chunk-window-note').textContent).toBe('Showing the latest 5,000 of 60,000 verified chunks.');
    expect((screen.getByRole('button', { name: 'Start ingest' }) as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByRole('button', { name: 'Cancel' }) as HTMLButtonElement).disabled).toBe(false);
  });

  it('shows the log’s latest lines and a mark for the lines dropped before them', () => {
    const store = offlineStore();
    store.getState().applyProgress(batch({ logs: [{ level: 'error', message: 'a.bin: gone' }], logsDropped: 12_345 }));
    show(store, <IngestScreen />);
    const log = screen.getByRole('list', { name: 'Log' });
    expect(Array.from(log.querySelectorAll('li')).map((li) => li.textContent)).toEqual(['… 12,345 earlier lines dropped', 'a.bin: gone']);
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

describe('ReassembleCard', () => {
  it("shows a reassemble's progress while it runs, and no other task's", () => {
    const store = offlineStore();
    show(store, <ReassembleCard keys={['data/a.bin']} />);
    expect(screen.queryByRole('progressbar')).toBeNull();
    act(() => store.setState((s) => ({ received: { ...s.received, reassembling: true } })));
    act(() => store.getState().setTaskProgress({ task: 'verify', done: 3, total: 4 }));
    expect(screen.queryByRole('progressbar')).toBeNull();
    act(() => store.getState().setTaskProgress({ task: 'reassemble', done: 150, total: 200 }));
    const bar = screen.getByRole('progressbar', { name: 'Reassemble progress' });
    expect(bar.getAttribute('aria-valuenow')).toBe('75');
    expect((bar.firstElementChild as HTMLElement).style.width).toBe('75%');
    expect((screen.getByRole('button', { name: 'Reassembling…' }) as HTMLButtonElement).disabled).toBe(true);
    act(() => store.setState((s) => ({ received: { ...s.received, reassembling: false } })));
    expect(screen.queryByRole('progressbar')).toBeNull();
  });
});

const chunkAt = (i: number): ManifestChunk => ({ id: `f${i}_chunk_0`, file: `f${i}`, index: 0, offset: 0, size: 10, checksum: 'c0ffee', node: 'n1', path: `/n1/${i}`, copies: [{ nodeId: 'n1', location: `/n1/${i}` }], attempts: 1, movedFrom: [], skipped: false });

/** A run of a million files and chunks as the host opens it: its first three, and every node's count. */
function largeRun(perNode: Record<string, number> = { n1: 1_000_000, n2: 0 }): OpenedManifest {
  return {
    version: 1, runId: 'r', startedAt: '2026-12-07T00:00:00.000Z', finishedAt: '2026-12-07T00:01:00.000Z', status: 'complete', checksumAlgorithm: 'md5',
    nodes: [{ id: 'n1', kind: 'folder', location: '/n1', chunks: 3, bytes: 30, healthy: true }, { id: 'n2', kind: 'folder', location: '/n2', chunks: 0, bytes: 0, healthy: true }],
    totals: { files: 1_000_000, chunks: 1_000_000, bytes: 10_000_000, retries: 0, replacements: 0, skipped: 0 },
    files: [0, 1, 2].map((i) => ({ key: `f${i}`, size: 10, checksum: 'c', chunkCount: 1, status: 'complete' })),
    chunks: [0, 1, 2].map(chunkAt),
    partial: { files: 1_000_000, chunks: 1_000_000, perNode },
  } as unknown as OpenedManifest;
}

/** The host's pages of n1 in a large run: copy `i` is chunk `i`. Records every ask. */
function pagesOfN1(asked: Req<'manifestChunks'>[], hold?: Promise<void>) {
  return async (req: Req<'manifestChunks'>) => {
    asked.push(req);
    await hold;
    const rows: NodeChunkRow[] = [];
    for (let i = req.start; i < Math.min(1_000_000, req.start + req.count); i++) rows.push({ chunk: chunkAt(i), location: `/n1/${i}` });
    return { rows, total: 1_000_000 };
  };
}

function openLarge(store: AppStore, manifest = largeRun()): void {
  act(() => store.setState((s) => ({ received: { ...s.received, manifestPath: '/runs/r.json', manifest, nodeId: 'n1' } })));
}

describe('ReceivedScreen', () => {
  it('says when a run is larger than what it sends at once, and how the rest is reached', () => {
    const store = offlineStore();
    const manifest = largeRun();
    openLarge(store, manifest);
    show(store, <ReceivedScreen />);
    const note = screen.getByTestId('manifest-partial');
    expect(note.textContent).toContain(`A large run: ${(1_000_000).toLocaleString()} files and ${(1_000_000).toLocaleString()} chunks.`);
    expect(note.textContent).toContain('fetched a page at a time as you scroll');
    expect(note.textContent).toContain('searching its name');
    expect(note.textContent).not.toContain('cloud-ingest reassemble');
    act(() => store.setState((s) => ({ received: { ...s.received, manifest: { ...manifest, partial: undefined } as OpenedManifest } })));
    expect(screen.queryByTestId('manifest-partial')).toBeNull();
  });

  it('counts a large run’s copies in full on its tabs, and shows rows as their pages arrive, wherever the list is scrolled', async () => {
    const asked: Req<'manifestChunks'>[] = [];
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const store = storeAnswering({ manifestChunks: pagesOfN1(asked, held), listManifests: () => [] });
    openLarge(store);
    show(store, <ReceivedScreen />);
    expect(screen.getByTestId('tab-count-n1').textContent).toBe((1_000_000).toLocaleString());
    expect(screen.getByTestId('tab-count-n2').textContent).toBe('0');
    expect(screen.getByRole('tab', { name: `n1: ${(1_000_000).toLocaleString()} chunks` })).toBeTruthy();
    const table = screen.getByRole('table', { name: 'Chunks on n1' });
    expect(table.getAttribute('aria-rowcount')).toBe('1000000');
    // Placeholders while the first page is on its way; then its rows.
    expect(screen.getAllByTestId('row-loading').length).toBeGreaterThan(5);
    expect(asked).toEqual([{ path: '/runs/r.json', nodeId: 'n1', start: 0, count: CHUNK_PAGE_ROWS }]);
    await act(async () => release());
    expect(await screen.findByText('f0')).toBeTruthy();
    expect(screen.queryByTestId('row-loading')).toBeNull();

    // The middle of a million rows (the scroll height is capped; rows follow the scroll in proportion).
    const content = (table.firstElementChild as HTMLElement).offsetHeight || Number.parseFloat((table.firstElementChild as HTMLElement).style.height);
    expect(content).toBeLessThan(1_000_000 * 28);
    table.scrollTop = (content - 380) / 2;
    fireEvent.scroll(table);
    await waitFor(() => expect(screen.getAllByRole('row').some((r) => r.textContent?.includes('f499'))).toBe(true));
    expect(asked.at(-1)!.start % CHUNK_PAGE_ROWS).toBe(0);
    expect(asked.at(-1)!.start).toBeGreaterThan(490_000);

    // The very end: the last copy.
    table.scrollTop = content - 380;
    fireEvent.scroll(table);
    expect(await screen.findByText('f999999')).toBeTruthy();
    const lastRow = screen.getAllByRole('row').at(-1)!;
    expect(lastRow.getAttribute('aria-rowindex')).toBe('1000000');

    // Scrolling through many places keeps a bounded number of pages.
    for (let k = 1; k <= 30; k++) {
      table.scrollTop = ((content - 380) * k) / 31;
      fireEvent.scroll(table);
    }
    await waitFor(() => expect(store.getState().received.pages.every((p) => p.rows !== null)).toBe(true));
    expect(store.getState().received.pages.length).toBeLessThanOrEqual(CHUNK_PAGES_KEPT);
    expect(asked.length).toBeGreaterThan(CHUNK_PAGES_KEPT);
  });

  it('jumps to a problem’s row in a large run (the host locates it) and lists the node’s problems under “Problems only”', async () => {
    const asked: Req<'manifestChunks'>[] = [];
    const located: Req<'locateChunk'>[] = [];
    const store = storeAnswering({
      manifestChunks: pagesOfN1(asked),
      listManifests: () => [],
      locateChunk: (req) => {
        located.push(req);
        return { position: Number(/^f(\d+)_/.exec(req.chunkId)![1]) };
      },
    });
    openLarge(store);
    const problem = { chunkId: 'f765432_chunk_0', nodeId: 'n1', reason: 'checksum_mismatch' as const, detail: 'bad', file: 'f765432', index: 0, offset: 0, size: 10, expected: 'c0ffee', found: 'dead' };
    act(() => store.setState((s) => ({ received: { ...s.received, verify: { manifestPath: '/runs/r.json', nodeId: null, checked: 1_000_000, ok: 999_999, checkedPerNode: { n1: 1_000_000 }, problems: [problem], unrecoverable: [] } } })));
    show(store, <ReceivedScreen />);
    fireEvent.click(screen.getByRole('button', { name: 'Show f765432_chunk_0 on n1 in the table' }));
    await waitFor(() => expect(located).toEqual([{ path: '/runs/r.json', nodeId: 'n1', chunkId: 'f765432_chunk_0' }]));
    const table = screen.getByRole('table', { name: 'Chunks on n1' });
    const row = await within(table).findByText('f765432');
    expect(row.closest('[role=row]')!.className).toContain('focused');
    expect(row.closest('[role=row]')!.className).toContain('has-problem');
    expect(row.closest('[role=row]')!.getAttribute('aria-rowindex')).toBe('765433');
    expect(asked.some((a) => a.start === 765_400)).toBe(true);

    const before = asked.length;
    fireEvent.click(screen.getByRole('checkbox', { name: 'Problems only' }));
    const problems = screen.getByRole('table', { name: 'Chunks on n1' });
    expect(problems.getAttribute('aria-rowcount')).toBe('1');
    expect(within(problems).getByText('f765432')).toBeTruthy();
    expect(within(problems).getByText('damaged')).toBeTruthy();
    expect(asked.length).toBe(before); // straight from verify's problems, no page asked for
  });

  it('finds the file to reassemble in a large run by searching its name on the host', async () => {
    const searched: Req<'findFiles'>[] = [];
    const keys = Array.from({ length: 1_000_000 }, (_, i) => `data/f${i}.bin`);
    const store = storeAnswering({
      listManifests: () => [],
      manifestChunks: pagesOfN1([]),
      findFiles: (req) => {
        searched.push(req);
        const matches = keys.filter((k) => k.toLowerCase().includes(req.query.toLowerCase()));
        return { keys: matches.slice(0, req.limit), more: matches.length > req.limit };
      },
    });
    openLarge(store);
    show(store, <ReceivedScreen />);
    const select = screen.getByRole('combobox', { name: 'File to reassemble' }) as HTMLSelectElement;
    await waitFor(() => expect(select.options.length).toBe(100));
    expect(searched).toEqual([{ path: '/runs/r.json', query: '', limit: 100 }]);
    expect(screen.getByTestId('file-matches').textContent).toContain('The first 100 matches');
    const input = screen.getByRole('searchbox', { name: 'Search files' });
    fireEvent.change(input, { target: { value: 'F99999' } });
    fireEvent.change(input, { target: { value: 'F999999' } });
    await waitFor(() => expect([...select.options].map((o) => o.value)).toEqual(['data/f999999.bin']));
    expect(searched.map((r) => r.query)).toEqual(['', 'F999999']); // typing pauses before the host is asked
    expect(screen.getByTestId('file-matches').textContent).toBe('1 match.');
    fireEvent.change(input, { target: { value: 'nothing like it' } });
    await waitFor(() => expect(screen.getByTestId('file-matches').textContent).toBe('No file name contains “nothing like it”.'));
    expect((screen.getByRole('button', { name: 'Reassemble' }) as HTMLButtonElement).disabled).toBe(true);
  });

  it('keeps the select of every file for a run sent whole', () => {
    const store = offlineStore();
    const { partial: _partial, ...whole } = largeRun();
    openLarge(store, { ...whole, totals: { ...whole.totals, files: 3, chunks: 3 } });
    show(store, <ReceivedScreen />);
    expect(screen.queryByRole('searchbox', { name: 'Search files' })).toBeNull();
    expect([...(screen.getByRole('combobox', { name: 'File to reassemble' }) as HTMLSelectElement).options].map((o) => o.value)).toEqual(['f0', 'f1', 'f2']);
    expect(screen.getByTestId('tab-count-n1').textContent).toBe('3');
    expect(within(screen.getByRole('table', { name: 'Chunks on n1' })).getByText('f2')).toBeTruthy();
  });
});
