// A throwaway project that ingests from one cloud store into two local folder nodes: what the storage
// tests and the sources benchmark run the engine on.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../electron/engine/config.ts';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import type { CloudName, DataSourceConfig } from '../../shared/config/types.ts';

/** Writes `root/config/data_sources.yml` for `source` under `cloud`, local simulation off, and loads it. */
export async function writeCloudProject(root: string, cloud: CloudName, source: DataSourceConfig, ingestion: Record<string, number | string>): Promise<LoadedConfig> {
  await mkdir(join(root, 'config'), { recursive: true });
  const inline = (value: Record<string, unknown>): string =>
    `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
      .join(', ')} }`;
  const yaml = [
    'data_sources:',
    `  ${cloud}: ${inline({ ...source })}`,
    `ingestion: ${inline(ingestion)}`,
    'use_local_simulation: false',
    'nodes:',
    '  - { id: node-a, path: "./nodes/a" }',
    '  - { id: node-b, path: "./nodes/b" }',
    '',
  ].join('\n');
  const path = join(root, 'config', 'data_sources.yml');
  await writeFile(path, yaml);
  return loadConfig(path);
}
