// Run manifests: written atomically (temp name, then rename), one JSON file per run, newest last by name.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../../shared/types.ts';
import type { LoadedConfig } from './config.ts';

export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function manifestDir(loaded: LoadedConfig): string {
  return loaded.resolve(loaded.config.ingestion.manifest_dir);
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, JSON.stringify(value, null, 2) + '\n');
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export async function writeManifest(loaded: LoadedConfig, manifest: Manifest): Promise<string> {
  const dir = manifestDir(loaded);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${manifest.runId}.json`);
  await writeJsonAtomic(path, manifest);
  return path;
}

export async function readManifest(path: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Error(`Cannot read manifest ${path}. Fix: pass --manifest with a file from the manifest folder, or run an ingest first.`);
  }
  const value = JSON.parse(text) as Manifest;
  if (value.version !== 1 || !Array.isArray(value.chunks) || !Array.isArray(value.files)) {
    throw new Error(`${path} is not a Cloud Ingest manifest (version 1). Fix: pass the JSON file a run wrote.`);
  }
  return value;
}

export interface ManifestEntry {
  runId: string;
  path: string;
  startedAt: string;
  status: string;
}

/**
 * Reads every file in the manifest folder whose name ends with `suffix`, in name (= run id) order, keeping what
 * `read` returns; files that cannot be read (not ours, or being written) are passed over.
 */
export async function readRunFiles<T>(loaded: LoadedConfig, suffix: string, read: (path: string) => Promise<T | undefined>): Promise<T[]> {
  const dir = manifestDir(loaded);
  const names = await readdir(dir).catch(() => [] as string[]);
  const found: T[] = [];
  for (const name of names.filter((n) => n.endsWith(suffix)).sort()) {
    const value = await read(join(dir, name)).catch(() => undefined);
    if (value !== undefined) found.push(value);
  }
  return found;
}

export function listManifests(loaded: LoadedConfig): Promise<ManifestEntry[]> {
  return readRunFiles(loaded, '.json', async (path) => {
    const m = await readManifest(path);
    return { runId: m.runId, path, startedAt: m.startedAt, status: m.status };
  });
}

export async function latestManifestPath(loaded: LoadedConfig): Promise<string | undefined> {
  return (await listManifests(loaded)).at(-1)?.path;
}
