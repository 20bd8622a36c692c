// Received chunks: what each node holds (from a run's manifest), verify one node or all, see every bad copy in the
// Problems list (node, file, chunk, offset, both checksums), jump to its row, repair it, reassemble a file.
import { useEffect, useMemo, useState } from 'react';
import type { FormEvent } from 'react';
import type { OpenedManifest, VerifyResult } from '../../shared/ipc/contract.ts';
import type { VerifyProblem } from '../../shared/types.ts';
import { formatBytes } from '../format.ts';
import { useApp } from '../store/context.tsx';
import type { FileSearch } from '../store/types.ts';
import { ErrorBanner } from './ErrorBanner.tsx';
import { NodeChunkTable, PROBLEM_LABEL, problemKey, problemText } from './NodeChunkTable.tsx';
import { RepairStatus } from './RepairStatus.tsx';

const PROBLEMS_SHOWN = 500;
/** How long the file search waits after the last keystroke before it asks the host. */
export const FILE_SEARCH_DEBOUNCE_MS = 250;

/** Copies per node, every node the manifest names first: counted from a manifest sent whole, or as the host counted them (a large run). */
function copiesPerNode(manifest: OpenedManifest): Map<string, number> {
  const out = new Map<string, number>(manifest.nodes.map((n) => [n.id, 0]));
  if (manifest.partial) {
    for (const [id, n] of Object.entries(manifest.partial.perNode)) out.set(id, n);
    return out;
  }
  for (const chunk of manifest.chunks) for (const copy of chunk.copies) out.set(copy.nodeId, (out.get(copy.nodeId) ?? 0) + 1);
  return out;
}

/** What the screen shows of a large run, and how to reach the rest. */
function PartialNote({ partial }: { partial: NonNullable<OpenedManifest['partial']> }) {
  return (
    <p className="banner" role="note" data-testid="manifest-partial">
      A large run: {partial.files.toLocaleString()} files and {partial.chunks.toLocaleString()} chunks. Each node’s chunks are fetched a page at a time as you scroll its
      table (the tabs count them all), and the file to rebuild is found by searching its name. Verify and repair cover every chunk.
    </p>
  );
}

function summary(result: VerifyResult): string {
  if (result.problems.length === 0) return `All ${result.checked} chunk copies ${result.nodeId ? `on ${result.nodeId} ` : ''}verified: checksums match.`;
  const perNode = new Map<string, number>();
  for (const p of result.problems) perNode.set(p.nodeId, (perNode.get(p.nodeId) ?? 0) + 1);
  const where = [...perNode.entries()].map(([id, n]) => `${id} (${n})`).join(', ');
  const lost = result.unrecoverable.length;
  return `${result.problems.length} of ${result.checked} copies have problems, on ${where}${lost ? `; ${lost} chunk${lost === 1 ? ' has' : 's have'} no good copy left` : ''}.`;
}

function ProblemsList({ result, manifestPath }: { result: VerifyResult; manifestPath: string }) {
  const focusRow = useApp((s) => s.focusRow);
  const runRepair = useApp((s) => s.runRepair);
  const repairing = useApp((s) => s.repair.running);
  const busy = useApp((s) => s.received.verifying !== null) || repairing;
  const lost = useMemo(() => new Set(result.unrecoverable), [result]);
  const shown = result.problems.slice(0, PROBLEMS_SHOWN);
  return (
    <div className="card problems" data-testid="problems">
      <div className="problems-head">
        <h2>Problems <span className="count-pill bad">{result.problems.length}</span></h2>
        <button type="button" className="primary" disabled={busy} onClick={() => void runRepair(manifestPath, {})}>
          Repair all
        </button>
      </div>
      <ul className="problem-list" aria-label="Problems">
        {shown.map((p) => (
          <li key={problemKey(p.chunkId, p.nodeId)} className="problem" data-testid="problem" data-node={p.nodeId} data-chunk={p.chunkId}>
            <button type="button" className="problem-main" onClick={() => void focusRow(p.nodeId, p.chunkId)} aria-label={`Show ${p.chunkId} on ${p.nodeId} in the table`}>
              <span className="problem-where">
                <span className="node-name">{p.nodeId}</span>
                <span className="ellipsis" title={p.file}>{p.file ?? '?'}</span>
                <span className="mono">chunk #{p.index ?? '?'}</span>
                <span className="muted small">offset {p.offset?.toLocaleString() ?? '?'} · {formatBytes(p.size)}</span>
                <span className={`chunk-state ${p.reason === 'missing' ? 'failed' : 'retried'}`}>{PROBLEM_LABEL[p.reason]}</span>
                {lost.has(p.chunkId) && <span className="chunk-state failed">no good copy left</span>}
              </span>
              <span className="problem-what small">
                {problemText(p)}
                {p.expected && <> · expected <code className="hash">{p.expected}</code></>}
                {p.found && <> · found <code className="hash">{p.found}</code></>}
              </span>
              <span className="mono muted small ellipsis">{p.chunkId}</span>
            </button>
            <span className="problem-actions">
              <button type="button" disabled={busy} onClick={() => void runRepair(manifestPath, { chunkIds: [p.chunkId] })} aria-label={`Repair ${p.chunkId}`}>Repair</button>
              {p.file && <button type="button" disabled={busy} onClick={() => void runRepair(manifestPath, { files: [p.file!] })} aria-label={`Repair every chunk of ${p.file}`}>Repair file</button>}
            </span>
          </li>
        ))}
      </ul>
      {result.problems.length > PROBLEMS_SHOWN && <p className="muted small">{result.problems.length - PROBLEMS_SHOWN} more: use “Problems only” on each node’s tab.</p>}
    </div>
  );
}

