// Ingest: pattern, start, cancel; unfinished runs to resume; overall progress; per-node bars; the distribution
// picture; the chunk view.
import { memo, useDeferredValue, useEffect, useMemo, useRef, useState } from 'react';
import { validateConfigText } from '../../shared/config/validate.ts';
import { CHUNK_VIEW_LIMITS } from '../../shared/ipc/contract.ts';
import type { ChunkRowState } from '../../shared/ipc/contract.ts';
import { formatBytes, formatDuration, formatRate } from '../format.ts';
import { useApp } from '../store/context.tsx';
import { ErrorBanner } from './ErrorBanner.tsx';
import { countStates, ingestFigures } from '../store/selectors.ts';
import type { FileColour, IngestMeta, IngestSlice, LogEntry } from '../store/types.ts';
import { DistributionMap } from './DistributionMap.tsx';
import { RepairStatus } from './RepairStatus.tsx';
import { VirtualList } from './VirtualList.tsx';

type IngestChunks = IngestSlice['ingest']['chunks'];

const STATES: ChunkRowState[] = ['queued', 'reading', 'sending', 'verified', 'retried', 'failed', 'moved', 'skipped', 'cancelled'];

function percentText(percent: number, waiting: boolean): string {
  if (waiting) return '…';
  return `${percent.toFixed(percent >= 100 || percent === 0 ? 0 : 1)}%`;
}

/** The phase badge: a finished run says how it ended (complete, degraded, partial). */
function phaseLabel(meta: IngestMeta | null, starting: boolean): string {
  if (starting && !meta) return 'starting';
  if (!meta) return 'idle';
  if (meta.phase === 'finished' && meta.status && meta.status !== 'complete') return meta.status;
  return meta.phase;
}

export function IngestScreen() {
  const starting = useApp((s) => s.ingest.starting);
  const resuming = useApp((s) => s.ingest.resuming);
  const error = useApp((s) => s.ingest.error);
  const meta = useApp((s) => s.ingest.meta);
  const saved = useApp((s) => s.config.saved);
  const fileName = useApp((s) => s.config.fileName);
  const probe = useApp((s) => s.probeNodes);
  const config = useMemo(() => (fileName ? validateConfigText(saved, fileName).config : undefined), [saved, fileName]);
  const filePattern = config?.ingestion.file_pattern ?? '**';
  const statusKey = useApp((s) => s.nodes.statuses.map((n) => n.id).join('\n'));
  const configKey = (config?.nodes ?? []).map((n) => n.id).join('\n');

  useEffect(() => {
    // Opened before the Nodes screen: ask for the nodes, so every node has its panel before a run starts.
    if (!statusKey) void probe();
  }, [statusKey, probe]);

  // The picture and the chunk list render from deferred copies in memoized sections: a progress batch re-renders
  // the figures at once, and React renders the rest in slices it can interrupt, so no batch holds the page long.
  const deferredMeta = useDeferredValue(meta);
  const chunks = useDeferredValue(useApp((s) => s.ingest.chunks));
  const files = useDeferredValue(useApp((s) => s.ingest.files));
  const figures = ingestFigures(meta);
  const running = figures.running || starting;
  const waiting = running && (!meta || meta.phase === 'starting');
  const total = meta?.totals.chunks ?? 0;

  return (
    <section className="screen" aria-labelledby="ingest-title">
      <header className="screen-head">
        <div>
          <h1 id="ingest-title">Ingest</h1>
          <p className="muted">Splits every matching object into chunks, places them on healthy nodes, and verifies each copy.</p>
        </div>
      </header>
      <IngestControls placeholder={`${filePattern} (from config)`} running={running} starting={starting} canCancel={figures.running} />
      <ErrorBanner error={error} />
      {meta?.error && <p className="banner error" role="alert">{meta.error}</p>}
      <ResumableRuns running={running} activeRunId={running ? (meta?.runId ?? resuming) : null} />
      {meta?.phase === 'finished' && meta.status === 'degraded' && meta.manifestPath && <DegradedRun manifestPath={meta.manifestPath} />}

      <div className="card overall" data-testid="overall">
        <div className="overall-head">
          <span className={`phase phase-${phaseLabel(meta, starting)}`} data-testid="phase">{phaseLabel(meta, starting)}</span>
          {waiting && <span className="muted small" data-testid="starting-note">{resuming ? `Resuming ${resuming}: reading its journal and the source listing…` : 'Listing the source and probing the nodes…'}</span>}
          <strong className="percent" data-testid="percent">{percentText(figures.percent, waiting)}</strong>
        </div>
        <div className="bar big" role="progressbar" aria-label="Overall progress" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(figures.percent)} aria-busy={waiting}>
          <div style={{ width: `${figures.percent}%` }} />
        </div>
        <dl className="figures wide">
          <div>
            <dt>Bytes</dt>
            <dd>{waiting ? '—' : `${formatBytes((meta?.bytesDone ?? 0) + (meta?.bytesSkipped ?? 0))} / ${formatBytes(meta?.totals.bytes ?? 0)}`}</dd>
            {meta?.bytesSkipped ? <dd className="muted small" data-testid="bytes-skipped">{formatBytes(meta.bytesSkipped)} already on nodes</dd> : null}
          </div>
          <div><dt>Speed</dt><dd>{formatRate(figures.bytesPerSecond)}</dd></div>
          <div><dt>ETA</dt><dd>{figures.running ? formatDuration(figures.etaSeconds) : '—'}</dd></div>
          <div><dt>Elapsed</dt><dd>{formatDuration((meta?.elapsedMs ?? 0) / 1000)}</dd></div>
          <div><dt>Chunks</dt><dd data-testid="chunks-done">{meta?.chunksDone ?? 0} / {total}</dd></div>
          <div>
            <dt>Files</dt>
            <dd>{meta?.totals.files ?? 0}</dd>
            {meta?.filesFailed ? <dd className="bad small" data-testid="files-failed">{meta.filesFailed} failed</dd> : null}
          </div>
          <div><dt>Retries</dt><dd>{meta?.retries ?? 0}</dd></div>
          <div><dt>Failed</dt><dd className={meta?.chunksFailed ? 'bad' : ''}>{meta?.chunksFailed ?? 0}</dd></div>
        </dl>
        {meta?.manifestPath && <p className="muted small mono path">Manifest: {meta.manifestPath}</p>}
      </div>
      <RepairStatus />
      <DistributionSection meta={deferredMeta} chunks={chunks} files={files} statusKey={statusKey} configKey={configKey} waiting={waiting} />
      <ChunkSection meta={deferredMeta} chunks={chunks} />
    </section>
  );
}

