// Received chunks: what each node holds (from a run's manifest), verify one node or all, reassemble a file.
import { useEffect, useMemo, useState } from 'react';
import type { FormEvent } from 'react';
import type { ManifestChunk } from '../../shared/types.ts';
import { formatBytes, shortHash } from '../format.ts';
import { useApp } from '../store/context.tsx';
import { VirtualList } from './VirtualList.tsx';

export function ReceivedScreen() {
  const manifests = useApp((s) => s.received.manifests);
  const manifestPath = useApp((s) => s.received.manifestPath);
  const manifest = useApp((s) => s.received.manifest);
  const nodeId = useApp((s) => s.received.nodeId);
  const loading = useApp((s) => s.received.loading);
  const error = useApp((s) => s.received.error);
  const verifying = useApp((s) => s.received.verifying);
  const verifyResult = useApp((s) => s.received.verify);
  const task = useApp((s) => s.received.task);
  const list = useApp((s) => s.listManifests);
  const open = useApp((s) => s.openManifest);
  const selectNode = useApp((s) => s.selectNode);
  const verify = useApp((s) => s.verify);
  const cancelTask = useApp((s) => s.cancelTask);

  useEffect(() => {
    void list();
  }, [list]);

  const held = useMemo(() => {
    const out = new Map<string, { chunk: ManifestChunk; location: string }[]>();
    for (const n of manifest?.nodes ?? []) out.set(n.id, []);
    for (const chunk of manifest?.chunks ?? []) {
      for (const copy of chunk.copies) {
        let l = out.get(copy.nodeId);
        if (!l) out.set(copy.nodeId, (l = []));
        l.push({ chunk, location: copy.location });
      }
    }
    return out;
  }, [manifest]);
  const problems = useMemo(() => {
    const m = new Map<string, string>();
    for (const p of verifyResult?.problems ?? []) m.set(`${p.chunkId}\0${p.nodeId}`, `${p.reason}: ${p.detail}`);
    return m;
  }, [verifyResult]);
  const rows = (nodeId && held.get(nodeId)) || [];
  const verifiedNode = (id: string) => verifyResult && (verifyResult.nodeId === null || verifyResult.nodeId === id);

  return (
    <section className="screen" aria-labelledby="received-title">
      <header className="screen-head">
        <div>
          <h1 id="received-title">Received chunks</h1>
          <p className="muted">What every node holds according to a run's manifest; re-hash to verify, or rebuild a file.</p>
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
      {error && <p className="banner error" role="alert">{error}</p>}
      {!manifest ? (
        <div className="card"><p className="muted">{loading ? 'Opening manifest…' : 'No run selected. Run an ingest first, or pick a past run above.'}</p></div>
      ) : (
        <>
          <div className="card run-summary">
            <dl className="figures wide">
              <div><dt>Status</dt><dd>{manifest.status}</dd></div>
              <div><dt>Cloud</dt><dd>{manifest.cloud}</dd></div>
              <div><dt>Files</dt><dd>{manifest.totals.files}</dd></div>
              <div><dt>Chunks</dt><dd>{manifest.totals.chunks}</dd></div>
              <div><dt>Bytes</dt><dd>{formatBytes(manifest.totals.bytes)}</dd></div>
              <div><dt>Checksum</dt><dd>{manifest.checksumAlgorithm}</dd></div>
              <div><dt>Started</dt><dd>{new Date(manifest.startedAt).toLocaleString()}</dd></div>
            </dl>
            <div className="actions">
              <button type="button" className="primary" onClick={() => void verify()} disabled={verifying !== null}>{verifying === 'all' ? 'Verifying…' : 'Verify all'}</button>
              <button type="button" onClick={() => nodeId && void verify(nodeId)} disabled={verifying !== null || !nodeId}>{verifying && verifying !== 'all' ? 'Verifying…' : `Verify ${nodeId ?? 'node'}`}</button>
              {verifying && <button type="button" className="danger" onClick={() => void cancelTask('verify')}>Cancel</button>}
            </div>
            {verifying && task?.task === 'verify' && (
              <div className="bar" role="progressbar" aria-label="Verify progress" aria-valuenow={task.total ? Math.round((task.done / task.total) * 100) : 0}>
                <div style={{ width: `${task.total ? (task.done / task.total) * 100 : 0}%` }} />
              </div>
            )}
            {verifyResult && (
              <p className={`banner ${verifyResult.problems.length ? 'error' : 'ok'}`} role="status" data-testid="verify-result">
                {verifyResult.problems.length === 0
                  ? `All ${verifyResult.checked} chunk copies ${verifyResult.nodeId ? `on ${verifyResult.nodeId} ` : ''}verified: checksums match.`
                  : `${verifyResult.problems.length} of ${verifyResult.checked} copies have problems${verifyResult.unrecoverable.length ? `; ${verifyResult.unrecoverable.length} chunks have no good copy left` : ''}. See the rows marked below.`}
              </p>
            )}
          </div>
          <div className="received-grid">
            <div className="card">
              <div className="tabs" role="tablist" aria-label="Nodes">
                {[...held.entries()].map(([id, l]) => (
                  <button key={id} type="button" role="tab" aria-selected={id === nodeId} className={id === nodeId ? 'tab active' : 'tab'} onClick={() => selectNode(id)}>
                    {id} <span className="muted">{l.length}</span>
                  </button>
                ))}
              </div>
              <div className="vhead received-cols"><span>Chunk</span><span>Source file</span><span>Offset</span><span>Size</span><span>Checksum</span><span>Check</span></div>
              <VirtualList
                count={rows.length}
                rowHeight={26}
                height={380}
                label={`Chunks on ${nodeId ?? ''}`}
                testId="received-list"
                renderRow={(i) => {
                  const row = rows[i];
                  if (!row || !nodeId) return null;
                  const { chunk } = row;
                  const problem = problems.get(`${chunk.id}\0${nodeId}`);
                  const checked = verifiedNode(nodeId);
                  return (
                    <div className="received-cols" title={row.location}>
                      <span className="mono ellipsis">{chunk.id}</span>
                      <span className="ellipsis">{chunk.file}</span>
                      <span>{chunk.offset.toLocaleString()}</span>
                      <span>{formatBytes(chunk.size)}</span>
                      <span className="mono" title={chunk.checksum}>{shortHash(chunk.checksum)}</span>
                      <span>{problem ? <span className="chunk-state failed" title={problem}>{problem.split(':')[0]}</span> : checked ? <span className="chunk-state verified">ok</span> : <span className="muted">—</span>}</span>
                    </div>
                  );
                }}
              />
            </div>
            <ReassembleCard keys={manifest.files.map((f) => f.key)} />
          </div>
        </>
      )}
    </section>
  );
}

