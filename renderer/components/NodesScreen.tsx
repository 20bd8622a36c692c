// Nodes: live state of every node, and add/edit/remove written back to the config file.
import { useEffect, useMemo, useState } from 'react';
import type { FormEvent } from 'react';
import { CLOUDS } from '../../shared/config/types.ts';
import type { CloudName, NodeConfig } from '../../shared/config/types.ts';
import { validateConfigText } from '../../shared/config/validate.ts';
import type { PullWorkersView, PullWorkerView } from '../../shared/ipc/contract.ts';
import type { NodeStatus } from '../../shared/types.ts';
import { formatBytes } from '../format.ts';
import { useApp } from '../store/context.tsx';
import { runProgressByNode } from '../store/selectors.ts';
import type { NodeRunProgress } from '../store/selectors.ts';
import { ErrorBanner } from './ErrorBanner.tsx';

const REFRESH_MS = 3000;
/** Workers send a heartbeat a second: ask for them as often. */
const HEARTBEAT_REFRESH_MS = 1000;

export function NodesScreen() {
  const statuses = useApp((s) => s.nodes.statuses);
  const probing = useApp((s) => s.nodes.probing);
  const error = useApp((s) => s.nodes.error);
  const editError = useApp((s) => s.nodes.editError);
  const checkedAt = useApp((s) => s.nodes.checkedAt);
  const saved = useApp((s) => s.config.saved);
  const fileName = useApp((s) => s.config.fileName);
  const probe = useApp((s) => s.probeNodes);
  const remove = useApp((s) => s.removeNode);
  const pull = useApp((s) => s.pull.view);
  const pullError = useApp((s) => s.pull.error);
  const loadPull = useApp((s) => s.loadPullWorkers);
  const meta = useApp((s) => s.ingest.meta);
  const runId = meta?.runId;
  const [editing, setEditing] = useState<{ original?: string; node: NodeConfig } | null>(null);

  useEffect(() => {
    void probe();
    const timer = setInterval(() => void probe(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [probe]);

  useEffect(() => {
    void loadPull();
    const timer = setInterval(() => void loadPull(), HEARTBEAT_REFRESH_MS);
    return () => clearInterval(timer);
  }, [loadPull]);

  const pullMode = pull?.mode === 'pull';
  const progress = useMemo(() => (pullMode ? runProgressByNode(meta) : new Map<string, NodeRunProgress>()), [pullMode, meta]);
  const workerOf = (id: string): PullWorkerView | undefined => pull?.workers.find((w) => w.nodeId === id);
  const strangers = pull?.workers.filter((w) => !w.configured && !statuses.some((s) => s.id === w.nodeId)) ?? [];

  const configured = useMemo(() => (fileName ? (validateConfigText(saved, fileName).config?.nodes ?? null) : null), [saved, fileName]);
  const configOf = (s: NodeStatus): NodeConfig =>
    configured?.find((n) => n.id === s.id) ?? (s.kind === 'folder' ? { id: s.id, path: s.location } : { id: s.id, url: s.location });

  return (
    <section className="screen" aria-labelledby="nodes-title">
      <header className="screen-head">
        <div>
          <h1 id="nodes-title">Nodes</h1>
          <p className="muted">
            {statuses.length} node{statuses.length === 1 ? '' : 's'} · {checkedAt ? `checked ${new Date(checkedAt).toLocaleTimeString()}` : 'checking…'} · refreshes every {REFRESH_MS / 1000}s
            {configured === null && fileName ? ' · default nodes (no nodes: list in the config yet)' : ''}
          </p>
        </div>
        <div className="actions">
          <button type="button" onClick={() => void probe()} disabled={probing}>
            {probing ? 'Checking…' : 'Check now'}
          </button>
          <button type="button" className="primary" onClick={() => setEditing({ node: { id: '', path: '' } })}>
            Add node
          </button>
        </div>
      </header>
      <ErrorBanner error={error} />
      {pullMode && pull && <PullSummary view={pull} />}
      <ErrorBanner error={pullError} />
      {editError && <p className="banner error" role="alert">{editError}</p>}
      {editing && <NodeForm key={editing.original ?? 'new'} initial={editing.node} original={editing.original} onDone={() => setEditing(null)} />}
      <div className="node-grid" data-testid="node-grid">
        {statuses.map((s) => (
          <article key={s.id} className={`card node-card state-${s.state}`} data-testid={`node-${s.id}`} data-state={s.state}>
            <header>
              <h2>{s.id}</h2>
              <span className={`state-badge ${s.state}`} data-testid="node-state">{s.state}</span>
            </header>
            <p className="mono muted small path" title={s.location}>{s.kind} · {s.location}</p>
            <dl className="figures">
              <div><dt>Latency</dt><dd>{s.latencyMs === undefined ? '—' : `${s.latencyMs.toFixed(s.latencyMs < 10 ? 1 : 0)} ms`}</dd></div>
              <div><dt>Free</dt><dd>{formatBytes(s.freeBytes)}</dd></div>
              <div><dt>Chunks</dt><dd>{s.chunkCount ?? '—'}</dd></div>
              <div><dt>Held</dt><dd>{formatBytes(s.bytesHeld)}</dd></div>
            </dl>
            {s.error && <p className="node-error" role="note">{s.error}</p>}
            {pullMode && pull && <WorkerPanel worker={workerOf(s.id)} nodeId={s.id} timeoutMs={pull.timeoutMs} run={runId ? { runId, progress: progress.get(s.id) } : undefined} />}
            <footer>
              <button type="button" onClick={() => setEditing({ original: s.id, node: configOf(s) })}>Edit</button>
              <button type="button" className="danger" onClick={() => { if (window.confirm(`Remove node ${s.id} from the config? Its chunks stay on disk.`)) void remove(s.id); }}>
                Remove
              </button>
            </footer>
          </article>
        ))}
      </div>
      {strangers.length > 0 && pull && (
        <section aria-labelledby="stranger-workers">
          <h2 id="stranger-workers" className="section-title">Workers heard that the config does not name</h2>
          <div className="node-grid">
            {strangers.map((w) => (
              <article key={w.nodeId} className="card node-card" data-testid={`stranger-${w.nodeId}`}>
                <header><h2>{w.nodeId}</h2></header>
                <WorkerPanel worker={w} nodeId={w.nodeId} timeoutMs={pull.timeoutMs} />
              </article>
            ))}
          </div>
        </section>
      )}
    </section>
  );
}

function secondsAgo(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s ago` : ms < 120_000 ? `${Math.round(ms / 1000)} s ago` : `${Math.round(ms / 60_000)} min ago`;
}

/** The NATS server the app listens to for heartbeats, and how many workers it hears. */
function PullSummary({ view }: { view: PullWorkersView }) {
  const configured = view.workers.filter((w) => w.configured);
  const alive = configured.filter((w) => w.alive).length;
  return (
    <p className={`banner ${view.connected ? (alive === configured.length ? 'ok' : 'warn') : 'error'}`} role="status" data-testid="pull-summary">
      <strong>Pull mode: the nodes pull their own chunks</strong>
      <span>
        Workers heard on {view.natsUrl ?? 'NATS'} ·{' '}
        {view.connected ? `${alive} of ${configured.length} worker${configured.length === 1 ? '' : 's'} sent a heartbeat in the last ${view.timeoutMs / 1000} s` : (view.error ?? 'connecting…')}
      </span>
    </p>
  );
}

/** One worker's heartbeat (how fresh, its figures since it started) and its share of the run on screen. */
function WorkerPanel({ worker, nodeId, timeoutMs, run }: { worker: PullWorkerView | undefined; nodeId: string; timeoutMs: number; run?: { runId: string; progress: NodeRunProgress | undefined } }) {
  const beat = worker?.heartbeat;
  const state = !worker || worker.silentMs === undefined ? 'unheard' : worker.alive ? 'alive' : 'silent';
  const p = run?.progress;
  return (
    <div className="worker" data-testid={`worker-${nodeId}`} data-worker-state={state}>
      <p className="worker-beat">
        <span className={`beat-dot ${state}`} aria-hidden="true" />
        {state === 'unheard' ? (
          <span>No heartbeat heard: start its agent with <code>--nats</code> and <code>--id {nodeId}</code>.</span>
        ) : (
          <span data-testid="heartbeat-age">
            {state === 'alive' ? 'Pulling' : `Silent (over ${timeoutMs / 1000} s)`} · heartbeat {secondsAgo(worker!.silentMs!)}
          </span>
        )}
      </p>
      {beat && (
        <dl className="figures worker-figures" aria-label={`Worker ${nodeId} since it started`}>
          <div><dt>In flight</dt><dd data-testid="worker-inflight">{beat.inFlight}</dd></div>
          <div><dt>Stored</dt><dd data-testid="worker-stored">{beat.stored}</dd></div>
          <div><dt>Already there</dt><dd>{beat.existed}</dd></div>
          <div><dt>Failed</dt><dd>{beat.failed}</dd></div>
          <div><dt>Read</dt><dd data-testid="worker-read">{formatBytes(beat.bytesRead)}</dd></div>
        </dl>
      )}
      {run && p && p.placed > 0 && (
        <div className="worker-run" data-testid="worker-run" data-done={p.done} data-placed={p.placed}>
          <div className="bar" role="progressbar" aria-label={`${nodeId}: chunks of this run`} aria-valuemin={0} aria-valuemax={p.placed} aria-valuenow={p.done}>
            <div style={{ width: `${(p.done / p.placed) * 100}%` }} />
          </div>
          <p className="small muted">
            This run: {p.done} / {p.placed} chunks · {formatBytes(p.bytesDone)}
            {p.inFlight > 0 ? ` · ${p.inFlight} in flight` : ''}
            {p.failed > 0 ? ` · ${p.failed} failed` : ''}
          </p>
        </div>
      )}
    </div>
  );
}

function NodeForm({ initial, original, onDone }: { initial: NodeConfig; original: string | undefined; onDone: () => void }) {
  const upsert = useApp((s) => s.upsertNode);
  const [id, setId] = useState(initial.id);
  const [kind, setKind] = useState<'folder' | 'agent'>(initial.url ? 'agent' : 'folder');
  const [location, setLocation] = useState(initial.url ?? initial.path ?? '');
  const [tokenEnv, setTokenEnv] = useState(initial.token_env ?? '');
  const [cloud, setCloud] = useState<CloudName | ''>(initial.cloud ?? '');
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const node: NodeConfig = { id: id.trim(), ...(kind === 'folder' ? { path: location.trim() } : { url: location.trim() }) };
    if (cloud) node.cloud = cloud;
    if (kind === 'agent' && tokenEnv.trim()) node.token_env = tokenEnv.trim();
    const ok = await upsert(node, original);
    setBusy(false);
    if (ok) onDone();
  };

  return (
    <form className="card node-form" onSubmit={(e) => void submit(e)} aria-label={original ? `Edit node ${original}` : 'Add node'}>
      <h2>{original ? `Edit ${original}` : 'Add a node'}</h2>
      <div className="form-grid">
        <label>Id<input value={id} onChange={(e) => setId(e.target.value)} required pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" placeholder="node-4" /></label>
        <label>Kind
          <select value={kind} onChange={(e) => setKind(e.target.value as 'folder' | 'agent')}>
            <option value="folder">folder</option>
            <option value="agent">agent (URL)</option>
          </select>
        </label>
        <label className="wide">{kind === 'folder' ? 'Folder' : 'Agent URL'}
          <input value={location} onChange={(e) => setLocation(e.target.value)} required placeholder={kind === 'folder' ? './received_chunks/node-4' : 'http://127.0.0.1:7070'} />
        </label>
        {kind === 'agent' && (
          <label>Token env var<input value={tokenEnv} onChange={(e) => setTokenEnv(e.target.value)} placeholder="NODE4_TOKEN" /></label>
        )}
        <label>Cloud
          <select value={cloud} onChange={(e) => setCloud(e.target.value as CloudName | '')}>
            <option value="">any</option>
            {CLOUDS.map((c) => <option key={c} value={c}>{c}</option>)}
          </select>
        </label>
      </div>
      <p className="muted small">Written to the config's nodes: list; comments elsewhere in the file are kept. Tokens are never stored in the file, only the name of the variable that holds one.</p>
      <div className="actions">
        <button type="button" onClick={onDone}>Cancel</button>
        <button type="submit" className="primary" disabled={busy}>{busy ? 'Saving…' : 'Save node'}</button>
      </div>
    </form>
  );
}