export function ReceivedScreen() {
  const manifests = useApp((s) => s.received.manifests);
  const manifestPath = useApp((s) => s.received.manifestPath);
  const manifest = useApp((s) => s.received.manifest);
  const nodeId = useApp((s) => s.received.nodeId);
  const loading = useApp((s) => s.received.loading);
  const error = useApp((s) => s.received.error);
  const verifying = useApp((s) => s.received.verifying);
  const verifyResult = useApp((s) => s.received.verify);
  const problemsOnly = useApp((s) => s.received.problemsOnly);
  const task = useApp((s) => s.received.task);
  const repairing = useApp((s) => s.repair.running);
  const list = useApp((s) => s.listManifests);
  const open = useApp((s) => s.openManifest);
  const selectNode = useApp((s) => s.selectNode);
  const verify = useApp((s) => s.verify);
  const setProblemsOnly = useApp((s) => s.setProblemsOnly);
  const runRepair = useApp((s) => s.runRepair);
  const cancelTask = useApp((s) => s.cancelTask);

  useEffect(() => {
    void list();
  }, [list]);

  const counts = useMemo(() => (manifest ? copiesPerNode(manifest) : new Map<string, number>()), [manifest]);
  const problems = useMemo(() => {
    const m = new Map<string, VerifyProblem>();
    for (const p of verifyResult?.problems ?? []) m.set(problemKey(p.chunkId, p.nodeId), p);
    return m;
  }, [verifyResult]);
  const problemsPerNode = useMemo(() => {
    const m = new Map<string, number>();
    for (const p of verifyResult?.problems ?? []) m.set(p.nodeId, (m.get(p.nodeId) ?? 0) + 1);
    return m;
  }, [verifyResult]);
  const verifiedNode = (id: string) => verifyResult && (verifyResult.nodeId === null || verifyResult.nodeId === id);
  const busy = verifying !== null || repairing;

  return (
    <section className="screen" aria-labelledby="received-title">
      <header className="screen-head">
        <div>
          <h1 id="received-title">Received chunks</h1>
          <p className="muted">What every node holds according to a run's manifest; re-hash to verify, repair, or rebuild a file.</p>
        </div>
        <div className="actions">
          <label>
            Run{' '}
            <select aria-label="Run manifest" value={manifestPath ?? ''} onChange={(e) => void open(e.target.value)} disabled={manifests.length === 0}>
              {manifests.length === 0 && <option value="">no runs yet</option>}
              {manifests.map((m) => (
                <option key={m.path} value={m.path}>
                  {m.runId} · {m.status}
                </option>
              ))}
            </select>
          </label>
          <button type="button" onClick={() => void list()}>Refresh</button>
        </div>
      </header>
      <ErrorBanner error={error} />
      {!manifest || !manifestPath ? (
        <div className="card"><p className="muted">{loading ? 'Opening manifest…' : 'No run selected. Run an ingest first, or pick a past run above.'}</p></div>
      ) : (
        <>
          <div className="card run-summary">
            <dl className="figures inline">
              <div><dt>Status</dt><dd className={manifest.status === 'complete' ? '' : 'bad'} data-testid="manifest-status">{manifest.status}</dd></div>
              <div><dt>Files</dt><dd>{manifest.totals.files}</dd></div>
              <div><dt>Chunks</dt><dd>{manifest.totals.chunks}</dd></div>
              <div><dt>Bytes</dt><dd>{formatBytes(manifest.totals.bytes)}</dd></div>
              <div><dt>Checksum</dt><dd>{manifest.checksumAlgorithm}</dd></div>
              <div><dt>Started</dt><dd>{new Date(manifest.startedAt).toLocaleString()}</dd></div>
            </dl>
            {manifest.partial && <PartialNote partial={manifest.partial} />}
            <div className="actions">
              <button type="button" className="primary" onClick={() => void verify()} disabled={busy}>{verifying === 'all' ? 'Verifying…' : 'Verify all'}</button>
              <button type="button" onClick={() => nodeId && void verify(nodeId)} disabled={busy || !nodeId}>{verifying && verifying !== 'all' ? 'Verifying…' : `Verify ${nodeId ?? 'node'}`}</button>
              <button type="button" onClick={() => void runRepair(manifestPath, {})} disabled={busy} title="Check every copy and restore the missing or damaged ones">Repair…</button>
              {verifying && <button type="button" className="danger" onClick={() => void cancelTask('verify')}>Cancel</button>}
            </div>
            {verifying && task?.task === 'verify' && <TaskBar label="Verify progress" done={task.done} total={task.total} />}
            {verifyResult && (
              <p className={`banner ${verifyResult.problems.length ? 'error' : 'ok'}`} role="status" data-testid="verify-result">{summary(verifyResult)}</p>
            )}
          </div>
          <RepairStatus />
          {verifyResult && verifyResult.problems.length > 0 && <ProblemsList result={verifyResult} manifestPath={manifestPath} />}
          <div className="received-grid">
            <div className="card">
              <div className="table-tools">
                <div className="tabs" role="tablist" aria-label="Nodes">
                  {[...counts.entries()].map(([id, held]) => {
                    const bad = problemsPerNode.get(id) ?? 0;
                    return (
                      <button
                        key={id}
                        type="button"
                        role="tab"
                        aria-selected={id === nodeId}
                        aria-label={`${id}: ${held.toLocaleString()} chunks${verifiedNode(id) ? `, ${bad} problem${bad === 1 ? '' : 's'}` : ''}`}
                        className={id === nodeId ? 'tab active' : 'tab'}
                        data-testid={`tab-${id}`}
                        data-problems={bad}
                        onClick={() => selectNode(id)}
                      >
                        {id} <span className="muted" data-testid={`tab-count-${id}`}>{held.toLocaleString()}</span>
                        {bad > 0 && <span className="count-pill bad">{bad}</span>}
                        {bad === 0 && verifiedNode(id) && <span className="count-pill good">✓</span>}
                      </button>
                    );
                  })}
                </div>
                <label className="check">
                  <input type="checkbox" checked={problemsOnly} onChange={(e) => setProblemsOnly(e.target.checked)} disabled={!verifyResult} />
                  Problems only
                </label>
              </div>
              <div className="vhead received-cols" role="presentation"><span>Chunk</span><span>Source file</span><span>Offset</span><span>Size</span><span>Checksum</span><span>Check</span></div>
              {nodeId && <NodeChunkTable manifest={manifest} nodeId={nodeId} problemsOnly={problemsOnly} problems={problems} checked={Boolean(verifiedNode(nodeId))} />}
            </div>
            {manifest.partial ? <ReassembleCard search /> : <ReassembleCard keys={manifest.files.map((f) => f.key)} />}
          </div>
        </>
      )}
    </section>
  );
}

