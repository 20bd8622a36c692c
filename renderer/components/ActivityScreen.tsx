// Activity: every past run (status, duration, bytes, files, mean throughput, retries, moves, who ran it from
// where), newest first, and the selected run's throughput over time, from its journal, whoever ran it.
import { useEffect, useMemo } from 'react';
import type { ActivityDetail, ActivityEntry } from '../../shared/ipc/contract.ts';
import { formatBytes, formatDuration, formatRate } from '../format.ts';
import { useApp } from '../store/context.tsx';
import { ErrorBanner } from './ErrorBanner.tsx';

const CHART_W = 640;
const CHART_H = 180;
const PAD = { left: 84, right: 16, top: 10, bottom: 26 };

/** Throughput (bytes/s) between consecutive samples, at each interval's end. */
export function throughputSeries(samples: readonly [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 1; i < samples.length; i += 1) {
    const [t0, b0] = samples[i - 1]!;
    const [t1, b1] = samples[i]!;
    if (t1 > t0) out.push([t1, Math.max(0, ((b1 - b0) / (t1 - t0)) * 1000)]);
  }
  return out;
}

export function emptyChartText(detail: ActivityDetail): string {
  if (detail.source === 'none') return 'Its journal has no timings (it ran before journals recorded them, or the journal is gone), so only its totals are known.';
  if (detail.samples.length === 0 && detail.heldChunks > 0) return `Nothing to chart: all ${detail.heldChunks} chunks were already on their nodes, so none was sent.`;
  return 'Too short to chart: its chunks were all stored within one moment.';
}

function ThroughputChart({ detail }: { detail: ActivityDetail }) {
  const series = useMemo(() => throughputSeries(detail.samples), [detail]);
  if (series.length < 2) {
    return <p className="muted" data-testid="chart-empty">{emptyChartText(detail)}</p>;
  }
  const maxT = Math.max(...series.map(([t]) => t), 1);
  const maxY = Math.max(...series.map(([, y]) => y), 1);
  const w = CHART_W - PAD.left - PAD.right;
  const h = CHART_H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + (t / maxT) * w;
  const y = (v: number) => PAD.top + h - (v / maxY) * h;
  const path = series.map(([t, v], i) => `${i === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const area = `${path} L${x(series.at(-1)![0]).toFixed(1)},${PAD.top + h} L${x(series[0]![0]).toFixed(1)},${PAD.top + h} Z`;
  return (
    <svg className="chart" viewBox={`0 0 ${CHART_W} ${CHART_H}`} role="img" aria-label={`Throughput of ${detail.runId} over time, peak ${formatRate(maxY)}`} data-testid="throughput-chart" data-points={series.length}>
      <line x1={PAD.left} y1={PAD.top + h} x2={PAD.left + w} y2={PAD.top + h} className="axis" />
      <line x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={PAD.top + h} className="axis" />
      <text x={PAD.left - 6} y={PAD.top + 8} className="tick" textAnchor="end">{formatRate(maxY)}</text>
      <text x={PAD.left - 6} y={PAD.top + h} className="tick" textAnchor="end">0</text>
      <text x={PAD.left + w} y={CHART_H - 6} className="tick" textAnchor="end">{formatDuration(maxT / 1000)}</text>
      <text x={PAD.left} y={CHART_H - 6} className="tick">0s</text>
      <path d={area} className="area" />
      <path d={path} className="line" />
    </svg>
  );
}

/** `CLI · ana@gpu-07`, `app · ana@laptop`; a run from before manifests said who ran it: `not recorded`. */
export function originText(origin: ActivityEntry['origin']): string {
  if (origin.tool === 'unknown') return 'not recorded';
  const who = origin.user || origin.host ? ` · ${origin.user ?? '?'}@${origin.host ?? '?'}` : '';
  return `${origin.tool === 'cli' ? 'CLI' : 'app'}${who}`;
}

export function ActivityScreen() {
  const entries = useApp((s) => s.activity.entries);
  const selected = useApp((s) => s.activity.selected);
  const detail = useApp((s) => s.activity.detail);
  const loading = useApp((s) => s.activity.loading);
  const error = useApp((s) => s.activity.error);
  const list = useApp((s) => s.listActivity);
  const select = useApp((s) => s.selectActivity);
  useEffect(() => {
    void list();
  }, [list]);
  const entry = entries.find((e) => e.runId === selected);

  return (
    <section className="screen" aria-labelledby="activity-title">
      <header className="screen-head">
        <div>
          <h1 id="activity-title">Activity</h1>
          <p className="muted">Every run so far, newest first; pick one to see its throughput over time.</p>
        </div>
        <div className="actions">
          <button type="button" onClick={() => void list()} disabled={loading}>{loading ? 'Reading…' : 'Refresh'}</button>
        </div>
      </header>
      <ErrorBanner error={error} />
      {entry && (
        <div className="card">
          <h2>Throughput of {entry.runId}</h2>
          <p className="muted">
            {originText(entry.origin) === 'not recorded' ? 'Who ran it was not recorded' : `Ran from ${originText(entry.origin)}`}
            {detail?.runId === entry.runId && detail.attempts > 1 ? ` · ${detail.attempts} attempts, laid end to end` : ''}
          </p>
          {detail?.runId === entry.runId ? <ThroughputChart detail={detail} /> : <p className="muted">Loading…</p>}
        </div>
      )}
      <div className="card table-card">
        {entries.length === 0 ? (
          <p className="muted">{loading ? 'Reading the run history…' : 'No runs yet.'}</p>
        ) : (
          <table className="activity" aria-label="Runs">
            <thead>
              <tr>
                <th>Run</th><th>Status</th><th>Started</th><th className="num">Duration</th><th className="num">Bytes</th><th className="num">Files</th>
                <th className="num">Mean</th><th className="num">Retries</th><th className="num">Moves</th><th>Ran from</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.runId} className={e.runId === selected ? 'selected' : ''} data-testid={`activity-${e.runId}`} aria-selected={e.runId === selected}>
                  <td className="run-id">
                    <button type="button" className="link mono" onClick={() => void select(e.runId)} aria-label={`Show throughput of ${e.runId}`}>{e.runId}</button>
                  </td>
                  <td><span className={`phase phase-${e.status}`}>{e.status}</span></td>
                  <td className="wrap">{new Date(e.startedAt).toLocaleString()}</td>
                  <td className="num">{formatDuration(e.durationMs / 1000)}</td>
                  <td className="num">{formatBytes(e.bytes)}</td>
                  <td className="num">{e.files}</td>
                  <td className="num">{formatRate(e.meanBytesPerSecond)}</td>
                  <td className="num">{e.retries}</td>
                  <td className="num">{e.moves}</td>
                  <td className="wrap" data-testid="ran-by">{originText(e.origin)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
