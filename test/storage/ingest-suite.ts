// The engine-level source suite: the same ingest scenarios through runIngest against every store
// (local folder, S3, GCS, Azure), into two local folder nodes in a temp project, with
// `use_local_simulation: false` and credentials/endpoints only from each SDK's env conventions.
// It runs inside defineSourceSuites (conformance.ts), which starts the store and seeds the objects.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import { runIngest } from '../../electron/engine/ingest.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import { StorageError } from '../../electron/engine/storage/driver.ts';
import type { CloudName, DataSourceConfig } from '../../shared/config/types.ts';
import type { DetectionResult, IngestEvent, Manifest, ManifestChunk } from '../../shared/types.ts';
import { writeCloudProject } from '../helpers/cloud-project.ts';
import { isRangedGet } from '../helpers/fault-proxy.ts';
import type { FaultRecord } from '../helpers/fault-proxy.ts';
import { crcOfFile, MiB, md5, md5OfRange } from './data.ts';
import { BIG_KEY, EMPTY_KEY, MANY_KEYS, UNICODE_KEYS, contentOf } from './conformance.ts';
import type { SourceContext } from './conformance.ts';
import { withEnv } from './stores.ts';
import type { StoreKind } from './stores.ts';

const CLOUD: Record<StoreKind, CloudName> = { local: 'local', s3: 'aws', gcs: 'gcp', azure: 'azure' };

function detection(cloud: CloudName): DetectionResult {
  return { cloud, signal: 'flag', detail: `--cloud ${cloud} (test)`, elapsedMs: 0, probes: [] };
}

interface Project {
  root: string;
  loaded: LoadedConfig;
}

/** Whether a faulted request asked for bytes of this chunk of the big object. */
function isPartOf(fault: FaultRecord, chunk: ManifestChunk): boolean {
  const start = Number(/bytes=(\d+)-/.exec(fault.range ?? '')?.[1] ?? -1);
  return decodeURIComponent(fault.path).includes(BIG_KEY) && start >= chunk.offset && start < chunk.offset + chunk.size;
}

async function project(ctx: SourceContext, options: { source?: DataSourceConfig; ingestion?: Record<string, number> } = {}): Promise<Project> {
  const root = await mkdtemp(join(tmpdir(), `ci-ingest-${ctx.kind}-`));
  const ingestion = { chunk_size_mb: 100, max_concurrent_chunks: 4, retry_attempts: 2, retry_delay_seconds: 0.05, ...options.ingestion };
  return { root, loaded: await writeCloudProject(root, CLOUD[ctx.kind], options.source ?? ctx.store.source(), ingestion) };
}