/** A task's progress bar (verify, reassemble): the share of `total` done. */
function TaskBar({ label, done, total }: { label: string; done: number; total: number }) {
  const share = total ? done / total : 0;
  return (
    <div className="bar" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(share * 100)}>
      <div style={{ width: `${share * 100}%` }} />
    </div>
  );
}

/** A large run's file search: the host's first matches for what is typed, asked for once typing pauses. */
function FileSearchField() {
  const searchFiles = useApp((s) => s.searchFiles);
  const manifestPath = useApp((s) => s.received.manifestPath);
  const found = useApp((s) => s.received.fileSearch);
  const [query, setQuery] = useState('');
  useEffect(() => {
    const timer = setTimeout(() => void searchFiles(query), FILE_SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [query, manifestPath, searchFiles]);
  return (
    <>
      <label>Find a file
        <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="any part of its name" aria-label="Search files" />
      </label>
      <p className="muted small" data-testid="file-matches" aria-live="polite">{matchesText(found)}</p>
    </>
  );
}

function matchesText(found: FileSearch | null): string {
  if (!found || found.searching) return 'Searching…';
  const n = found.keys.length;
  if (n === 0) return `No file name contains “${found.query}”.`;
  if (found.more) return `The first ${n.toLocaleString()} matches, in manifest order; type more of the name to narrow them.`;
  return `${n.toLocaleString()} match${n === 1 ? '' : 'es'}.`;
}

/** Rebuilds a file: chosen from the manifest's keys, or for a large run (`search`) from the host's matches to a search. */
export function ReassembleCard(props: { keys: string[] } | { search: true }) {
  const searched = useApp((s) => s.received.fileSearch?.keys);
  const keys = 'search' in props ? (searched ?? []) : props.keys;
  const reassemble = useApp((s) => s.reassemble);
  const busy = useApp((s) => s.received.reassembling);
  const result = useApp((s) => s.received.reassemble);
  const cancelTask = useApp((s) => s.cancelTask);
  const task = useApp((s) => s.received.task);
  const appInfo = useApp((s) => s.appInfo);
  const pickFolder = useApp((s) => s.pickOutputFolder);
  const [key, setKey] = useState('');
  const [outPath, setOutPath] = useState('');
  const chosen = keys.includes(key) ? key : (keys[0] ?? '');
  const defaultOut = `reassembled/${chosen}`;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (chosen) void reassemble(chosen, outPath.trim() || defaultOut);
  };
  const choose = async () => {
    const folder = await pickFolder();
    if (folder) setOutPath(`${folder.replace(/[\\/]+$/, '')}/${chosen.split('/').pop() ?? chosen}`);
  };

  return (
    <form className="card reassemble" onSubmit={submit} aria-label="Reassemble a file">
      <h2>Reassemble a file</h2>
      {'search' in props && <FileSearchField />}
      <label>File
        <select value={chosen} onChange={(e) => setKey(e.target.value)} aria-label="File to reassemble">
          {keys.map((k) => <option key={k} value={k}>{k}</option>)}
        </select>
      </label>
      <label>Write to
        <input value={outPath} onChange={(e) => setOutPath(e.target.value)} placeholder={defaultOut} aria-label="Output path" />
      </label>
      {appInfo?.canPickFolder ? (
        <div className="row">
          <p className="muted small">Under the project folder, or a folder you choose.</p>
          <button type="button" onClick={() => void choose()}>Choose folder…</button>
        </div>
      ) : (
        <p className="muted small" data-testid="output-rule">
          Files are written under the project folder{appInfo ? <> (<span className="mono path">{appInfo.projectDir}</span>)</> : ''}; relative paths start there.
          {appInfo?.mode === 'serve' ? ' In the browser there is no folder dialog, so other folders are refused.' : ''}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={busy || !chosen}>{busy ? 'Reassembling…' : 'Reassemble'}</button>
        {busy && <button type="button" className="danger" onClick={() => void cancelTask('reassemble')}>Cancel</button>}
      </div>
      {busy && task?.task === 'reassemble' && <TaskBar label="Reassemble progress" done={task.done} total={task.total} />}
      {result && (
        <div className={`banner ${result.matched ? 'ok' : 'error'}`} role="status" data-testid="reassemble-result">
          <strong>{result.matched ? 'Checksum matches' : 'Checksum MISMATCH'}</strong>
          <span className="mono small path">{result.outPath}</span>
          <span className="small">{formatBytes(result.bytes)} · manifest checksum <code className="hash">{result.expected}</code>{result.matched ? '' : <> · got <code className="hash">{result.actual}</code></>}</span>
          <span className="small" data-testid="reassemble-md5">MD5 (compare with <code>md5sum</code>): <code className="hash">{result.md5Hex}</code></span>
        </div>
      )}
    </form>
  );
}
