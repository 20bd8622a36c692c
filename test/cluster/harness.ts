// Pieces the cluster tests share: a local source of deterministic files, work items for its chunks, a NATS client
// that plays the coordinator's side by hand, and reading a worker's results back from the result stream.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CLUSTER_DEFAULTS } from '../../shared/config/types.ts';
import { resultFilter, workMessageId, workSubject } from '../../shared/cluster/contract.ts';
import type { WorkItem, WorkResult } from '../../shared/cluster/contract.ts';
import { decode, encode, workItem, workResult } from '../../shared/cluster/validators.ts';
import { announceDelivery, connectNats, ensureConsumer, ensureStreams, manager } from '../../electron/engine/cluster/nats.ts';
import { localEtag } from '../../electron/engine/storage/local.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { agentSidecars } from '../helpers/agent-store.ts';
import { tempDir } from '../helpers/temp.ts';

export const MiB = 1024 * 1024;

export interface SourceFile {
  key: string;
  size: number;
  etag: string;
  path: string;
}

export async function localSource(files: { key: string; bytes: number }[]): Promise<{ dir: string; files: SourceFile[] }> {
  const dir = await tempDir('ci-cluster-source-');
  const out: SourceFile[] = [];
  for (const f of files) {
    const path = join(dir, f.key);
    await ensureDataFile(path, f.bytes, f.key);
    out.push({ key: f.key, size: f.bytes, etag: localEtag(await stat(path)), path });
  }
  return { dir, files: out };
}

export async function md5Range(path: string, offset: number, length: number): Promise<string> {
  const hash = createHash('md5');
  if (length > 0) for await (const part of createReadStream(path, { start: offset, end: offset + length - 1 })) hash.update(part as Buffer);
  return hash.digest('hex');
}

/** Work items for every chunk of `files`, all for `nodeId`. */
export function itemsFor(runId: string, dir: string, files: SourceFile[], chunkSize: number, nodeId: string): WorkItem[] {
  const items: WorkItem[] = [];
  for (const f of files) {
    for (let index = 0; index * chunkSize < f.size; index++) {
      const offset = index * chunkSize;
      items.push({ v: 1, runId, chunkId: `${f.key}_chunk_${index}`, key: f.key, index, offset, size: Math.min(chunkSize, f.size - offset), objectSize: f.size, etag: f.etag, nodeId, targets: [nodeId], checksum: 'md5', store: { kind: 'local', path: dir } });
    }
  }
  return items;
}

/** The coordinator's side, by hand: streams and a node's consumer set up, items published, results read. */
export class ManualCoordinator {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  private constructor(nc: NatsConnection) {
    this.nc = nc;
    this.js = jetstream(nc);
  }

  static async open(url: string, nodes: string[], delivery: { ack_wait_seconds: number; max_deliver: number }): Promise<ManualCoordinator> {
    const nc = await connectNats(url, 'test coordinator');
    const jsm = await manager(nc);
    await ensureStreams(jsm, CLUSTER_DEFAULTS);
    for (const node of nodes) await ensureConsumer(jsm, CLUSTER_DEFAULTS, node, { delivery });
    await announceDelivery(nc, nodes);
    return new ManualCoordinator(nc);
  }

  async publish(item: WorkItem, msgID = workMessageId(item, 'test')): Promise<number> {
    const ack = await this.js.publish(workSubject(item.runId, item.nodeId), encode(workItem, item, 'item'), { msgID });
    return ack.seq;
  }

  async publishRaw(runId: string, nodeId: string, body: string): Promise<void> {
    await this.js.publish(workSubject(runId, nodeId), body);
  }

  /** Every result of the run recorded so far, waiting until `until` holds for them (or `ms` passes). */
  async results(runId: string, until: (results: WorkResult[]) => boolean, ms = 30_000): Promise<WorkResult[]> {
    const consumer = await this.js.consumers.get(CLUSTER_DEFAULTS.result_stream, { filter_subjects: resultFilter(runId) });
    const messages = await consumer.consume();
    const results: WorkResult[] = [];
    const timer = setTimeout(() => messages.stop(), ms);
    try {
      if (until(results)) return results;
      for await (const m of messages) {
        results.push(decode(workResult, m.data, 'result'));
        if (until(results)) break;
      }
    } finally {
      clearTimeout(timer);
      messages.stop();
    }
    return results;
  }

  async close(): Promise<void> {
    await this.nc.drain();
  }
}

// ---- projects whose nodes are agent processes that pull -------------------------------------------------------

export interface ClusterNode {
  id: string;
  url: string;
  tokenEnv: string;
}

/** data_sources.yml for an ingest into agent nodes, in push or pull mode. */
export async function clusterProject(o: {
  sourceYaml: string;
  nodes: ClusterNode[];
  mode: 'push' | 'pull';
  natsUrl?: string;
  chunkMb: number;
  concurrency?: number;
  replicas?: number;
  cluster?: string[];
}): Promise<string> {
  const root = await tempDir('ci-cluster-project-');
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(join(root, 'config'), { recursive: true });
  const yaml = [
    'data_sources:',
    o.sourceYaml,
    'ingestion:',
    `  chunk_size_mb: ${o.chunkMb}`,
    `  max_concurrent_chunks: ${o.concurrency ?? 12}`,
    '  retry_attempts: 2',
    '  retry_delay_seconds: 0.1',
    '  checksum: md5',
    '  placement: stable',
    `  replicas: ${o.replicas ?? 1}`,
    `  manifest_dir: "${join(root, 'manifests')}"`,
    `  mode: ${o.mode}`,
    'use_local_simulation: false',
    'nodes:',
    ...o.nodes.map((n) => `  - { id: ${n.id}, url: "${n.url}", token_env: ${n.tokenEnv} }`),
    ...(o.natsUrl ? ['cluster:', `  nats_url: "${o.natsUrl}"`, ...(o.cluster ?? []).map((l) => `  ${l}`)] : []),
    '',
  ].join('\n');
  const path = join(root, 'config', 'data_sources.yml');
  await writeFile(path, yaml);
  return path;
}

/** Every chunk id an agent's folder holds (its metadata sidecars, in its subfolders or itself), with how many times. */
export async function chunksInFolder(dir: string): Promise<Map<string, number>> {
  const { readFile } = await import('node:fs/promises');
  const held = new Map<string, number>();
  for (const name of await agentSidecars(dir)) {
    const meta = JSON.parse(await readFile(join(dir, name), 'utf8')) as { id: string };
    held.set(meta.id, (held.get(meta.id) ?? 0) + 1);
  }
  return held;
}

/** `size` deterministic bytes (the test-data generator's), in memory: for seeding small objects. */
export async function deterministicBuffer(seed: string, size: number): Promise<Buffer> {
  const { deterministicStream } = await import('../../electron/engine/testdata.ts');
  const parts: Buffer[] = [];
  for await (const part of deterministicStream(seed, size)) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
