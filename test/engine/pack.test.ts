// Packing small files into shards (ingestion.pack_below_mb): POSIX tar shards of at most one chunk that Python's
// tarfile and the webdataset package read back byte for byte, samples never split, every packed file in the
// manifest with its shard, offset and checksum; reassemble and verify per packed file; a resumed run keeps the
// shards it delivered exactly as they were.
import { statSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runIngest } from '../../electron/engine/ingest.ts';
import { readJournal, journalPath } from '../../electron/engine/journal.ts';
import { MAX_SHARD_MEMBERS, Packer, sampleKey } from '../../electron/engine/pack/plan.ts';
import type { PlanItem, ShardLayout } from '../../electron/engine/pack/plan.ts';
import { validateConfigText } from '../../shared/config/validate.ts';
import { startStore } from '../storage/stores.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import { repairRun } from '../../electron/engine/repair.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { IngestEvent, Manifest } from '../../shared/types.ts';
import { md5, readShardsInPython, writeSample, writeSamples } from '../helpers/samples.ts';
import { cancelAfterVerified, detection, MIB, nodesYaml, tempProject, writeConfig } from './fixtures.ts';

const NODES = [{ id: 'n1', path: './nodes/n1' }, { id: 'n2', path: './nodes/n2' }];

async function project(ingestion: string) {
  const root = await tempProject();
  const yaml = `data_sources:\n  local: { type: local, path: ./data }\ningestion: { ${ingestion}, retry_attempts: 1, retry_delay_seconds: 0.05 }\n${nodesYaml(NODES)}`;
  return { root, data: join(root, 'data'), loaded: await writeConfig(root, yaml) };
}

const shards = (m: Manifest) => m.chunks.filter((c) => c.id.startsWith('shard-'));
const shardPaths = (m: Manifest) => shards(m).map((c) => c.path);

