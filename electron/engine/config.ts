// Loads data_sources.yml from disk: validation (shared), path resolution and default nodes.
import { lstat, mkdir, readdir, readFile, rename, rmdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic, validateConfigText } from '../../shared/config/validate.ts';
import type { Diagnostic } from '../../shared/config/validate.ts';
import { INGESTION_DEFAULTS } from '../../shared/config/types.ts';
import type { CloudName, IngestConfig, NodeConfig } from '../../shared/config/types.ts';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function defaultConfigPath(): string {
  return resolve(PROJECT_ROOT, 'config', 'data_sources.yml');
}

export interface LoadedConfig {
  path: string;
  /** Relative paths in the config resolve against this folder. */
  baseDir: string;
  text: string;
  config: IngestConfig;
  warnings: Diagnostic[];
  resolve(path: string): string;
}

export class ConfigError extends Error {
  readonly diagnostics: Diagnostic[];

  constructor(message: string, diagnostics: Diagnostic[]) {
    super(message);
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }
}

/**
 * The rule: relative paths resolve from the project root, which is the folder holding the config's folder
 * when that folder is named `config` (as in the original `config/data_sources.yml` with `./test_data/...`),
 * and otherwise the config file's own folder. The working directory never matters.
 */
export function baseDirFor(configPath: string): string {
  const folder = dirname(configPath);
  return basename(folder) === 'config' ? dirname(folder) : folder;
}

export async function loadConfig(path: string = defaultConfigPath()): Promise<LoadedConfig> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'the file does not exist' : code === 'EISDIR' ? 'it is a folder' : String((error as Error).message);
    throw new ConfigError(`Cannot read config ${absolute}: ${reason}. Fix: pass --config with the path to data_sources.yml.`, []);
  }
  const loaded = parseLoadedConfig(absolute, text);
  await adoptLegacyRunRecords(loaded);
  return loaded;
}

/** The default manifest_dir of earlier versions. */
const LEGACY_RUN_DIR = './received_chunks/manifests';

/**
 * Run records (manifests, journals) were kept by default in ./received_chunks/manifests, beside the default node
 * folders, where anything that takes every folder in received_chunks/ for a node (the original design's evenness
 * check does) saw a node holding nothing. With the default manifest_dir they are now kept in ./.cloud-ingest/runs,
 * and what an earlier version left in the old folder moves there, so `runs`, `verify` and `run --resume` still
 * find it. Nothing is overwritten; whatever cannot move stays where it is.
 */
async function adoptLegacyRunRecords(loaded: LoadedConfig): Promise<void> {
  if (loaded.config.ingestion.manifest_dir !== INGESTION_DEFAULTS.manifest_dir) return;
  const legacy = loaded.resolve(LEGACY_RUN_DIR);
  if (!(await lstat(legacy).then((s) => s.isDirectory(), () => false))) return;
  await moveInto(legacy, loaded.resolve(INGESTION_DEFAULTS.manifest_dir)).catch(() => undefined);
}

async function moveInto(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    const existing = await lstat(target).catch(() => undefined);
    if (!existing) await rename(source, target).catch(() => undefined);
    else if (existing.isDirectory() && entry.isDirectory()) await moveInto(source, target);
  }
  await rmdir(from).catch(() => undefined); // only once empty
}

export function parseLoadedConfig(absolutePath: string, text: string): LoadedConfig {
  const shown = displayPath(absolutePath);
  const { config, diagnostics } = validateConfigText(text, shown);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (!config || errors.length > 0) {
    const lines = errors.map(formatDiagnostic).join('\n');
    throw new ConfigError(`Invalid config ${shown}:\n${lines}`, diagnostics);
  }
  const baseDir = baseDirFor(absolutePath);
  const resolvePath = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    path: absolutePath,
    baseDir,
    text,
    config,
    warnings: diagnostics.filter((d) => d.severity === 'warning'),
    resolve: resolvePath,
  };
}

function displayPath(absolute: string): string {
  const rel = relative(process.cwd(), absolute);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : absolute;
}

/** The configured nodes, or one folder node per configured cloud: `<cloud>-node-1` under ./received_chunks/. */
export function effectiveNodes(config: IngestConfig): NodeConfig[] {
  if (config.nodes) return config.nodes;
  return (Object.keys(config.data_sources) as CloudName[]).map((cloud) => ({
    id: `${cloud}-node-1`,
    cloud,
    path: `./received_chunks/${cloud}-node-1`,
  }));
}
