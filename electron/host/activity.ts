// The Activity screen's data: every past run's figures and who ran it from where, from its manifest, and its
// throughput over time from its journal. Runs the app ran before manifests and journals carried that kept it in
// `<manifest_dir>/app-activity/<run id>.json` (a folder of its own, so nothing that lists the manifest folder's
// *.json mistakes a record for a manifest); those records are still read for those runs.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActivityDetail, ActivityEntry } from '../../shared/ipc/contract.ts';
import type { Manifest } from '../../shared/types.ts';
import { journalPath, listManifests, manifestDir, readManifestSummary } from '../engine/index.ts';
import type { LoadedConfig } from '../engine/index.ts';
import { journalThroughput } from './throughput.ts';

/** Runs listed on the Activity screen; older ones stay on disk and in `cloud-ingest runs`. */
const MAX_RUNS = 100;

interface ActivityRecord {
  version: 1;
  runId: string;
  tool: 'app';
  user: string;
  host: string;
  /** `[epoch ms, bytes sent so far in that attempt]`; a resumed run appends its attempt's samples. */
  samples: [number, number][];
}

function recordPath(loaded: LoadedConfig, runId: string): string {
  return join(manifestDir(loaded), 'app-activity', `${runId}.json`);
}

async function readRecord(loaded: LoadedConfig, runId: string): Promise<ActivityRecord | undefined> {
  try {
    const value = JSON.parse(await readFile(recordPath(loaded, runId), 'utf8')) as ActivityRecord;
    return value.version === 1 && Array.isArray(value.samples) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A manifest is read from disk: its `ranBy` is taken only when shaped as the engine writes it. */
function originOf(ranBy: unknown): ActivityEntry['origin'] | undefined {
  if (typeof ranBy !== 'object' || ranBy === null) return undefined;
  const { tool, user, host } = ranBy as Record<string, unknown>;
  if (tool !== 'cli' && tool !== 'app') return undefined;
  const name = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v.slice(0, 256) : undefined);
  const u = name(user);
  const h = name(host);
  return { tool, ...(u ? { user: u } : {}), ...(h ? { host: h } : {}) };
}

function entryFrom(manifest: Omit<Manifest, 'files' | 'chunks'>, manifestPath: string, record: ActivityRecord | undefined): ActivityEntry {
  const started = Date.parse(manifest.startedAt);
  const finished = Date.parse(manifest.finishedAt);
  const durationMs = Number.isFinite(started) && Number.isFinite(finished) ? Math.max(0, finished - started) : 0;
  const bytes = manifest.totals.bytes;
  return {
    runId: manifest.runId,
    manifestPath,
    status: manifest.status,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    durationMs,
    bytes,
    files: manifest.totals.files,
    chunks: manifest.totals.chunks,
    meanBytesPerSecond: durationMs > 0 ? (bytes / durationMs) * 1000 : 0,
    retries: manifest.totals.retries,
    moves: manifest.totals.replacements,
    origin: originOf(manifest.ranBy) ?? (record ? { tool: 'app', user: record.user, host: record.host } : { tool: 'unknown' }),
  };
}

/**
 * Past runs, newest first, one entry per run (its latest manifest version). Parsed manifests are kept per path
 * and modification time, so opening the screen again reads only what changed.
 */
export class ActivityLog {
  private readonly cache = new Map<string, { mtimeMs: number; entry: ActivityEntry }>();

  async list(loaded: LoadedConfig): Promise<ActivityEntry[]> {
    const manifests = (await listManifests(loaded)).sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.path.localeCompare(a.path));
    const seen = new Set<string>();
    const out: ActivityEntry[] = [];
    for (const m of manifests) {
      if (seen.has(m.runId) || out.length >= MAX_RUNS) continue;
      seen.add(m.runId);
      const entry = await this.entry(loaded, m.path).catch(() => undefined);
      if (entry) out.push(entry);
    }
    return out;
  }

  private async entry(loaded: LoadedConfig, path: string): Promise<ActivityEntry> {
    const { mtimeMs } = await stat(path);
    const cached = this.cache.get(path);
    if (cached && cached.mtimeMs === mtimeMs) return cached.entry;
    const manifest = await readManifestSummary(path);
    const entry = entryFrom(manifest, path, await readRecord(loaded, manifest.runId));
    this.cache.set(path, { mtimeMs, entry });
    return entry;
  }
}

/** A run's throughput over time: from its journal, or for an older app run from the app's record of it. */
export async function activityDetail(loaded: LoadedConfig, runId: string): Promise<ActivityDetail> {
  const journal = await journalThroughput(journalPath(loaded, runId)).catch(() => undefined);
  if (journal && journal.timedChunks > 0) return { runId, samples: journal.samples, source: 'journal', attempts: journal.attempts, heldChunks: journal.heldChunks };
  const record = await readRecord(loaded, runId);
  if (!record) return { runId, samples: [], source: 'none', attempts: journal?.attempts ?? 1, heldChunks: 0 };
  const samples: [number, number][] = [];
  let offsetBytes = 0;
  let lastBytes = 0;
  let attempts = 1;
  const first = record.samples[0]?.[0] ?? 0;
  for (const [at, bytes] of record.samples) {
    // A resumed attempt counts its bytes from zero again: carry the earlier attempts' total forward.
    if (bytes < lastBytes) {
      offsetBytes += lastBytes;
      attempts++;
    }
    lastBytes = bytes;
    samples.push([at - first, offsetBytes + bytes]);
  }
  return { runId, samples, source: 'app-record', attempts, heldChunks: 0 };
}