describe('packing small files into shards', () => {
  it('packs them into tar shards of at most a chunk that tarfile and webdataset read back exactly, and keeps big files chunked', async () => {
    const { root, data, loaded } = await project('chunk_size_mb: 0.5, pack_below_mb: 0.25, max_concurrent_chunks: 3');
    const expected = await writeSamples(data, { samples: 150 });
    const longName = `train/${'ünïcödé-'.repeat(12)}${'x'.repeat(90)}.txt`;
    expected.set(longName, await writeSample(data, longName, Buffer.from('a sample whose name needs a pax header')));
    await ensureDataFile(join(data, 'big.bin'), 1.5 * MIB + 7, 'big');
    await writeSample(data, 'empty.txt', Buffer.alloc(0));

    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.status).toBe('complete');
    // Every small file is packed, with its own checksum; big.bin is chunked as before; the empty file is recorded.
    const packed = manifest.files.filter((f) => f.packed);
    expect(new Set(packed.map((f) => f.key))).toEqual(new Set(expected.keys()));
    for (const file of packed) expect(file.checksum).toBe(expected.get(file.key));
    expect(manifest.files.find((f) => f.key === 'big.bin')).toMatchObject({ chunkCount: 4, status: 'complete' });
    expect(manifest.files.find((f) => f.key === 'empty.txt')).toMatchObject({ size: 0, chunkCount: 0, status: 'complete' });
    expect(manifest.chunks.filter((c) => c.file === 'big.bin')).toHaveLength(4);
    // Shards are chunks of at most chunk_size, spread over both nodes; a sample never spans two.
    expect(shards(manifest).length).toBeGreaterThan(5);
    for (const shard of shards(manifest)) expect(shard.size).toBeLessThanOrEqual(0.5 * MIB);
    expect(new Set(shards(manifest).map((c) => c.node))).toEqual(new Set(['n1', 'n2']));
    const shardsOfSample = new Map<string, Set<string>>();
    for (const file of packed) shardsOfSample.set(sampleKey(file.key), (shardsOfSample.get(sampleKey(file.key)) ?? new Set()).add(file.packed!.shard));
    for (const [sample, inShards] of shardsOfSample) expect([sample, inShards.size]).toEqual([sample, 1]);

    const readBack = await readShardsInPython(shardPaths(manifest));
    expect(readBack.tarfile).toEqual(Object.fromEntries(expected));
    const samples = Object.fromEntries([...expected].filter(([key]) => key !== longName));
    expect(readBack.webdataset).toMatchObject(samples);
    expect(readBack.samples).toBeGreaterThanOrEqual(150);

    // Each packed file is where the manifest says: its bytes at its offset in its shard.
    for (const file of packed.slice(0, 40)) {
      const shard = manifest.chunks.find((c) => c.id === file.packed!.shard)!;
      const bytes = (await readFile(shard.path)).subarray(file.packed!.offset, file.packed!.offset + file.size);
      expect(md5(bytes)).toBe(file.checksum);
    }

    const out = join(root, 'rebuilt', 'long.txt');
    const report = await reassembleFile({ loaded, manifestPath, key: longName, outPath: out });
    expect(report).toMatchObject({ matched: true, bytes: 38, md5Hex: expected.get(longName) });
    expect(await readFile(out, 'utf8')).toBe('a sample whose name needs a pax header');
    expect((await verifyRun({ loaded, manifestPath })).problems).toEqual([]);
  });

  it('verify names the packed files a damaged shard copy damages; reassemble rebuilds the others from it; repair packs it again from the source', async () => {
    const { root, data, loaded } = await project('chunk_size_mb: 0.25, pack_below_mb: 0.1');
    const expected = await writeSamples(data, { samples: 30, extensions: ['bin', 'txt'] });
    const { manifest, manifestPath } = await runIngest({ loaded, detection: detection('local') });
    expect(manifest.status).toBe('complete');
    const victim = manifest.files.find((f) => f.key === 'train/000004.txt')!;
    const shard = manifest.chunks.find((c) => c.id === victim.packed!.shard)!;
    const bytes = await readFile(shard.path);
    bytes[victim.packed!.offset + 3]! ^= 0xff;
    await writeFile(shard.path, bytes);

    const report = await verifyRun({ loaded, manifestPath });
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]).toMatchObject({ chunkId: shard.id, reason: 'checksum_mismatch', members: ['train/000004.txt'] });
    expect(report.problems[0]!.detail).toContain('damaged packed files: train/000004.txt');

    const neighbour = manifest.files.find((f) => f.packed?.shard === shard.id && f.key !== victim.key)!;
    const rebuilt = await reassembleFile({ loaded, manifestPath, key: neighbour.key, outPath: join(root, 'out', 'n.bin') });
    expect(rebuilt).toMatchObject({ matched: true, md5Hex: expected.get(neighbour.key) });
    await expect(reassembleFile({ loaded, manifestPath, key: victim.key, outPath: join(root, 'out', 'v.bin') })).rejects.toThrow(/No good copy of shard-/);

    // The only copy is damaged: repair packs the shard again from the files, at the versions the run packed.
    const repaired = await repairRun({ loaded, manifestPath });
    expect(repaired.actions).toEqual([expect.objectContaining({ chunkId: shard.id, from: 'source', outcome: 'restored' })]);
    expect((await verifyRun({ loaded, manifestPath: repaired.manifestPath })).problems).toEqual([]);
    const again = await reassembleFile({ loaded, manifestPath: repaired.manifestPath, key: victim.key, outPath: join(root, 'out', 'v.bin') });
    expect(again).toMatchObject({ matched: true, md5Hex: expected.get(victim.key) });
  });

  for (const replicas of [1, 2]) {
    it(`a file changed after the listing fails its shard only, named (replicas ${replicas}: the shard ${replicas === 1 ? 'written by a hashing thread' : 'streamed to both nodes'})`, async () => {
      const { data, loaded } = await project(`chunk_size_mb: 0.25, pack_below_mb: 0.1, replicas: ${replicas}`);
      const expected = await writeSamples(data, { samples: 40, extensions: ['bin', 'txt'] });
      const victim = 'train/000021.txt';
      let changed = false;
      const onEvent = (e: IngestEvent): void => {
        // Once listed (the 40 files are one page of the listing), before any shard is read: same size, other bytes,
        // a new version. Delivery waits for the page's plan, which is said first.
        if (e.type !== 'listed' || changed) return;
        changed = true;
        writeFileSync(join(data, victim), Buffer.alloc(statSync(join(data, victim)).size, 9));
      };
      const { manifest } = await runIngest({ loaded, detection: detection('local'), onEvent });
      expect(manifest.status).toBe('partial');
      const failed = manifest.files.filter((f) => f.status === 'failed');
      const shardOf = failed[0]!.error!.match(/^shard (\S+):/)![1];
      expect(failed.length).toBeGreaterThan(1);
      for (const file of failed) expect(file.error).toMatch(new RegExp(`^shard ${shardOf}: .*${victim}.*changed`));
      const good = manifest.files.filter((f) => f.status === 'complete');
      expect(good.length + failed.length).toBe(expected.size);
      for (const shard of shards(manifest)) expect(shard.copies).toHaveLength(replicas);
      for (const copy of [0, replicas - 1]) {
        const readBack = await readShardsInPython(shards(manifest).map((c) => c.copies[copy]!.location));
        for (const file of good) expect(readBack.tarfile[file.key]).toBe(expected.get(file.key));
      }
    });
  }

  it('a resumed run keeps the shards it delivered as they were, and packs files added meanwhile around them', async () => {
    const { data, loaded } = await project('chunk_size_mb: 0.25, pack_below_mb: 0.1, max_concurrent_chunks: 1');
    const expected = await writeSamples(data, { samples: 120, extensions: ['bin', 'txt'] });
    const first = await runIngest({ loaded, detection: detection('local'), ...cancelAfterVerified(3) });
    expect(first.manifest.status).toBe('cancelled');
    const journal = await readJournal(journalPath(loaded, first.manifest.runId));
    const delivered = [...journal.chunks.values()].map((e) => e.chunk).filter((c) => c.members);
    expect(delivered.length).toBeGreaterThanOrEqual(3);

    // New files land in the middle of the listing: a fresh plan would shift every shard after them.
    for (const key of ['train/000000.zz', 'train/000001a.bin', 'train/000060a.bin']) expected.set(key, await writeSample(data, key, Buffer.alloc(3000, key.length)));
    const events: IngestEvent[] = [];
    const resumed = await runIngest({ loaded, detection: detection('local'), resume: first.manifest.runId, onEvent: (e) => events.push(e) });
    expect(resumed.manifest.status).toBe('complete');
    for (const shard of delivered) {
      const now = resumed.manifest.chunks.find((c) => c.id === shard.id);
      expect(now).toMatchObject({ size: shard.size, checksum: shard.checksum });
    }
    const read = events.filter((e) => e.type === 'chunk' && e.state === 'reading').map((e) => (e as { id: string }).id);
    expect(read.filter((id) => delivered.some((s) => s.id === id))).toEqual([]);
    const readBack = await readShardsInPython(shardPaths(resumed.manifest));
    expect(readBack.tarfile).toEqual(Object.fromEntries(expected));
    expect((await verifyRun({ loaded, manifestPath: resumed.manifestPath })).problems).toEqual([]);
  });
});

