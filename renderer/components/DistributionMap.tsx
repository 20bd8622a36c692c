// The demo picture: one panel per node, one cell per chunk of the chunk view on it, coloured by source file, so
// where every file's chunks went is obvious at a glance. The chunk view is a bounded window on the run (every chunk
// of a small run; in flight, the latest finished and the first failed of a large one), and each panel's figures
// count every chunk. Drawn on a canvas, so thousands of cells cost no DOM. Hover a cell for the chunk's details;
// pick a file in the legend (or find it by name) to pick out its chunks on every node.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { MouseEvent } from 'react';
import { CHUNK_VIEW_MAX_ROWS } from '../../shared/ipc/contract.ts';
import type { ChunkUpdate } from '../../shared/ipc/contract.ts';
import { formatBytes } from '../format.ts';
import { FAILED_COLOUR, fileStyle, HIGHLIGHT_OUTLINE, MOVED_OUTLINE } from '../palette.ts';
import type { FileStyle } from '../palette.ts';
import type { FileColour } from '../store/types.ts';

export function groupByNode(chunks: readonly (ChunkUpdate | undefined)[], nodeIds: readonly string[]): Map<string, ChunkUpdate[]> {
  const out = new Map<string, ChunkUpdate[]>(nodeIds.map((id) => [id, []]));
  for (const c of chunks) {
    if (!c?.nodeId) continue;
    let list = out.get(c.nodeId);
    if (!list) out.set(c.nodeId, (list = []));
    list.push(c);
  }
  return out;
}

const PANEL_W = 240;
const MAX_H = 150;
const LEGEND_SEARCH_FROM = 12;
/** Files the legend lists at most (the rest are found by name). */
export const LEGEND_MAX_FILES = 200;

/** Cell size and canvas height for n chunks: large squares for a handful, down to 1 px for 100,000. */
export function layoutCells(n: number, width = PANEL_W, maxHeight = MAX_H): { cell: number; perRow: number; height: number } {
  const count = Math.max(1, n);
  let cell = Math.max(1, Math.min(16, Math.floor(Math.sqrt((width * maxHeight) / count))));
  while (cell > 1 && Math.floor(width / cell) * Math.floor(maxHeight / cell) < count) cell -= 1;
  const perRow = Math.max(1, Math.floor(width / cell));
  const height = Math.min(maxHeight, Math.max(cell, Math.ceil(count / perRow) * cell));
  return { cell, perRow, height };
}

function isDone(state: ChunkUpdate['state']): boolean {
  return state === 'verified' || state === 'skipped';
}

function drawMark(ctx: CanvasRenderingContext2D, style: FileStyle, x: number, y: number, size: number): void {
  if (style.mark === 0 || size < 6) return;
  ctx.fillStyle = '#ffffff';
  if (style.mark === 1) {
    ctx.beginPath();
    ctx.moveTo(x, y + size);
    ctx.lineTo(x + size, y);
    ctx.lineTo(x + size, y + size * 0.35);
    ctx.lineTo(x + size * 0.35, y + size);
    ctx.fill();
  } else if (style.mark === 2) {
    ctx.fillRect(x + size * 0.35, y + size * 0.35, size * 0.3, size * 0.3);
  } else {
    ctx.fillRect(x + 2, y + 2, size - 4, size - 4);
  }
}

function drawCell(ctx: CanvasRenderingContext2D, c: ChunkUpdate, style: FileStyle, x: number, y: number, size: number, dim: boolean): void {
  const failed = c.state === 'failed';
  ctx.globalAlpha = dim ? 0.12 : failed || isDone(c.state) ? 1 : c.state === 'cancelled' ? 0.2 : 0.4;
  ctx.fillStyle = failed ? FAILED_COLOUR : style.colour;
  ctx.fillRect(x, y, size, size);
  if (failed) {
    if (size >= 5) {
      // A cross, so a failed chunk reads as failed without telling red apart.
      ctx.strokeStyle = '#ffffff';
      ctx.lineWidth = Math.max(1, size / 6);
      ctx.beginPath();
      ctx.moveTo(x + 1.5, y + 1.5);
      ctx.lineTo(x + size - 1.5, y + size - 1.5);
      ctx.moveTo(x + size - 1.5, y + 1.5);
      ctx.lineTo(x + 1.5, y + size - 1.5);
      ctx.stroke();
    }
  } else {
    drawMark(ctx, style, x, y, size);
  }
  if (c.moved && size >= 4) {
    ctx.strokeStyle = MOVED_OUTLINE;
    ctx.lineWidth = size >= 8 ? 2 : 1;
    const inset = ctx.lineWidth / 2;
    ctx.strokeRect(x + inset, y + inset, size - 2 * inset, size - 2 * inset);
  }
}

