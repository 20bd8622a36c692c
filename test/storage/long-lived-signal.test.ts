// A run's signal lives as long as the run; reads and node probes made under it must leave nothing on it. With
// AbortSignal.any, each object read left three WeakRefs (and their finalization records) on the run's signal that
// no collection removed: a run of 100,000 objects from s3rver grew its live heap by ~25 MB.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Slots } from '../../electron/engine/limit.ts';
import { FolderNode } from '../../electron/engine/nodes/folder-node.ts';
import { NodeRegistry } from '../../electron/engine/nodes/registry.ts';
import { Bucket } from '../../electron/engine/storage/bucket.ts';
import { LocalDriver } from '../../electron/engine/storage/local.ts';
import { liveObjectsNamed } from '../helpers/heap-objects.ts';
import { tempDir } from '../helpers/temp.ts';

const TIMES = 300;

describe("work under a run's long-lived signal", () => {
  it(`${TIMES} objects read in parts leave no WeakRef behind, and each read still stops when the run is cancelled`, async () => {
    const root = await tempDir('ci-signal-reads-');
    await writeFile(join(root, 'a.bin'), Buffer.alloc(4096, 7));
    const bucket = new Bucket(new LocalDriver(root), { retries: 0, baseDelayMs: 1 });
    const object = await bucket.stat('a.bin');
    const run = new AbortController();
    const slots = new Slots(4);
    const readOnce = async (): Promise<number> => {
      let bytes = 0;
      for await (const chunk of await bucket.readInParts(object, { offset: 0, length: object.size }, { partSize: 1024, ahead: 2, slots, signal: run.signal })) bytes += (chunk as Buffer).length;
      return bytes;
    };
    expect(await readOnce()).toBe(4096);
    const before = await liveObjectsNamed('WeakRef');
    for (let i = 0; i < TIMES; i++) await readOnce();
    expect(await liveObjectsNamed('WeakRef')).toBeLessThan(before + 10);

    const reading = bucket.readInParts(object, { offset: 0, length: object.size }, { partSize: 1024, ahead: 2, slots, signal: run.signal });
    run.abort();
    await expect(reading.then((stream) => stream.toArray())).rejects.toThrow();
  });

  it(`${TIMES} node probes leave no WeakRef behind`, async () => {
    const dir = join(await tempDir('ci-signal-probes-'), 'n1');
    await mkdir(dir);
    const registry = new NodeRegistry([new FolderNode('n1', dir)], { probeIntervalMs: 0 });
    const run = new AbortController();
    try {
      expect((await registry.probeAll(run.signal))[0]?.state).toBe('healthy');
      const before = await liveObjectsNamed('WeakRef');
      for (let i = 0; i < TIMES; i++) await registry.probeAll(run.signal);
      expect(await liveObjectsNamed('WeakRef')).toBeLessThan(before + 10);
    } finally {
      await registry.close();
    }
  });
});