describe('packing from a cloud store', () => {
  it("packs S3 objects read a few ahead, checks each against the store's MD5 ETag, and tarfile reads the shards back exactly", { timeout: 120_000 }, async () => {
    const store = await startStore('s3', 'pack-bucket');
    try {
      const root = await tempProject();
      const local = join(root, 'staging');
      const expected = await writeSamples(local, { samples: 60, extensions: ['jpg', 'json'], max: 40 * 1024 });
      for (const key of expected.keys()) await store.put(key, await readFile(join(local, key)));
      await store.put('big.bin', Buffer.alloc(600 * 1024, 1));
      const yaml = ['data_sources:', '  aws: { type: s3, bucket: pack-bucket, region: us-east-1 }', 'ingestion: { chunk_size_mb: 0.5, pack_below_mb: 0.25, retry_attempts: 1, retry_delay_seconds: 0.05 }', 'use_local_simulation: false', nodesYaml(NODES)].join('\n');
      const loaded = await writeConfig(root, yaml);
      const { manifest } = await runIngest({ loaded, detection: detection('aws') });
      expect(manifest.status).toBe('complete');
      const packed = manifest.files.filter((f) => f.packed);
      expect(packed.map((f) => f.key).sort()).toEqual([...expected.keys()].sort());
      for (const file of packed) expect([file.key, file.sourceChecksum]).toEqual([file.key, { kind: 's3-etag-md5', value: expected.get(file.key), matched: true }]);
      expect(manifest.files.find((f) => f.key === 'big.bin')).toMatchObject({ chunkCount: 2, status: 'complete' });
      expect(shards(manifest).length).toBeGreaterThan(3);
      expect((await readShardsInPython(shardPaths(manifest))).tarfile).toEqual(Object.fromEntries(expected));
    } finally {
      await store.stop();
    }
  });
});