interface Hover {
  chunk: ChunkUpdate;
  x: number;
  y: number;
}

function NodeCanvas({ chunks, capacity, styles, highlight, onHover }: { chunks: ChunkUpdate[]; capacity: number; styles: Map<string, FileStyle>; highlight: string | null; onHover: (hover: Hover | null) => void }) {
  const ref = useRef<HTMLCanvasElement>(null);
  // The row drawn in each cell: rows are replaced, never changed, when their chunk changes, so a cell holding the
  // same row object needs no drawing.
  const drawn = useRef<{ key: string; rows: ChunkUpdate[] }>({ key: '', rows: [] });
  // Laid out for the chunks the node is expected to get, so cells keep their size while the run fills them in.
  const { cell, perRow, height } = layoutCells(Math.max(chunks.length, capacity));
  const width = PANEL_W;
  const latest = useRef({ chunks, styles, highlight, cell, perRow, height });
  latest.current = { chunks, styles, highlight, cell, perRow, height };
  const job = useRef<{ timer: number | undefined; next: number }>({ timer: undefined, next: 0 });

  /** Draws changed cells for at most ~6 ms, then yields and goes on in a later task: never a long task. */
  const drawSome = useCallback((): void => {
    job.current.timer = undefined;
    const canvas = ref.current;
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return;
    const { chunks: list, styles: looks, highlight: picked, cell: size, perRow: across, height: tall } = latest.current;
    const dpr = window.devicePixelRatio || 1;
    // A new size or new colours start over; otherwise only the cells that changed are drawn again.
    const key = `${width}x${tall}/${size}/${across}/${dpr}/${looks.size}/${picked ?? ''}`;
    if (drawn.current.key !== key) {
      if (canvas.width !== width * dpr || canvas.height !== tall * dpr) {
        canvas.width = width * dpr;
        canvas.height = tall * dpr;
      }
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, tall);
      drawn.current = { key, rows: [] };
      job.current.next = 0;
    }
    const rows = drawn.current.rows;
    const gap = size >= 6 ? 1 : 0;
    const fallback: FileStyle = { colour: '#94a3b8', mark: 0 };
    const deadline = performance.now() + 6;
    for (let i = job.current.next; i < list.length; i += 1) {
      if ((i & 63) === 63 && performance.now() > deadline) {
        job.current.next = i;
        job.current.timer = window.setTimeout(drawSome, 0);
        return;
      }
      const c = list[i]!;
      const x = (i % across) * size;
      const y = Math.floor(i / across) * size;
      if (y >= tall) break;
      if (rows[i] === c) continue;
      rows[i] = c;
      ctx.clearRect(x, y, size, size);
      const dim = picked !== null && c.file !== picked;
      drawCell(ctx, c, looks.get(c.file) ?? fallback, x, y, size - gap, dim);
      if (picked !== null && !dim && size >= 6) {
        ctx.globalAlpha = 1;
        ctx.strokeStyle = HIGHLIGHT_OUTLINE;
        ctx.lineWidth = 1;
        ctx.strokeRect(x + 0.5, y + 0.5, size - gap - 1, size - gap - 1);
      }
    }
    for (let i = list.length; i < rows.length; i += 1) ctx.clearRect((i % across) * size, Math.floor(i / across) * size, size, size);
    rows.length = Math.min(rows.length, list.length);
    ctx.globalAlpha = 1;
    job.current.next = 0;
  }, [width]);

  useEffect(() => {
    // New rows: scan again from the first cell (unchanged cells cost a comparison) in a task of its own.
    job.current.next = 0;
    if (job.current.timer === undefined) job.current.timer = window.setTimeout(drawSome, 0);
  }, [chunks, styles, highlight, cell, perRow, height, drawSome]);
  useEffect(() => () => window.clearTimeout(job.current.timer), []);

  const hover = (e: MouseEvent<HTMLCanvasElement>): void => {
    const rect = e.currentTarget.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    const i = Math.floor(y / cell) * perRow + Math.floor(x / cell);
    const chunk = x >= 0 && x < perRow * cell && i >= 0 ? chunks[i] : undefined;
    onHover(chunk ? { chunk, x: (i % perRow) * cell + cell, y: Math.floor(i / perRow) * cell + cell } : null);
  };

  return (
    <canvas
      ref={ref}
      style={{ width, height }}
      data-cell={cell}
      data-per-row={perRow}
      role="img"
      aria-label={`${chunks.length} chunks; hover a cell for its details`}
      onMouseMove={hover}
      onMouseLeave={() => onHover(null)}
    />
  );
}

