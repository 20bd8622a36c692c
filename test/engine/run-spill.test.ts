// What a run keeps of its delivered chunks on disk (RunSpill): each chunk as last recorded, its manifest entry as
// written, the totals and per-node holdings the manifest states, and enough to send a chunk again.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ManifestChunk } from '../../shared/types.ts';
import type { PlannedChunk } from '../../electron/engine/chunks.ts';
import { layout } from '../../electron/engine/pack/plan.ts';
import { shardChunks, withMembers } from '../../electron/engine/pack/run.ts';
import { RunSpill } from '../../electron/engine/run-spill.ts';
import { tempDir } from '../helpers/temp.ts';

let spill: RunSpill;

beforeEach(async () => {
  spill = await RunSpill.open(join(await tempDir('ci-run-spill-'), 'run.work'));
});

afterEach(async () => {
  await spill.remove();
});

function planned(key: string, size: number): PlannedChunk {
  return { id: `${key}_chunk_0`, object: { key, size, etag: `${size}-1-2` }, index: 0, offset: 0, size };
}

function delivered(chunk: PlannedChunk, nodes: string[], skipped = false): ManifestChunk {
  const copies = nodes.map((nodeId) => ({ nodeId, location: `/nodes/${nodeId}/${chunk.id}.chunk` }));
  return { id: chunk.id, file: chunk.object.key, index: 0, offset: 0, size: chunk.size, checksum: 'c'.repeat(32), node: nodes[0]!, path: copies[0]!.location, copies, attempts: 1, movedFrom: [], skipped };
}

function entries(): unknown[] {
  return [...spill.manifestEntries()].map((raw) => JSON.parse(raw.text) as unknown);
}

describe('a run spill', () => {
  it('counts a chunk recorded again (moved off a failed node) once, as it now is', () => {
    const a = planned('a.bin', 100);
    const b = planned('b.bin', 30);
    spill.record(0, delivered(a, ['n1', 'n2']), a);
    spill.record(1, delivered(b, ['n2'], true), b);
    spill.record(0, { ...delivered(a, ['n1', 'n3']), movedFrom: ['n2'] }, a);

    expect(spill.totals.chunks).toBe(2);
    expect(spill.totals.bytes).toBe(130);
    expect(spill.totals.skipped).toBe(1);
    expect(Object.fromEntries(spill.totals.held)).toEqual({ n1: { chunks: 1, bytes: 100 }, n2: { chunks: 1, bytes: 30 }, n3: { chunks: 1, bytes: 100 } });
    expect(entries()).toEqual([{ ...delivered(a, ['n1', 'n3']), movedFrom: ['n2'] }, delivered(b, ['n2'], true)]);
    expect(spill.chunk(0)?.copies.map((c) => c.nodeId)).toEqual(['n1', 'n3']);
    expect(spill.plannedChunk(0)).toEqual(a);
  });

  it("writes a shard's manifest entry without its members, and keeps them to send it again", () => {
    const objects = [
      { key: 'small/1.json', size: 10, etag: '10-1-1' },
      { key: 'small/2.json', size: 700, etag: '700-1-2' },
    ];
    const [shard] = shardChunks([layout(objects, 0)]);
    const done = withMembers(delivered(shard!, ['n1']), shard!.shard!, ['d'.repeat(32), 'e'.repeat(32)]);
    spill.record(0, done, shard!);

    const { members, ...entry } = done;
    expect(entries()).toEqual([entry]);
    expect(spill.chunk(0)).toEqual(done);
    expect(members).toHaveLength(2);
    const again = spill.plannedChunk(0);
    expect(again?.id).toBe(shard!.id);
    expect(again?.size).toBe(shard!.size);
    expect(again?.shard?.members.map((m) => [m.object.key, m.offset])).toEqual(shard!.shard!.members.map((m) => [m.object.key, m.offset]));
  });
});
