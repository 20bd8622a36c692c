// Config: the YAML editor with live validation, save/reload, and the detected cloud with an override.
import { useMemo } from 'react';
import { CLOUDS } from '../../shared/config/types.ts';
import type { CloudName } from '../../shared/config/types.ts';
import { validateConfigText } from '../../shared/config/validate.ts';
import { useApp } from '../store/context.tsx';
import { selectDirty } from '../store/selectors.ts';
import { YamlEditor } from './YamlEditor.tsx';

export function ConfigScreen() {
  const draft = useApp((s) => s.config.draft);
  const fileName = useApp((s) => s.config.fileName);
  const path = useApp((s) => s.config.path);
  const loading = useApp((s) => s.config.loading);
  const saving = useApp((s) => s.config.saving);
  const error = useApp((s) => s.config.error);
  const savedAt = useApp((s) => s.config.savedAt);
  const dirty = useApp(selectDirty);
  const setDraft = useApp((s) => s.setDraft);
  const save = useApp((s) => s.saveConfig);
  const reload = useApp((s) => s.loadConfig);

  const diagnostics = useMemo(() => (fileName ? validateConfigText(draft, fileName).diagnostics : []), [draft, fileName]);
  const errors = diagnostics.filter((d) => d.severity === 'error');

  return (
    <section className="screen config-screen" aria-labelledby="config-title">
      <header className="screen-head">
        <div>
          <h1 id="config-title">Config</h1>
          <p className="muted mono" title={path}>{path || 'loading…'}</p>
        </div>
        <div className="actions">
          <span className={`status-pill ${errors.length ? 'bad' : 'good'}`} data-testid="config-status">
            {errors.length ? `${errors.length} error${errors.length > 1 ? 's' : ''}` : dirty ? 'valid · unsaved' : 'valid · saved'}
          </span>
          <button type="button" onClick={() => void reload()} disabled={loading || saving}>
            Reload
          </button>
          <button type="button" className="primary" onClick={() => void save()} disabled={saving || !dirty || errors.length > 0}>
            {saving ? 'Saving…' : 'Save'}
          </button>
        </div>
      </header>
      {error && <p className="banner error" role="alert">{error}</p>}
      {!error && savedAt && !dirty && <p className="banner ok" role="status">Saved {new Date(savedAt).toLocaleTimeString()}; comments and layout kept.</p>}
      <div className="config-body">
        <div className="card editor-card">{fileName && <YamlEditor value={draft} fileName={fileName} onChange={setDraft} />}</div>
        <aside className="side-col">
          <div className="card">
            <h2>Problems</h2>
            {diagnostics.length === 0 ? (
              <p className="muted">No problems. The engine will accept this config.</p>
            ) : (
              <ul className="diagnostics" data-testid="diagnostics">
                {diagnostics.map((d, i) => (
                  <li key={i} className={d.severity} data-testid="diagnostic" data-line={d.line}>
                    <span className="where">Line {d.line}:{d.column}</span>
                    {d.key && <code>{d.key}</code>}
                    <span className="msg">{d.message}</span>
                    <span className="fix">Fix: {d.fix}</span>
                  </li>
                ))}
              </ul>
            )}
          </div>
          <DetectionCard />
        </aside>
      </div>
    </section>
  );
}

function DetectionCard() {
  const view = useApp((s) => s.detection.view);
  const busy = useApp((s) => s.detection.busy);
  const error = useApp((s) => s.detection.error);
  const detect = useApp((s) => s.detect);
  return (
    <div className="card" data-testid="detection">
      <h2>Cloud</h2>
      {error && <p className="banner error" role="alert">{error}</p>}
      {!view ? (
        <p className="muted">{busy ? 'Detecting…' : 'Not detected yet.'}</p>
      ) : (
        <>
          <p className="cloud-line">
            <span className={`cloud-badge cloud-${view.effective}`} data-testid="effective-cloud">{view.effective}</span>
            {view.override ? <span className="muted"> chosen by you (detected {view.result.cloud})</span> : <span className="muted"> detected by {view.result.signal}</span>}
          </p>
          <p className="evidence">{view.result.detail}</p>
          {view.result.probes.length > 0 && (
            <ul className="probes">
              {view.result.probes.map((p) => (
                <li key={p.cloud} className={p.ok ? 'good' : 'muted'}>
                  {p.cloud}: {p.ok ? 'answered' : 'no answer'} ({p.elapsedMs} ms) — {p.detail}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      <div className="row">
        <label>
          Use cloud{' '}
          <select
            aria-label="Cloud override"
            value={view?.override ?? ''}
            disabled={busy}
            onChange={(e) => void detect(e.target.value === '' ? null : (e.target.value as CloudName))}
          >
            <option value="">as detected</option>
            {CLOUDS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => void detect()} disabled={busy}>
          {busy ? 'Detecting…' : 'Detect again'}
        </button>
      </div>
    </div>
  );
}
