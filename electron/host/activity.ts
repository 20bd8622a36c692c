// The Activity screen's data: every past run's figures from its manifest, and for runs the app ran, who ran them
// and their throughput over time, recorded by the host in `<manifest_dir>/app-activity/<run id>.json` (a folder of
// its own, so nothing that lists the manifest folder's *.json mistakes a record for a manifest).
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { ActivityDetail, ActivityEntry } from '../../shared/ipc/contract.ts';
import type { Manifest } from '../../shared/types.ts';
import { listManifests, manifestDir, readManifest } from '../engine/index.ts';
import type { LoadedConfig } from '../engine/index.ts';

/** Often enough that a run of a second has a chart; a 10-hour run keeps ~180,000 samples (a few MB). */
const SAMPLE_EVERY_MS = 200;
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

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** Samples one run's bytes five times a second while the app runs it, and writes the record when it ends. */
export class ActivityRecorder {
  private readonly samples: [number, number][] = [];
  private lastAt = 0;
  private readonly loaded: LoadedConfig;
  private readonly runId: string;

  constructor(loaded: LoadedConfig, runId: string) {
    this.loaded = loaded;
    this.runId = runId;
  }

  sample(bytesDone: number, force = false): void {
    const now = Date.now();
    if (!force && now - this.lastAt < SAMPLE_EVERY_MS) return;
    this.lastAt = now;
    this.samples.push([now, bytesDone]);
  }

  /** Writes (temp file, then rename) the record, adding to what an earlier attempt of the same run recorded. */
  async finish(bytesDone: number): Promise<void> {
    this.sample(bytesDone, true);
    const earlier = await readRecord(this.loaded, this.runId);
    const record: ActivityRecord = {
      version: 1,
      runId: this.runId,
      tool: 'app',
      user: currentUser(),
      host: hostname(),
      samples: [...(earlier?.samples ?? []), ...this.samples],
    };
    const path = recordPath(this.loaded, this.runId);
    await mkdir(join(manifestDir(this.loaded), 'app-activity'), { recursive: true });
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(record));
    await rename(temp, path);
  }
}

function entryFrom(manifest: Manifest, manifestPath: string, record: ActivityRecord | undefined): ActivityEntry {
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
    origin: record ? { tool: 'app', user: record.user, host: record.host } : { tool: 'cli' },
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
    const manifest = await readManifest(path);
    const entry = entryFrom(manifest, path, await readRecord(loaded, manifest.runId));
    this.cache.set(path, { mtimeMs, entry });
    return entry;
  }
}

/** A run's throughput samples as `[ms since its first sample, bytes so far]`, attempts laid end to end. */
export async function activityDetail(loaded: LoadedConfig, runId: string): Promise<ActivityDetail> {
  const record = await readRecord(loaded, runId);
  const samples: [number, number][] = [];
  let offsetBytes = 0;
  let lastBytes = 0;
  const first = record?.samples[0]?.[0] ?? 0;
  for (const [at, bytes] of record?.samples ?? []) {
    // A resumed attempt counts its bytes from zero again: carry the earlier attempts' total forward.
    if (bytes < lastBytes) offsetBytes += lastBytes;
    lastBytes = bytes;
    samples.push([at - first, offsetBytes + bytes]);
  }
  return { runId, samples };
}