function HoverCard({ hover }: { hover: Hover }) {
  const c = hover.chunk;
  return (
    <div className="cell-card" role="tooltip" data-testid="cell-card" style={{ left: Math.min(hover.x + 6, PANEL_W - 150), top: hover.y + 34 }}>
      <strong className="mono">{c.id}</strong>
      <dl>
        <dt>File</dt><dd>{c.file}</dd>
        <dt>Offset</dt><dd>{c.offset.toLocaleString()} B</dd>
        <dt>Size</dt><dd>{formatBytes(c.size)}</dd>
        <dt>Node</dt><dd>{c.nodeId ?? '—'}</dd>
        <dt>State</dt><dd>{c.state}{c.moved ? ' (moved here)' : ''}</dd>
        <dt>Attempts</dt><dd>{c.attempt}</dd>
      </dl>
    </div>
  );
}

export interface NodeFigures {
  bytes: number;
  chunks: number;
  state?: string;
}

function Legend({ files, totalFiles, styles, highlight, onPick }: { files: readonly string[]; totalFiles: number; styles: Map<string, FileStyle>; highlight: string | null; onPick: (file: string | null) => void }) {
  const [query, setQuery] = useState('');
  const matching = query ? files.filter((f) => f.toLowerCase().includes(query.toLowerCase())) : files;
  const shown = matching.slice(0, LEGEND_MAX_FILES);
  const count = totalFiles > files.length ? `${files.length} of ${totalFiles} files (those of the chunks shown)` : `${files.length} file${files.length === 1 ? '' : 's'}`;
  return (
    <div className="legend">
      <div className="legend-head">
        <span className="muted small">{count} · click one to pick out its chunks</span>
        {files.length > LEGEND_SEARCH_FROM && (
          <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Find a file" aria-label="Find a file" />
        )}
        {highlight !== null && <button type="button" className="link" onClick={() => onPick(null)}>Show all files</button>}
      </div>
      <ul className="legend-files" aria-label="Files">
        {shown.map((f) => {
          const style = styles.get(f);
          return (
            <li key={f}>
              <button type="button" className={`legend-file${highlight === f ? ' picked' : ''}`} aria-pressed={highlight === f} onClick={() => onPick(highlight === f ? null : f)} title={f}>
                <span className={`swatch mark-${style?.mark ?? 0}`} style={{ background: style?.colour }} data-colour={style?.colour} />
                <span className="ellipsis">{f}</span>
              </button>
            </li>
          );
        })}
        {shown.length === 0 && <li className="muted small">No file matches “{query}”.</li>}
        {matching.length > shown.length && <li className="muted small" data-testid="legend-more">… {matching.length - shown.length} more: find one by name</li>}
      </ul>
      <ul className="legend-states" aria-label="Chunk states">
        <li><span className="swatch state-failed" />failed</li>
        <li><span className="swatch state-moved" />moved from another node</li>
        <li><span className="swatch state-flight" />waiting or in flight</li>
      </ul>
    </div>
  );
}