/** The ids to draw a panel for: the run's nodes, else the probed ones, else the configured ones. */
function panelIds(meta: IngestMeta | null, statusKey: string, configKey: string): string[] {
  const fallback = (statusKey || configKey).split('\n').filter(Boolean);
  const ids = new Set<string>(meta?.nodes.length ? meta.nodes.map((n) => n.id) : fallback);
  for (const id of Object.keys(meta?.nodeBytes ?? {})) ids.add(id);
  return [...ids];
}

const DistributionSection = memo(function DistributionSection({ meta, chunks, files, statusKey, configKey, waiting }: { meta: IngestMeta | null; chunks: IngestChunks; files: readonly FileColour[]; statusKey: string; configKey: string; waiting: boolean }) {
  const nodeIds = useMemo(() => panelIds(meta, statusKey, configKey), [meta, statusKey, configKey]);
  return (
    <div className="card">
      <h2>Distribution across nodes</h2>
      <DistributionMap
        chunks={chunks}
        files={files}
        nodeIds={nodeIds}
        expectedChunks={meta?.totals.chunks ?? 0}
        totalFiles={meta?.totals.files ?? 0}
        placeholder={waiting ? 'The picture fills in as soon as the run has planned its chunks.' : nodeIds.length === 0 ? 'No nodes yet: add one on the Nodes screen.' : undefined}
        figures={(id) => {
          const state = meta?.nodes.find((n) => n.id === id)?.state;
          return { bytes: meta?.nodeBytes[id] ?? 0, chunks: meta?.nodeChunks[id] ?? 0, ...(state ? { state } : {}) };
        }}
      />
    </div>
  );
});

