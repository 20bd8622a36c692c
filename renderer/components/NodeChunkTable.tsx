// The Received screen's table of one node's chunk copies. A run sent whole lists them from its manifest; a large run
// (`manifest.partial`) has them fetched a page at a time as they scroll into view, with placeholder rows meanwhile.
// "Problems only" lists the verify problems on the node.
import { useCallback, useMemo } from 'react';
import type { NodeChunkRow, OpenedManifest } from '../../shared/ipc/contract.ts';
import type { VerifyProblem } from '../../shared/types.ts';
import { formatBytes, shortHash } from '../format.ts';
import { rowAt } from '../store/chunk-pages.ts';
import { useApp } from '../store/context.tsx';
import type { RowFocus } from '../store/types.ts';
import { VirtualList } from './VirtualList.tsx';

export const PROBLEM_LABEL: Record<VerifyProblem['reason'], string> = { missing: 'missing', checksum_mismatch: 'damaged', unreadable: 'unreadable' };

export function problemKey(chunkId: string, nodeId: string): string {
  return `${chunkId}\0${nodeId}`;
}

/** What is wrong with a copy, in words a user can act on. */
export function problemText(p: VerifyProblem): string {
  if (p.reason === 'missing') return 'missing: the node does not hold this copy';
  if (p.reason === 'unreadable') return `unreadable: ${p.detail}`;
  return 'damaged: its bytes do not hash to the manifest’s checksum';
}

/** A row as the table shows it: a copy from the manifest, or a problem from verify (which names its chunk). */
interface ShownRow {
  id: string;
  index?: number | undefined;
  file?: string | undefined;
  offset?: number | undefined;
  size?: number | undefined;
  checksum?: string | undefined;
  location?: string | undefined;
}

function copyRow({ chunk, location }: NodeChunkRow): ShownRow {
  return { id: chunk.id, index: chunk.index, file: chunk.file, offset: chunk.offset, size: chunk.size, checksum: chunk.checksum, location };
}

function problemRow(p: VerifyProblem): ShownRow {
  return { id: p.chunkId, index: p.index, file: p.file, offset: p.offset, size: p.size, checksum: p.expected };
}

export interface TableProps {
  manifest: OpenedManifest;
  nodeId: string;
  problemsOnly: boolean;
  /** Verify's problems by problemKey. */
  problems: Map<string, VerifyProblem>;
  /** Whether verify checked this node's copies. */
  checked: boolean;
}

/** The node's copies: from the manifest sent whole, or a page at a time for a large run. */
export function NodeChunkTable(props: TableProps) {
  if (props.problemsOnly && props.manifest.partial) return <ProblemRows {...props} />;
  return props.manifest.partial ? <PagedRows {...props} /> : <WholeRows {...props} />;
}

function WholeRows({ manifest, nodeId, problemsOnly, problems, checked }: TableProps) {
  const focus = useApp((s) => s.received.focus);
  const rows = useMemo(() => {
    const out: ShownRow[] = [];
    for (const chunk of manifest.chunks) {
      for (const copy of chunk.copies) {
        if (copy.nodeId === nodeId && (!problemsOnly || problems.has(problemKey(chunk.id, nodeId)))) out.push(copyRow({ chunk, location: copy.location }));
      }
    }
    return out;
  }, [manifest, nodeId, problemsOnly, problems]);
  const focusIndex = focus?.nodeId === nodeId ? rows.findIndex((r) => r.id === focus.chunkId) : -1;
  return <ChunkList nodeId={nodeId} count={rows.length} row={(i) => rows[i] ?? null} focus={focus} focusIndex={focusIndex} problems={problems} checked={checked} />;
}

/** A large run's "Problems only": verify's problems on the node, as it named them (no manifest lookup). */
function ProblemRows({ nodeId, problems, checked }: TableProps) {
  const focus = useApp((s) => s.received.focus);
  const rows = useMemo(() => [...problems.values()].filter((p) => p.nodeId === nodeId).map(problemRow), [problems, nodeId]);
  const focusIndex = focus?.nodeId === nodeId ? rows.findIndex((r) => r.id === focus.chunkId) : -1;
  return <ChunkList nodeId={nodeId} count={rows.length} row={(i) => rows[i] ?? null} focus={focus} focusIndex={focusIndex} problems={problems} checked={checked} />;
}

