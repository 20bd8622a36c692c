// Config: the YAML editor with live validation, save/reload, and the detected cloud with an override.
import { useMemo, useState } from 'react';
import { CLOUDS } from '../../shared/config/types.ts';
import type { CloudName } from '../../shared/config/types.ts';
import { validateConfigText } from '../../shared/config/validate.ts';
import type { Diagnostic } from '../../shared/config/validate.ts';
import type { ProbeOutcome } from '../../shared/types.ts';
import { useApp } from '../store/context.tsx';
import { ErrorBanner } from './ErrorBanner.tsx';
import { selectDirty } from '../store/selectors.ts';
import { YamlEditor } from './YamlEditor.tsx';

/** One entry per position: the YAML parser can report two errors for one mistake. */
export function distinctDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const key = `${d.severity}:${d.line}:${d.column}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function statusText(loaded: boolean, loading: boolean, errors: number, dirty: boolean): string {
  if (!loaded) return loading ? 'loading…' : 'not loaded';
  if (errors) return `${errors} error${errors > 1 ? 's' : ''}`;
  return dirty ? 'valid · unsaved' : 'valid · saved';
}

export function ConfigScreen() {
  const draft = useApp((s) => s.config.draft);
  const fileName = useApp((s) => s.config.fileName);
  const path = useApp((s) => s.config.path);
  const loaded = useApp((s) => s.config.loaded);
  const loading = useApp((s) => s.config.loading);
  const saving = useApp((s) => s.config.saving);
  const error = useApp((s) => s.config.error);
  const conflict = useApp((s) => s.config.conflict);
  const savedAt = useApp((s) => s.config.savedAt);
  const dirty = useApp(selectDirty);
  const setDraft = useApp((s) => s.setDraft);
  const save = useApp((s) => s.saveConfig);
  const reload = useApp((s) => s.loadConfig);
  const [confirmReload, setConfirmReload] = useState(false);
  const [jump, setJump] = useState<{ line: number; column: number; key: number } | null>(null);

  const diagnostics = useMemo(() => (fileName ? distinctDiagnostics(validateConfigText(draft, fileName).diagnostics) : []), [draft, fileName]);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  const askReload = () => {
    if (dirty) setConfirmReload(true);
    else void reload();
  };

  return (
    <section className="screen config-screen" aria-labelledby="config-title">
      <header className="screen-head">
        <div>
          <h1 id="config-title">Config</h1>
          <p className="muted mono path" title={path}>{path || (loading ? 'loading…' : 'not loaded')}</p>
        </div>
        <div className="actions">
          <span className={`status-pill ${!loaded ? 'unknown' : errors.length ? 'bad' : 'good'}`} data-testid="config-status">
            {statusText(loaded, loading, errors.length, dirty)}
          </span>
          <button type="button" onClick={askReload} disabled={loading || saving}>
            Reload
          </button>
          <button type="button" className="primary" onClick={() => void save()} disabled={!loaded || saving || !dirty || errors.length > 0}>
            {saving ? 'Saving…' : 'Save'}
          </button>
        </div>
      </header>
      {confirmReload && (
        <div className="banner warn" role="alertdialog" aria-label="Discard unsaved edits?" data-testid="confirm-reload">
          <strong>Discard your unsaved edits and load the file from disk?</strong>
          <span className="actions">
            <button type="button" className="danger" onClick={() => { setConfirmReload(false); void reload(); }}>Discard and reload</button>
            <button type="button" autoFocus onClick={() => setConfirmReload(false)}>Keep editing</button>
          </span>
        </div>
      )}
      <ErrorBanner error={error} />
      {conflict && (
        <div className="banner warn" role="alertdialog" aria-label="The file changed on disk" data-testid="save-conflict">
          <span className="actions">
            <button type="button" onClick={() => void reload()}>Load the file from disk (drop my edits)</button>
            <button type="button" className="danger" onClick={() => void save(true)}>Save mine over it</button>
          </span>
        </div>
      )}
      {!error && savedAt && !dirty && <p className="banner ok" role="status">Saved {new Date(savedAt).toLocaleTimeString()}; comments and layout kept.</p>}
      <div className="config-body">
        <div className="card editor-card">
          {loaded ? <YamlEditor value={draft} fileName={fileName} onChange={setDraft} jump={jump} /> : <p className="muted pad">{loading ? 'Loading the config…' : 'The config could not be loaded (see above).'}</p>}
        </div>
        <aside className="side-col">
          <div className="card">
            <h2>Problems</h2>
            {!loaded ? (
              <p className="muted">{loading ? 'Checking…' : 'Not checked: the config is not loaded.'}</p>
            ) : diagnostics.length === 0 ? (
              <p className="muted">No problems. The engine will accept this config.</p>
            ) : (
              <ul className="diagnostics" data-testid="diagnostics">
                {diagnostics.map((d, i) => (
                  <li key={i} className={d.severity} data-testid="diagnostic" data-line={d.line}>
                    <button type="button" className="diagnostic" onClick={() => setJump({ line: d.line, column: d.column, key: Date.now() })} aria-label={`Go to line ${d.line}, column ${d.column}: ${d.message}`}>
                      <span className="where">Line {d.line}:{d.column}</span>
                      {d.key && <code>{d.key}</code>}
                      <span className="msg">{d.message}</span>
                      <span className="fix">Fix: {d.fix}</span>
                    </button>
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

/** A metadata probe's answer in words that agree with each other: this cloud, another answer, or no answer. */
export function probeText(p: ProbeOutcome): string {
  if (p.ok) return `${p.cloud}: this cloud (${p.elapsedMs} ms) — ${p.detail}`;
  const answered = /^answered/i.test(p.detail);
  return `${p.cloud}: ${answered ? 'not this cloud' : 'no answer'} (${p.elapsedMs} ms) — ${p.detail}`;
}

function DetectionCard() {
  const view = useApp((s) => s.detection.view);
  const busy = useApp((s) => s.detection.busy);
  const error = useApp((s) => s.detection.error);
  const detect = useApp((s) => s.detect);
  return (
    <div className="card" data-testid="detection">
      <h2>Cloud</h2>
      <ErrorBanner error={error} />
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
                  {probeText(p)}
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
