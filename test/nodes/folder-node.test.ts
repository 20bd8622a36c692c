// The folder node: the NodeTarget conformance suite, plus what only a folder has (a folder nothing may be written
// to, a disk that fills up between a chunk's bytes and its metadata).
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FolderNode } from '../../electron/engine/nodes/folder-node.ts';
import { NodeError } from '../../electron/engine/nodes/node.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { MiB, streamOf } from './chunks.ts';
import { defineNodeSuite, metaFor } from './conformance.ts';
import { damageFolderChunk, folderStrayFiles, folderTemps } from './folder-layout.ts';
import type { NodeUnderTest } from './conformance.ts';
import { makeReadOnly, makeWritable, releaseFolders, smallFilesystem } from './folders.ts';

function folderUnderTest(dir: string): NodeUnderTest {
  const fixture: NodeUnderTest = {
    node: new FolderNode('folder-under-test', dir),
    leftovers: () => folderStrayFiles(dir),
    damage: (chunkId) => damageFolderChunk(dir, chunkId),
    async restart() {
      await fixture.node.close();
      fixture.node = new FolderNode('folder-under-test', dir);
      return fixture.node;
    },
  };
  return fixture;
}

async function cleanup(): Promise<void> {
  await releaseFolders();
  await removeTempDirs();
}

defineNodeSuite('folder', {
  writePaths: ['write', 'writeHashing', 'writeFromFile', 'writeFilesFromDisk'],
  sameVersionOtherBytes: 'replaces',
  readsStoredOnThreads: true,
  open: async () => folderUnderTest(join(await tempDir('ci-folder-node-'), 'node')),
  // A tmpfs of that size: the disk really fills up.
  openWithRoomFor: async (bytes) => folderUnderTest(await smallFilesystem(bytes)),
  cleanup,
});

describe('a folder node on a folder it cannot write to', () => {
  afterAll(cleanup);

  it('probes unhealthy when the folder refuses new files, though its .tmp/ still takes them', async () => {
    const dir = await tempDir('ci-folder-ro-');
    const node = new FolderNode('read-only-1', dir);
    const bytes = randomBytes(1000);
    const before = streamOf(bytes);
    await node.write(metaFor('before.bin_chunk_0', bytes.length), before.data, before.checksum);
    expect((await node.probe()).ok).toBe(true);
    await makeReadOnly(dir); // chattr +i: stops root too; .tmp/ inside stays writable
    try {
      for (const probing of [node, new FolderNode('read-only-1', dir)]) {
        const probe = await probing.probe();
        expect(probe.ok, 'a folder that refuses new files probes healthy').toBe(false);
        expect(probe.error).toContain(dir);
      }
      const after = streamOf(bytes);
      const error = await node.write(metaFor('after.bin_chunk_0', bytes.length), after.data, after.checksum).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NodeError);
      expect((error as NodeError).message).toContain('read-only-1');
      expect(await node.find('before.bin_chunk_0')).toBeDefined();
    } finally {
      await makeWritable(dir);
    }
    expect((await node.probe()).ok).toBe(true);
    expect(await folderStrayFiles(dir)).toEqual([]);
  });

  it('probes unhealthy when a file sits where the folder should be', async () => {
    const parent = await tempDir('ci-folder-file-');
    await writeFile(join(parent, 'node'), 'not a folder');
    const probe = await new FolderNode('file-1', join(parent, 'node')).probe();
    expect(probe.ok).toBe(false);
    expect(probe.error).toMatch(/not a folder/);
  });

  for (const path of ['write', 'writeHashing', 'writeFromFile'] as const) {
    it(`${path}: a disk that fills up between a chunk and its index line fails the write with \`full\` and leaves no file behind`, async () => {
      const { HashPool } = await import('../../electron/engine/hash/pool.ts');
      const pool = new HashPool(1);
      try {
        const dir = await smallFilesystem(MiB);
        const node = new FolderNode('tiny-1', dir);
        await node.probe();
        const bytes = randomBytes(MiB); // exactly fills the filesystem: the data fits, its index line does not
        const meta = metaFor('fills-it.bin_chunk_0', bytes.length);
        const source = streamOf(bytes);
        const sourceFile = join(await tempDir('ci-folder-full-src-'), 'source.bin');
        await writeFile(sourceFile, bytes);
        const options = { pool, algorithm: 'md5' as const };
        const written =
          path === 'write'
            ? node.write(meta, source.data, source.checksum)
            : path === 'writeHashing'
              ? node.writeHashing(meta, source.data, options)
              : node.writeFromFile(meta, { path: sourceFile, offset: 0, length: bytes.length }, options);
        const error = await written.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NodeError);
        expect((error as NodeError).code, String(error)).toBe('full');
        expect(await node.find('fills-it.bin_chunk_0')).toBeUndefined();
        expect(await folderStrayFiles(dir)).toEqual([]);
        expect(await folderTemps(dir)).toEqual([]);
        await node.close();
      } finally {
        await pool.close();
      }
    });
  }
});

describe('a batch of whole files (writeFilesFromDisk) on a disk that fills up', () => {
  afterAll(cleanup);

  it('the files whose index lines find no room fail with `full`, each, and leave no file behind', async () => {
    const { HashPool } = await import('../../electron/engine/hash/pool.ts');
    const pool = new HashPool(1);
    try {
      const dir = await smallFilesystem(MiB);
      const node = new FolderNode('tiny-batch', dir);
      await node.probe();
      const sources = await tempDir('ci-folder-full-batch-src-');
      // Their bytes exactly fill the filesystem: the data fits, the batch's index lines do not.
      const files = await Promise.all(
        ['a', 'b', 'c', 'd'].map(async (name) => {
          const path = join(sources, name);
          await writeFile(path, randomBytes(MiB / 4));
          return { meta: metaFor(`${name}.bin_chunk_0`, MiB / 4), file: { path, offset: 0, length: MiB / 4 } };
        }),
      );
      const results = await node.writeFilesFromDisk(files, { pool, algorithm: 'md5' });
      expect(results).toHaveLength(4);
      for (const result of results) {
        expect(result).toBeInstanceOf(NodeError);
        expect((result as NodeError).code, String(result)).toBe('full');
      }
      for (const { meta } of files) expect(await node.find(meta.id)).toBeUndefined();
      expect(await folderStrayFiles(dir)).toEqual([]);
      expect(await folderTemps(dir)).toEqual([]);
      await node.close();
    } finally {
      await pool.close();
    }
  });
});

describe('a source that fails while the folder node sets up its temp file', () => {
  afterAll(cleanup);

  for (const path of ['write', 'writeHashing'] as const) {
    it(`${path}: the failure rejects that write with the source's error, never as an uncaught exception`, async () => {
      const { HashPool } = await import('../../electron/engine/hash/pool.ts');
      const { Readable } = await import('node:stream');
      const pool = new HashPool(1);
      try {
        // A fresh node: its first write still has to create its folders when the source fails.
        const node = new FolderNode('fresh', join(await tempDir('ci-folder-node-'), 'a', 'b', 'c'));
        const data = new Readable({ read() {} });
        const failure = new Error('connection reset by the store');
        const meta = metaFor('early-failure.bin_chunk_0', 10);
        const written = path === 'write' ? node.write(meta, data, Promise.resolve({ algorithm: 'md5', hex: '0'.repeat(32) })) : node.writeHashing(meta, data, { pool, algorithm: 'md5' });
        data.destroy(failure);
        await expect(written).rejects.toBe(failure);
        expect(await node.find(meta.id)).toBeUndefined();
      } finally {
        await pool.close();
      }
    });
  }
});
