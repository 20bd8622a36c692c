// A throwaway project in a temp folder: config/data_sources.yml plus data folders, loaded like the CLI loads it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { loadConfig } from '../../electron/engine/config.ts';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import type { CloudName } from '../../shared/config/types.ts';
import type { DetectionResult, IngestEvent } from '../../shared/types.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

export const MIB = 1024 * 1024;

export function detection(cloud: CloudName): DetectionResult {
  return { cloud, signal: 'env', detail: `CLOUD_PROVIDER=${cloud} (test)`, elapsedMs: 0, probes: [] };
}

// This module is evaluated once per test file, so this runs when the file that made the folders is done.
afterAll(removeTempDirs);

export async function tempProject(): Promise<string> {
  const root = await tempDir('ci-engine-');
  await mkdir(join(root, 'config'));
  return root;
}

export async function writeConfig(root: string, yaml: string): Promise<LoadedConfig> {
  const path = join(root, 'config', 'data_sources.yml');
  await writeFile(path, yaml);
  return loadConfig(path);
}

export const ORIGINAL_YAML = `data_sources:
  aws:   { type: "s3",   bucket: "ml-training-data-aws",   region: "us-east-1",   local_simulation: "./test_data/aws_s3_simulation" }
  gcp:   { type: "gcs",  bucket: "ml-training-data-gcp",   region: "us-central1", local_simulation: "./test_data/gcp_gcs_simulation" }
  azure: { type: "blob", container: "ml-training-data-azure", region: "eastus",   local_simulation: "./test_data/azure_blob_simulation" }
ingestion: { chunk_size_mb: 100, max_concurrent_chunks: 10, retry_attempts: 3, retry_delay_seconds: 5 }
use_local_simulation: true
`;

export function nodesYaml(nodes: { id: string; path: string }[]): string {
  return `nodes:\n${nodes.map((n) => `  - { id: ${n.id}, path: "${n.path}" }`).join('\n')}\n`;
}

export async function md5OfRange(path: string, start: number, length: number): Promise<string> {
  const hash = createHash('md5');
  if (length === 0) return hash.digest('hex');
  for await (const part of createReadStream(path, { start, end: start + length - 1, highWaterMark: MIB })) hash.update(part as Buffer);
  return hash.digest('hex');
}

/** A signal and an event handler for runIngest that cancel the run once `count` chunks are verified. */
export function cancelAfterVerified(count: number): { signal: AbortSignal; onEvent: (e: IngestEvent) => void } {
  const controller = new AbortController();
  let verified = 0;
  return {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'chunk' && e.state === 'verified' && ++verified === count) controller.abort(new Error('stop'));
    },
  };
}
