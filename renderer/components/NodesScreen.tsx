// Nodes: live state of every node, and add/edit/remove written back to the config file.
import { useEffect, useMemo, useState } from 'react';
import type { FormEvent } from 'react';
import { CLOUDS } from '../../shared/config/types.ts';
import type { CloudName, NodeConfig } from '../../shared/config/types.ts';
import { validateConfigText } from '../../shared/config/validate.ts';
import type { NodeStatus } from '../../shared/types.ts';
import { formatBytes } from '../format.ts';
import { useApp } from '../store/context.tsx';
import { ErrorBanner } from './ErrorBanner.tsx';

const REFRESH_MS = 3000;

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
  const [editing, setEditing] = useState<{ original?: string; node: NodeConfig } | null>(null);

  useEffect(() => {
    void probe();
    const timer = setInterval(() => void probe(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [probe]);

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
            <footer>
              <button type="button" onClick={() => setEditing({ original: s.id, node: configOf(s) })}>Edit</button>
              <button type="button" className="danger" onClick={() => { if (window.confirm(`Remove node ${s.id} from the config? Its chunks stay on disk.`)) void remove(s.id); }}>
                Remove
              </button>
            </footer>
          </article>
        ))}
      </div>
    </section>
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