const ChunkSection = memo(function ChunkSection({ meta, chunks }: { meta: IngestMeta | null; chunks: IngestChunks }) {
  const logs = useApp((s) => s.ingest.logs);
  const [show, setShow] = useState<ChunkRowState | 'all'>('all');
  const rows = useMemo(() => (show === 'all' ? chunks : chunks.filter((c) => c.state === show)), [chunks, show]);
  const counted = useMemo(() => (meta?.states ? null : countStates(chunks)), [meta, chunks]);
  const counts = meta?.states ?? counted!;
  const total = Math.max(meta?.totals.chunks ?? 0, chunks.length);
  const note = windowNote(show, rows.length, show === 'all' ? total : counts[show]);
  return (
    <div className="card">
      <h2>Chunks</h2>
      <div className="state-counts" role="group" aria-label="Show chunks">
        <button type="button" className={`chunk-state all${show === 'all' ? ' selected' : ''}`} aria-pressed={show === 'all'} onClick={() => setShow('all')}>
          all <b>{total}</b>
        </button>
        {STATES.filter((st) => st !== 'cancelled' || counts.cancelled > 0).map((st) => (
          <button key={st} type="button" className={`chunk-state ${st}${show === st ? ' selected' : ''}`} aria-pressed={show === st} onClick={() => setShow(show === st ? 'all' : st)}>
            {st} <b>{counts[st]}</b>
          </button>
        ))}
      </div>
      {note && <p className="muted small" data-testid="chunk-window-note">{note}</p>}
      <div className="vhead chunk-cols" role="presentation"><span>#</span><span>Chunk</span><span>Size</span><span>State</span><span>Node</span><span>Try</span></div>
      <VirtualList
        count={rows.length}
        rowHeight={26}
        height={360}
        label="Chunks"
        testId="chunk-list"
        renderRow={(i) => {
          const c = rows[i];
          if (!c) return <span className="muted">…</span>;
          return (
            <div className="chunk-cols" title={c.error ?? c.id}>
              <span className="muted">{c.seq + 1}</span>
              <span className="mono ellipsis">{c.id}</span>
              <span>{formatBytes(c.size)}</span>
              <span><span className={`chunk-state ${c.state}`}>{c.state}</span></span>
              <span className="ellipsis">{c.nodeId ?? '—'}{c.moved ? ' (moved)' : ''}</span>
              <span>{c.attempt}</span>
            </div>
          );
        }}
      />
      <RunLog logs={logs} />
    </div>
  );
});

/**
 * What the chunk list leaves out, when it does: the view holds every chunk in flight, the latest finished ones and
 * the first failed ones; queued chunks are counted only.
 */
export function windowNote(show: ChunkRowState | 'all', shown: number, of: number): string | null {
  if (shown >= of) return null;
  const n = (x: number): string => x.toLocaleString('en-US');
  if (show === 'queued') return `${n(of)} queued chunks are counted, not listed: each is listed once it starts.`;
  if (show === 'failed') return `Showing the first ${n(shown)} of ${n(of)} failed chunks.`;
  if (show === 'all') {
    return `Showing the latest ${n(shown)} of ${n(of)} chunks: every chunk in flight, the latest ${n(CHUNK_VIEW_LIMITS.finished)} finished and the first ${n(CHUNK_VIEW_LIMITS.failed)} failed; queued chunks are counted, not listed.`;
  }
  return `Showing the latest ${n(shown)} of ${n(of)} ${show} chunks.`;
}

/**
 * The run's log, its latest lines kept, with a mark wherever earlier lines were dropped. It follows new lines while
 * scrolled to its end, and stays put while the user reads further up.
 */
function RunLog({ logs }: { logs: readonly LogEntry[] }) {
  const ref = useRef<HTMLUListElement>(null);
  const following = useRef(true);
  useEffect(() => {
    const list = ref.current;
    if (list && following.current) list.scrollTop = list.scrollHeight;
  }, [logs]);
  if (logs.length === 0) return null;
  const onScroll = (): void => {
    const list = ref.current;
    if (list) following.current = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  };
  return (
    <ul className="logs" aria-label="Log" ref={ref} onScroll={onScroll}>
      {logs.map((l, i) =>
        l.level === 'dropped' ? (
          <li key={i} className="muted" data-testid="log-dropped">… {l.count.toLocaleString('en-US')} earlier line{l.count === 1 ? '' : 's'} dropped</li>
        ) : (
          <li key={i} className={l.level}>{l.message}</li>
        ),
      )}
    </ul>
  );
}

/** File pattern, Start and Cancel: re-rendered only when one of them changes, not with every progress batch. */
const IngestControls = memo(function IngestControls({ placeholder, running, starting, canCancel }: { placeholder: string; running: boolean; starting: boolean; canCancel: boolean }) {
  const pattern = useApp((s) => s.ingest.pattern);
  const setPattern = useApp((s) => s.setPattern);
  const start = useApp((s) => s.startIngest);
  const cancel = useApp((s) => s.cancelIngest);
  return (
    <form className="card ingest-controls" onSubmit={(e) => { e.preventDefault(); void start(); }}>
      <label className="grow">
        File pattern
        <input value={pattern} onChange={(e) => setPattern(e.target.value)} placeholder={placeholder} aria-label="File pattern" disabled={running} />
      </label>
      <button type="submit" className="primary" disabled={running}>{starting ? 'Starting…' : 'Start ingest'}</button>
      <button type="button" className="danger" onClick={() => void cancel()} disabled={!canCancel}>Cancel</button>
    </form>
  );
});