function ReassembleCard({ keys }: { keys: string[] }) {
  const reassemble = useApp((s) => s.reassemble);
  const busy = useApp((s) => s.received.reassembling);
  const result = useApp((s) => s.received.reassemble);
  const cancelTask = useApp((s) => s.cancelTask);
  const [key, setKey] = useState(keys[0] ?? '');
  const [outPath, setOutPath] = useState('');
  const chosen = keys.includes(key) ? key : (keys[0] ?? '');
  const defaultOut = `reassembled/${chosen}`;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (chosen) void reassemble(chosen, outPath.trim() || defaultOut);
  };

  return (
    <form className="card reassemble" onSubmit={submit} aria-label="Reassemble a file">
      <h2>Reassemble a file</h2>
      <label>File
        <select value={chosen} onChange={(e) => setKey(e.target.value)} aria-label="File to reassemble">
          {keys.map((k) => <option key={k} value={k}>{k}</option>)}
        </select>
      </label>
      <label>Write to
        <input value={outPath} onChange={(e) => setOutPath(e.target.value)} placeholder={defaultOut} aria-label="Output path" />
      </label>
      <p className="muted small">Relative paths are under the project folder. Chunks are read from any node holding a good copy.</p>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy || !chosen}>{busy ? 'Reassembling…' : 'Reassemble'}</button>
        {busy && <button type="button" className="danger" onClick={() => void cancelTask('reassemble')}>Cancel</button>}
      </div>
      {result && (
        <div className={`banner ${result.matched ? 'ok' : 'error'}`} role="status" data-testid="reassemble-result">
          <strong>{result.matched ? 'Checksum matches' : 'Checksum MISMATCH'}</strong>
          <span className="mono small">{result.outPath}</span>
          <span className="small">{formatBytes(result.bytes)} · expected <code>{shortHash(result.expected, 16)}</code> · got <code>{shortHash(result.actual, 16)}</code></span>
        </div>
      )}
    </form>
  );
}
