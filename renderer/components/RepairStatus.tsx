// A repair's live progress and outcome: copies checked, copies restored (from another node or from the source),
// every failure in words, then what verify said about the manifest repair wrote.
import { useApp } from '../store/context.tsx';
import type { RepairScope } from '../store/types.ts';
import type { RepairAction, RepairReport } from '../../shared/types.ts';

function scopeText(scope: RepairScope | null): string {
  if (!scope) return '';
  if ('chunkIds' in scope) return scope.chunkIds.length === 1 ? ` of ${scope.chunkIds[0]}` : ` of ${scope.chunkIds.length} chunks`;
  if ('files' in scope) return scope.files.length === 1 ? ` of ${scope.files[0]}` : ` of ${scope.files.length} files`;
  return ' of every chunk';
}

function Progress({ label, value }: { label: string; value: { done: number; total: number } | null }) {
  if (!value) return null;
  const percent = value.total > 0 ? (value.done / value.total) * 100 : 100;
  return (
    <div className="repair-step">
      <span className="small">{label} {value.done} / {value.total}</span>
      <div className="bar" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(percent)}>
        <div style={{ width: `${percent}%` }} />
      </div>
    </div>
  );
}

function fromWhere(actions: readonly RepairAction[]): string {
  const fromCopy = actions.filter((a) => a.from === 'copy').length;
  return `${fromCopy} from another node's good copy, ${actions.length - fromCopy} read again from the source`;
}

/**
 * What repair did, in words: bad copies (missing or damaged) restored, and copies added to chunks short of their
 * replicas (a degraded run) — the latter are not bad copies, so they are counted apart, never as "nothing".
 */
export function repairHeadline(report: RepairReport): string {
  const restored = report.actions.filter((a) => a.outcome === 'restored');
  const bad = new Set(report.problems.map((p) => `${p.chunkId}\n${p.nodeId}`));
  const fixed = restored.filter((a) => bad.has(`${a.chunkId}\n${a.nodeId}`));
  const added = restored.filter((a) => !bad.has(`${a.chunkId}\n${a.nodeId}`));
  const parts: string[] = [];
  if (report.problems.length > 0) parts.push(`Restored ${fixed.length} of ${report.problems.length} bad copies (${fromWhere(fixed)}).`);
  if (added.length > 0) parts.push(`Added ${added.length} ${added.length === 1 ? 'copy' : 'copies'} to chunks short of their replicas (${fromWhere(added)}).`);
  return parts.length > 0 ? parts.join(' ') : `Nothing to repair: all ${report.checked} copies checked are good.`;
}

export function RepairStatus() {
  const repair = useApp((s) => s.repair);
  const cancel = useApp((s) => s.cancelTask);
  if (!repair.running && !repair.report && !repair.error) return null;
  const report = repair.report;
  const failed = report?.actions.filter((a) => a.outcome === 'failed') ?? [];
  const after = repair.verifyAfter;
  return (
    <div className="card repair" data-testid="repair" aria-live="polite">
      <div className="repair-head">
        <h2>Repair{scopeText(repair.scope)}</h2>
        {repair.running && <button type="button" className="danger" onClick={() => void cancel('repair')}>Cancel repair</button>}
      </div>
      {repair.running && !report && (
        <>
          <Progress label="Copies checked" value={repair.checked} />
          <Progress label="Copies restored" value={repair.restored} />
          {!repair.checked && <p className="muted small">Starting…</p>}
        </>
      )}
      {repair.error && <p className="banner error" role="alert">{repair.error}</p>}
      {report && (
        <p className={`banner ${failed.length || report.changedSources.length ? 'error' : 'ok'}`} data-testid="repair-result">
          <strong>{repairHeadline(report)}</strong>
          {failed.length > 0 && <span>{failed.length} could not be restored: {failed.slice(0, 3).map((a) => `${a.chunkId} on ${a.nodeId}: ${a.detail ?? 'failed'}`).join('; ')}{failed.length > 3 ? '; …' : ''}</span>}
          {report.changedSources.length > 0 && <span>Changed at the source since the run (not stitched from two versions): {report.changedSources.join(', ')}. Fix: run the ingest again for these files.</span>}
          <span className="small">Manifest now {report.status}: <span className="mono path">{report.manifestPath}</span></span>
        </p>
      )}
      {repair.running && report && <p className="muted small">Verifying every copy again…</p>}
      {after && (
        <p className={`banner ${after.problems.length ? 'error' : 'ok'}`} data-testid="repair-verify">
          {after.problems.length === 0 ? `Verified after repair: all ${after.checked} chunk copies match their checksums.` : `Verified after repair: ${after.problems.length} of ${after.checked} copies still have problems (listed below).`}
        </p>
      )}
    </div>
  );
}