async function ingest(p: Project, ctx: SourceContext, pattern?: string, onEvent?: (e: IngestEvent) => void): Promise<{ manifest: Manifest; manifestPath: string }> {
  return runIngest({ loaded: p.loaded, detection: detection(CLOUD[ctx.kind]), ...(pattern ? { pattern } : {}), ...(onEvent ? { onEvent } : {}) });
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

export function defineIngestSuite(ctx: SourceContext): void {
  describe('engine ingest (runIngest into two folder nodes)', () => {
    const roots: string[] = [];
    const track = (p: Project): Project => {
      roots.push(p.root);
      return p;
    };
    let cloudKind = false;
    beforeAll(() => {
      cloudKind = ctx.kind !== 'local';
    });
    afterAll(async () => {
      for (const root of roots) await rm(root, { recursive: true, force: true });
    });

    it('ingests a 150 MiB object as 2 checked chunks, a 0-byte object and nested/unicode keys, byte-exact', async () => {
      const p = track(await project(ctx));
      const { manifest, manifestPath } = await ingest(p, ctx, '{big,empty,keys}/**');
      expect(manifest.status).toBe('complete');
      expect(manifest.source.kind).toBe(ctx.kind);
      if (cloudKind) expect(manifest.source.location).toContain(ctx.store.bucket);
      expect(manifest.files.map((f) => f.key).sort()).toEqual([BIG_KEY, EMPTY_KEY, ...UNICODE_KEYS].sort());

      const big = manifest.files.find((f) => f.key === BIG_KEY)!;
      expect(big).toMatchObject({ size: 150 * MiB, chunkCount: 2, status: 'complete' });
      const bigChunks = manifest.chunks.filter((c) => c.file === BIG_KEY).sort((a, b) => a.index - b.index);
      expect(bigChunks.map((c) => c.size)).toEqual([100 * MiB, 50 * MiB]);
      expect(bigChunks[0]!.checksum).toBe(await md5OfRange(ctx.bigFile, 0, 100 * MiB));
      expect(bigChunks[1]!.checksum).toBe(await md5OfRange(ctx.bigFile, 100 * MiB, 50 * MiB));
      // Chunks spread over both nodes.
      expect(new Set(bigChunks.map((c) => c.node)).size).toBe(2);
      if (ctx.store.keepsCrc32c) {
        // Two chunks: the store's CRC32C, combined from the chunks' own, is checked rather than a second MD5 pass.
        expect(big.sourceChecksum).toEqual({ kind: `${ctx.kind}-crc32c`, value: await crcOfFile(ctx.bigFile, 'crc32c'), matched: true });
        expect(bigChunks.every((c) => c.crc?.kind === 'crc32c' && Number.isInteger(c.crc.value))).toBe(true);
      } else if (ctx.store.keepsMd5) {
        expect(big.sourceChecksum?.matched).toBe(true);
        expect(big.sourceChecksum?.value).toBe(ctx.bigMd5);
        expect(big.sourceChecksum?.kind).toMatch(/md5$/);
      }

      const empty = manifest.files.find((f) => f.key === EMPTY_KEY)!;
      expect(empty).toMatchObject({ size: 0, status: 'complete', chunkCount: 0 });

      const out = join(p.root, 'out-big.bin');
      const report = await reassembleFile({ loaded: p.loaded, manifestPath, key: BIG_KEY, outPath: out });
      expect(report.matched).toBe(true);
      expect(report.md5Hex).toBe(ctx.bigMd5);
      for (const key of UNICODE_KEYS) {
        const r = await reassembleFile({ loaded: p.loaded, manifestPath, key, outPath: join(p.root, `out-${md5(key)}`) });
        expect(r.md5Hex).toBe(md5(contentOf(key)));
      }
    });

    it('pages through 2,500 objects and ingests only those the glob matches', async () => {
      const p = track(await project(ctx, { source: { ...ctx.store.source(), prefix: 'many/' } }));
      // Relative to the prefix; matches part-00000.csv … part-02498.csv ending in 00 or 50: 50 files.
      const { manifest } = await ingest(p, ctx, 'part-*{00,50}.csv');
      const expected = MANY_KEYS.filter((k) => /(00|50)\.csv$/.test(k));
      expect(expected.length).toBe(50);
      expect(manifest.status).toBe('complete');
      expect(manifest.files.map((f) => f.key).sort()).toEqual(expected);
      for (const f of manifest.files) {
        expect(f.checksum).toBe(md5(f.key));
        if (ctx.store.keepsMd5) expect(f.sourceChecksum?.matched).toBe(true);
      }
    });

    if (ctx.kind !== 'local') {
      it('never has more than max_concurrent_chunks ranged reads open at the store, however chunks are read', async () => {
        const { proxy, env, source } = await ctx.store.withFaultProxy!({ kinds: [] });
        try {
          const p = track(await project(ctx, { source, ingestion: { chunk_size_mb: 25, max_concurrent_chunks: 3 } }));
          // The big object is read chunk by chunk in parts where its store keeps only an MD5, the small ones whole.
          const { manifest } = await withEnv(env, () => ingest(p, ctx, '{big/**,many/part-000[0-3]?.csv}'));
          expect(manifest.status).toBe('complete');
          expect(proxy.ranges.length).toBeGreaterThanOrEqual(manifest.chunks.length);
          expect(proxy.mostRangedOpen).toBeGreaterThan(1);
          expect(proxy.mostRangedOpen).toBeLessThanOrEqual(3);
        } finally {
          await proxy.close();
        }
      });
    }

    it('fails clearly on a missing bucket, naming the store and the bucket, and records nothing', async () => {
      const p = track(await project(ctx, { source: ctx.store.source('no-such-bucket-here') }));
      const error = await failure(ingest(p, ctx));
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe('bucket_not_found');
      expect((error as StorageError).message).toContain('no-such-bucket-here');
      expect((error as StorageError).message).toContain(ctx.kind);
    });

    it('detects an object overwritten mid-ingest and never records it as complete', async () => {
      const key = 'changing-engine/object.bin';
      const size = 3 * MiB;
      await ctx.store.put(key, Buffer.alloc(size, 1));
      const ingestion = { chunk_size_mb: 1, max_concurrent_chunks: 1 };
      const replace = () => ctx.store.put(key, Buffer.alloc(size, 2));
      let result: { manifest: Manifest };
      if (ctx.kind === 'local') {
        const p = track(await project(ctx, { source: { ...ctx.store.source(), prefix: 'changing-engine/' }, ingestion }));
        // The local store is written synchronously from the first chunk's event, before chunk 1 is read.
        const { writeFileSync } = await import('node:fs');
        const path = join(ctx.store.source().path as string, key);
        let done = false;
        result = await ingest(p, ctx, undefined, (e) => {
          if (!done && e.type === 'chunk' && e.index === 0 && e.state === 'verified') {
            done = true;
            writeFileSync(path, Buffer.alloc(size, 2));
          }
        });
      } else {
        // The fault proxy holds the second ranged GET until the object has been replaced behind it.
        let ranged = 0;
        const { proxy, env, source } = await ctx.store.withFaultProxy!({
          kinds: [],
          before: async (req) => {
            if (isRangedGet(req) && ++ranged === 2) await replace();
          },
        });
        try {
          const p = track(await project(ctx, { source: { ...source, prefix: 'changing-engine/' }, ingestion }));
          result = await withEnv(env, () => ingest(p, ctx));
        } finally {
          await proxy.close();
        }
      }
      const file = result.manifest.files.find((f) => f.key === key)!;
      expect(file.status).toBe('failed');
      expect(file.error).toMatch(/changed|precondition|no longer exists/i);
      expect(result.manifest.status).not.toBe('complete');
    });

    if (ctx.kind !== 'local') {
      it('rides out 503s, dropped connections and cut bodies: completes byte-exact, retries in the manifest', async () => {
        const { proxy, env, source } = await ctx.store.withFaultProxy!({ kinds: ['503', 'reset', 'truncate'], fraction: 0.4, seed: ctx.kind, match: isRangedGet });
        try {
          // A read asked for again from a later byte is a new request the proxy may fault too: enough retries that
          // no chain of faults runs out of them, so every fault costs exactly one retry.
          const p = track(await project(ctx, { source, ingestion: { chunk_size_mb: 25, retry_attempts: 5 } }));
          const { manifest, manifestPath } = await withEnv(env, () => ingest(p, ctx, '{big/**,keys/**,many/part-000[0-2]?.csv}'));
          const faults = proxy.faults.length;
          expect(faults).toBeGreaterThan(0);
          expect(manifest.status).toBe('complete');
          expect(manifest.files.every((f) => f.status === 'complete')).toBe(true);
          // Every injected fault cost exactly one retry: a broken read is asked for again from its first byte not
          // yet received (for a file checked in order, the 8 MiB part that broke), and breaks no other read in
          // flight. So no fault costs a chunk attempt: the manifest counts them per chunk as `readRetries`.
          const perChunk = manifest.chunks.reduce((sum, c) => sum + c.attempts - 1 + (c.readRetries ?? 0), 0);
          expect(manifest.totals.retries).toBe(faults);
          expect(perChunk).toBe(manifest.totals.retries);
          expect(manifest.chunks.every((c) => c.attempts === 1)).toBe(true);
          const bigChunks = manifest.chunks.filter((c) => c.file === BIG_KEY);
          for (const c of bigChunks) expect(c.readRetries ?? 0).toBeGreaterThanOrEqual(proxy.faults.filter((f) => isPartOf(f, c)).length);
          expect(bigChunks.some((c) => (c.readRetries ?? 0) > 0)).toBe(true);
          const big = manifest.chunks.filter((c) => c.file === BIG_KEY).sort((a, b) => a.index - b.index);
          expect(big.length).toBe(6);
          for (const c of big) expect(c.checksum).toBe(await md5OfRange(ctx.bigFile, c.offset, c.size));
          const report = await reassembleFile({ loaded: p.loaded, manifestPath, key: BIG_KEY, outPath: join(p.root, 'out.bin') });
          expect(report.md5Hex).toBe(ctx.bigMd5);
        } finally {
          await proxy.close();
        }
      });

      {
        it('fails clearly on rejected credentials, naming the store, bucket and a hint', async () => {
          const bad: Record<StoreKind, { env: Record<string, string | undefined>; source?: DataSourceConfig }> = {
            local: { env: {} },
            s3: { env: { AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG0', AWS_SECRET_ACCESS_KEY: 'wrong' } },
            gcs: { env: { GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/cloud-ingest-test/adc.json' }, source: { ...ctx.store.source(), endpoint: 'https://127.0.0.1:9' } },
            azure: {
              env: {
                AZURE_STORAGE_CONNECTION_STRING: (process.env.AZURE_STORAGE_CONNECTION_STRING ?? '').replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.from('not-the-key').toString('base64')}`),
              },
            },
          };
          const { env, source } = bad[ctx.kind];
          const p = track(await project(ctx, source ? { source } : {}));
          const error = await withEnv(env, () => failure(ingest(p, ctx)));
          expect(error).toBeInstanceOf(StorageError);
          expect((error as StorageError).code).toBe('unauthenticated');
          expect((error as StorageError).message).toContain(ctx.store.bucket);
          expect((error as StorageError).hint).toMatch(/credentials/);
        });
      }
    }
  });
}
