// The demo picture: one panel per node, one cell per chunk it holds, coloured by source file, so where every
// file's chunks went is obvious at a glance. Drawn on a canvas, so 100,000 chunks cost no DOM.
import { useEffect, useMemo, useRef } from 'react';
import type { ChunkUpdate } from '../../shared/ipc/contract.ts';
import { colourFor, formatBytes } from '../format.ts';

const STATE_COLOUR: Record<string, string> = {
  failed: '#dc2626',
  moved: '#a855f7',
};

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

/** Cell size and canvas height for n chunks: large squares for a handful, down to 1 px for 100,000. */
export function layoutCells(n: number, width = PANEL_W, maxHeight = MAX_H): { cell: number; perRow: number; height: number } {
  const count = Math.max(1, n);
  let cell = Math.max(1, Math.min(16, Math.floor(Math.sqrt((width * maxHeight) / count))));
  while (cell > 1 && Math.floor(width / cell) * Math.floor(maxHeight / cell) < count) cell -= 1;
  const perRow = Math.max(1, Math.floor(width / cell));
  const height = Math.min(maxHeight, Math.max(cell, Math.ceil(count / perRow) * cell));
  return { cell, perRow, height };
}

function NodeCanvas({ chunks }: { chunks: ChunkUpdate[] }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const { cell, perRow, height } = layoutCells(chunks.length);
  const width = PANEL_W;
  useEffect(() => {
    const canvas = ref.current;
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = width * dpr;
    canvas.height = height * dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const gap = cell >= 6 ? 1 : 0;
    chunks.forEach((c, i) => {
      const x = (i % perRow) * cell;
      const y = Math.floor(i / perRow) * cell;
      if (y >= height) return;
      const done = c.state === 'verified' || c.state === 'skipped';
      ctx.globalAlpha = done || STATE_COLOUR[c.state] ? 1 : 0.35;
      ctx.fillStyle = STATE_COLOUR[c.state] ?? colourFor(c.file);
      ctx.fillRect(x, y, cell - gap, cell - gap);
    });
    ctx.globalAlpha = 1;
  }, [chunks, width, height, cell, perRow]);
  return <canvas ref={ref} style={{ width, height }} aria-hidden="true" />;
}

export interface NodeFigures {
  bytes: number;
  chunks: number;
  state?: string;
}

export function DistributionMap({ chunks, nodeIds, figures }: { chunks: readonly (ChunkUpdate | undefined)[]; nodeIds: readonly string[]; figures: (nodeId: string) => NodeFigures }) {
  const byNode = useMemo(() => groupByNode(chunks, nodeIds), [chunks, nodeIds]);
  const files = useMemo(() => {
    const seen = new Set<string>();
    for (const c of chunks) if (c) seen.add(c.file);
    return [...seen];
  }, [chunks]);
  const maxBytes = Math.max(1, ...nodeIds.map((id) => figures(id).bytes));
  return (
    <div className="distribution" data-testid="distribution">
      <div className="dist-panels">
        {[...byNode.entries()].map(([nodeId, list]) => {
          const f = figures(nodeId);
          return (
            <figure key={nodeId} className="dist-panel" data-testid={`dist-${nodeId}`} data-chunks={list.length}>
              <figcaption>
                <strong>{nodeId}</strong>
                {f.state && f.state !== 'healthy' && <span className={`state-badge ${f.state}`}>{f.state}</span>}
                <span className="muted dist-figure">{formatBytes(f.bytes)} · {f.chunks} chunks</span>
              </figcaption>
              <div className="bar" data-testid={`bar-${nodeId}`}><div style={{ width: `${(f.bytes / maxBytes) * 100}%` }} /></div>
              <NodeCanvas chunks={list} />
            </figure>
          );
        })}
      </div>
      <ul className="legend" aria-label="Files">
        {files.slice(0, 12).map((f) => (
          <li key={f}>
            <span className="swatch" style={{ background: colourFor(f) }} />
            {f}
          </li>
        ))}
        {files.length > 12 && <li className="muted">+{files.length - 12} more files</li>}
        <li><span className="swatch" style={{ background: STATE_COLOUR.failed }} />failed</li>
      </ul>
    </div>
  );
}