/** A large run: every copy on the node, the pages on screen fetched from the host. */
function PagedRows({ manifest, nodeId, problems, checked }: TableProps) {
  const focus = useApp((s) => s.received.focus);
  const manifestPath = useApp((s) => s.received.manifestPath) ?? '';
  const pages = useApp((s) => s.received.pages);
  const showRows = useApp((s) => s.showRows);
  const onRange = useCallback((first: number, last: number) => showRows(nodeId, first, last), [showRows, nodeId]);
  const row = (i: number): ShownRow | null => {
    const found = rowAt(pages, manifestPath, nodeId, i);
    return found ? copyRow(found) : null;
  };
  const focusIndex = focus?.nodeId === nodeId ? (focus.position ?? -1) : -1;
  const count = manifest.partial?.perNode[nodeId] ?? 0;
  return <ChunkList nodeId={nodeId} count={count} row={row} focus={focus} focusIndex={focusIndex} problems={problems} checked={checked} onRange={onRange} />;
}

interface ListProps {
  nodeId: string;
  count: number;
  /** Row `i`, or null while it loads. */
  row: (i: number) => ShownRow | null;
  focus: RowFocus | null;
  focusIndex: number;
  problems: Map<string, VerifyProblem>;
  checked: boolean;
  onRange?: (first: number, last: number) => void;
}

function ChunkList({ nodeId, count, row, focus, focusIndex, problems, checked, onRange }: ListProps) {
  const isFocused = (r: ShownRow | null) => r !== null && focus?.nodeId === nodeId && r.id === focus.chunkId;
  const problemsOnly = useApp((s) => s.received.problemsOnly);
  return (
    <>
      <VirtualList
        count={count}
        rowHeight={28}
        height={380}
        label={`Chunks on ${nodeId}`}
        testId="received-list"
        scrollTo={focusIndex >= 0 && focus ? { index: focusIndex, key: focus.at } : null}
        rowClass={(i) => {
          const r = row(i);
          return `${isFocused(r) ? 'focused' : ''}${r && problems.has(problemKey(r.id, nodeId)) ? ' has-problem' : ''}`;
        }}
        renderRow={(i) => {
          const r = row(i);
          return r ? <CopyCells row={r} problem={problems.get(problemKey(r.id, nodeId))} checked={checked} /> : <LoadingCells />;
        }}
        {...(onRange ? { onRange } : {})}
      />
      {problemsOnly && count === 0 && <p className="muted small">No problems on {nodeId}.</p>}
    </>
  );
}

function CopyCells({ row, problem, checked }: { row: ShownRow; problem: VerifyProblem | undefined; checked: boolean }) {
  return (
    <div className="received-cols" title={`${row.id}${row.location ? `\n${row.location}` : ''}`} data-chunk={row.id}>
      <span className="mono">#{row.index ?? '?'}</span>
      <span className="ellipsis">{row.file ?? '?'}</span>
      <span className="num">{row.offset?.toLocaleString() ?? '?'}</span>
      <span className="num">{row.size === undefined ? '?' : formatBytes(row.size)}</span>
      <span className="mono" title={row.checksum}>{row.checksum ? shortHash(row.checksum) : '—'}</span>
      <span className="check-cell">
        {problem ? (
          <span className="chunk-state failed" title={problemText(problem)}>{PROBLEM_LABEL[problem.reason]}</span>
        ) : checked ? (
          <span className="chunk-state verified">ok</span>
        ) : (
          <span className="muted">—</span>
        )}
      </span>
    </div>
  );
}

/** A row whose page is on its way from the host. */
function LoadingCells() {
  return (
    <div className="received-cols loading-row" data-testid="row-loading" aria-busy="true">
      <span className="muted">…</span>
      <span className="muted">loading</span>
    </div>
  );
}