describe('the size of a shard', () => {
  const GIB = 1024 * MIB;
  function pack(keys: string[], chunkSize: number): ShardLayout[] {
    const packer = new Packer({ chunkSize, packBelow: MIB });
    const items: PlanItem[] = keys.flatMap((key) => packer.add({ key, size: 100, etag: 'e' }));
    return [...items, ...packer.finish()].map((item) => item.shard!);
  }
  const sizes = (shards: ShardLayout[]) => shards.map((s) => s.members.length);

  it(`is at most ${MAX_SHARD_MEMBERS} files however large a chunk is, every file packed once in listing order`, () => {
    // A 1 GiB chunk of a million 100-byte files was one shard, and the hashing thread packing it ran out of heap.
    const keys = Array.from({ length: 40_000 }, (_, i) => `d${Math.floor(i / 1000)}/${String(i).padStart(6, '0')}.txt`);
    const shards = pack(keys, GIB);
    expect(sizes(shards)).toEqual([MAX_SHARD_MEMBERS, MAX_SHARD_MEMBERS, 40_000 - 2 * MAX_SHARD_MEMBERS]);
    expect(shards.flatMap((s) => s.members.map((m) => m.object.key))).toEqual(keys);
  });

  it('splits a "sample" only when it alone is more than a shard holds, and keeps real samples whole', () => {
    // img.00001.png, img.00002.png, ...: one WebDataset sample key ("img") for every file
    const oneKey = Array.from({ length: MAX_SHARD_MEMBERS + 10 }, (_, i) => `frames/img.${String(i).padStart(6, '0')}.png`);
    expect(sizes(pack(oneKey, GIB))).toEqual([MAX_SHARD_MEMBERS, 10]);
    // by bytes: 100-byte files take 1 KiB each in a tar (header and padded data); 64 and the end of the archive fill 65 KiB
    expect(sizes(pack(oneKey.slice(0, 100), 65 * 1024))).toEqual([64, 36]);
    // real samples (a .jpg and a .json each) are never split: each shard starts with a .jpg and ends with its .json
    const samples = Array.from({ length: MAX_SHARD_MEMBERS + 1 }, (_, i) => [`s/${String(i).padStart(6, '0')}.jpg`, `s/${String(i).padStart(6, '0')}.json`]).flat();
    const shards = pack(samples, GIB);
    expect(sizes(shards)).toEqual([MAX_SHARD_MEMBERS, MAX_SHARD_MEMBERS, 2]);
    for (const shard of shards) {
      expect([shard.members[0]!.object.key.endsWith('.jpg'), shard.members.at(-1)!.object.key.endsWith('.json')]).toEqual([true, true]);
    }
  });
});

describe('pack_below_mb in the config', () => {
  const yaml = (ingestion: string) => `data_sources:\n  local: { type: local, path: ./data }\ningestion:\n  ${ingestion}\n`;
  const errors = (ingestion: string) => validateConfigText(yaml(ingestion), 'c.yml').diagnostics.filter((d) => d.severity === 'error');

  it('is off by default, and takes a size up to a chunk', () => {
    expect(validateConfigText(yaml('chunk_size_mb: 8'), 'c.yml').config?.ingestion.pack_below_mb).toBe(0);
    expect(validateConfigText(yaml('{ chunk_size_mb: 8, pack_below_mb: 0.5 }'), 'c.yml').config?.ingestion.pack_below_mb).toBe(0.5);
  });

  it('refuses a size above the chunk size, a negative one, and packing in pull mode, naming the key and the fix', () => {
    expect(errors('{ chunk_size_mb: 8, pack_below_mb: 16 }')).toEqual([expect.objectContaining({ key: 'ingestion.pack_below_mb', line: 4, fix: expect.stringContaining('at most 8') })]);
    expect(errors('{ pack_below_mb: -1 }')).toEqual([expect.objectContaining({ key: 'ingestion.pack_below_mb' })]);
    expect(errors('{ pack_below_mb: 1, mode: pull }')).toContainEqual(expect.objectContaining({ key: 'ingestion.pack_below_mb', fix: expect.stringContaining('mode: push') }));
  });
});
