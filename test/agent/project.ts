// A throwaway project for engine-level agent tests: source files made of deterministic bytes, and a config whose
// nodes are agents (or folders), loaded the way the CLI loads it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../electron/engine/config.ts';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import type { DetectionResult } from '../../shared/types.ts';
import { tempDir } from '../helpers/temp.ts';

export const LOCAL_DETECTION: DetectionResult = { cloud: 'local', signal: 'flag', detail: '--cloud local (test)', elapsedMs: 0, probes: [] };

export interface TestNode {
  id: string;
  url?: string;
  path?: string;
  token_env?: string;
}

export async function makeSource(files: { name: string; bytes: number }[]): Promise<{ dir: string; md5: Map<string, string> }> {
  const dir = await tempDir('ci-source-');
  const md5 = new Map<string, string>();
  for (const f of files) {
    const path = join(dir, f.name);
    await ensureDataFile(path, f.bytes, f.name);
    md5.set(f.name, await md5File(path));
  }
  return { dir, md5 };
}

export async function md5File(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const part of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(part as Buffer);
  return hash.digest('hex');
}

export async function makeProject(o: {
  source: string;
  nodes: TestNode[];
  chunkMb: number;
  replicas?: number;
  concurrency?: number;
  retries?: number;
  placement?: 'balanced' | 'round_robin';
}): Promise<LoadedConfig> {
  const root = await tempDir('ci-project-');
  await mkdir(join(root, 'config'), { recursive: true });
  const node = (n: TestNode): string =>
    `  - { id: ${n.id}${n.url ? `, url: "${n.url}"` : ''}${n.path ? `, path: "${n.path}"` : ''}${n.token_env ? `, token_env: ${n.token_env}` : ''} }`;
  const yaml = [
    'data_sources:',
    `  local: { type: "local", path: "${o.source}" }`,
    'ingestion:',
    `  chunk_size_mb: ${o.chunkMb}`,
    `  max_concurrent_chunks: ${o.concurrency ?? 6}`,
    `  retry_attempts: ${o.retries ?? 1}`,
    '  retry_delay_seconds: 0.1',
    '  checksum: md5',
    `  placement: ${o.placement ?? 'balanced'}`,
    `  replicas: ${o.replicas ?? 1}`,
    `  manifest_dir: "${join(root, 'manifests')}"`,
    'use_local_simulation: false',
    'nodes:',
    ...o.nodes.map(node),
    '',
  ].join('\n');
  const path = join(root, 'config', 'data_sources.yml');
  await writeFile(path, yaml);
  return loadConfig(path);
}