/** A run that ended degraded: which chunks are short of copies and why, and Repair. */
const DegradedRun = memo(function DegradedRun({ manifestPath }: { manifestPath: string }) {
  const open = useApp((s) => s.openManifest);
  const runRepair = useApp((s) => s.runRepair);
  const repairing = useApp((s) => s.repair.running);
  const report = useApp((s) => (s.repair.report?.previousManifestPath === manifestPath ? s.repair.report : null));
  // After a repair of this run, its latest manifest is the one repair wrote (and opened).
  const current = report?.manifestPath ?? manifestPath;
  const manifest = useApp((s) => (s.received.manifestPath === current ? s.received.manifest : null));
  // A repair that completed the run: the card says so, instead of listing a shortfall that is gone.
  const repaired = report?.status === 'complete' ? report : null;
  useEffect(() => {
    void open(manifestPath);
  }, [open, manifestPath]);
  const shortfall = manifest?.shortfall ?? [];
  if (repaired) {
    return (
      <div className="card degraded repaired" data-testid="degraded" data-repaired="true">
        <h2>Run ended degraded · repaired</h2>
        <p className="small">Repair gave every chunk its copies: the run's manifest is now complete (<span className="mono path">{repaired.manifestPath}</span>).</p>
      </div>
    );
  }
  if (!manifest) {
    return (
      <div className="card degraded" data-testid="degraded">
        <h2>Run ended degraded</h2>
        <p className="small muted">Reading which chunks are short of copies…</p>
      </div>
    );
  }
  return (
    <div className="card degraded" data-testid="degraded">
      <div className="problems-head">
        <h2>Run ended degraded <span className="count-pill bad">{shortfall.length}</span></h2>
        <button type="button" className="primary" disabled={repairing} onClick={() => void runRepair(current, {})}>Repair</button>
      </div>
      <p className="small">Every file was read, but {shortfall.length || 'some'} chunk{shortfall.length === 1 ? ' has' : 's have'} fewer good copies on healthy nodes than wanted. Repair copies them again from a good copy or the source, then verifies.</p>
      {shortfall.length > 0 && (
        <ul className="problem-list" aria-label="Chunks short of copies">
          {shortfall.slice(0, 200).map((c) => (
            <li key={c.chunkId} className="problem" data-testid="shortfall">
              <span className="problem-where">
                <span className="ellipsis" title={c.file}>{c.file}</span>
                <span className="mono ellipsis">{c.chunkId}</span>
                <span className="chunk-state failed">{c.copies} of {c.wanted} copies</span>
              </span>
              <span className="problem-what small">{c.reason}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
});

/**
 * Runs that were cancelled or killed, each with a Resume button. The list is read when the screen opens and
 * again whenever no run is going (after one finishes, fails or is cancelled), so it never shows the live run.
 */
const ResumableRuns = memo(function ResumableRuns({ running, activeRunId }: { running: boolean; activeRunId: string | null }) {
  const listed = useApp((s) => s.resumable.runs);
  // The run being resumed is going again: it is not unfinished any more, whatever the last listing said.
  const runs = activeRunId ? listed.filter((r) => r.runId !== activeRunId) : listed;
  const busy = running;
  const error = useApp((s) => s.resumable.error);
  const list = useApp((s) => s.listResumable);
  const resume = useApp((s) => s.resumeIngest);
  useEffect(() => {
    if (!running) void list();
  }, [running, list]);

  if (runs.length === 0 && !error) return null;
  return (
    <div className="card resumable" data-testid="resumable">
      <h2>Unfinished runs</h2>
      <ErrorBanner error={error} />
      {runs.length > 0 && (
        <table className="resumable-runs" aria-label="Unfinished runs">
          <thead>
            <tr><th>Run</th><th>Started</th><th>Chunks delivered</th><th>Ended</th><th /></tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.runId} data-testid={`resumable-${r.runId}`} data-chunks={r.chunksDone}>
                <td className="mono">{r.runId}</td>
                <td>{formatStarted(r.startedAt)}</td>
                <td className="num">{r.chunksDone}</td>
                <td><span className={`phase phase-${r.lastStatus ?? 'killed'}`}>{r.lastStatus ?? 'killed'}</span></td>
                <td className="act">
                  <button type="button" className="primary" disabled={busy} onClick={() => void resume(r.runId)} aria-label={`Resume ${r.runId}`}>Resume</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p className="muted small">Resuming skips the chunks a run already delivered and keeps its run id, pattern and manifest.</p>
    </div>
  );
});

function formatStarted(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}