export interface DistributionProps {
  /** The chunk view's rows (every chunk of a run up to CHUNK_VIEW_MAX_ROWS). */
  chunks: readonly (ChunkUpdate | undefined)[];
  /** The rows' files, each with its colour's place (the order files first arrived); a file keeps it while shown. */
  files: readonly FileColour[];
  nodeIds: readonly string[];
  figures: (nodeId: string) => NodeFigures;
  /** Chunks the run will place in all (each node's picture is laid out for its share from the start). */
  expectedChunks?: number;
  /** Files in the run (the legend lists only those of the rows). */
  totalFiles?: number;
  placeholder?: string;
}

export function DistributionMap({ chunks, files, nodeIds, figures, expectedChunks = 0, totalFiles = 0, placeholder }: DistributionProps) {
  const byNode = useMemo(() => groupByNode(chunks, nodeIds), [chunks, nodeIds]);
  const styles = useMemo(() => new Map(files.map((f) => [f.name, fileStyle(f.order)])), [files]);
  const names = useMemo(() => files.map((f) => f.name), [files]);
  // Laid out for the rows the view can hold, so cells keep their size while a large run goes on.
  const capacity = Math.ceil(Math.min(expectedChunks, CHUNK_VIEW_MAX_ROWS) / Math.max(1, byNode.size));
  const rows = chunks.reduce((n, c) => n + Number(c !== undefined), 0);
  const [highlight, setHighlight] = useState<string | null>(null);
  const [hover, setHover] = useState<{ nodeId: string; hover: Hover } | null>(null);
  const picked = highlight !== null && styles.has(highlight) ? highlight : null;
  const totalBytes = nodeIds.reduce((n, id) => n + figures(id).bytes, 0);
  const maxBytes = Math.max(1, ...nodeIds.map((id) => figures(id).bytes));
  return (
    <div className="distribution" data-testid="distribution" data-highlight={picked ?? ''}>
      {placeholder && <p className="muted small">{placeholder}</p>}
      <div className="dist-panels">
        {[...byNode.entries()].map(([nodeId, list]) => {
          const f = figures(nodeId);
          const share = totalBytes > 0 ? (f.bytes / totalBytes) * 100 : 0;
          const highlighted = picked === null ? 0 : list.filter((c) => c.file === picked).length;
          return (
            <figure key={nodeId} className="dist-panel" data-testid={`dist-${nodeId}`} data-chunks={list.length} data-highlighted={highlighted} data-moved={list.filter((c) => c.moved).length}>
              <figcaption>
                <strong>{nodeId}</strong>
                {f.state && f.state !== 'healthy' && <span className={`state-badge ${f.state}`}>{f.state}</span>}
                <span className="muted dist-figure" data-testid={`share-${nodeId}`}>
                  {formatBytes(f.bytes)} · {share.toFixed(share >= 10 || share === 0 ? 0 : 1)}% · {f.chunks} chunks
                </span>
              </figcaption>
              <div className="bar" data-testid={`bar-${nodeId}`} aria-hidden="true"><div style={{ width: `${(f.bytes / maxBytes) * 100}%` }} /></div>
              <NodeCanvas chunks={list} capacity={capacity} styles={styles} highlight={picked} onHover={(h) => setHover(h ? { nodeId, hover: h } : null)} />
              {picked !== null && <span className="small muted">{highlighted} chunk{highlighted === 1 ? '' : 's'} of {picked}</span>}
              {hover?.nodeId === nodeId && <HoverCard hover={hover.hover} />}
            </figure>
          );
        })}
      </div>
      {expectedChunks > CHUNK_VIEW_MAX_ROWS && (
        <p className="muted small" data-testid="dist-window-note">
          A run this size is drawn from the chunk list below: its {rows.toLocaleString('en-US')} chunks of the run's {expectedChunks.toLocaleString('en-US')}. Each node's figures count them all.
        </p>
      )}
      {files.length > 0 && <Legend files={names} totalFiles={totalFiles} styles={styles} highlight={picked} onPick={setHighlight} />}
    </div>
  );
}
