// The pull-mode wire contract: what each end accepts, and that every refusal names the field.
import { describe, expect, it } from 'vitest';
import { consumerName, subjectToken, workFilter, workMessageId, workSubject } from '../../shared/cluster/contract.ts';
import type { StoredResult, WorkItem } from '../../shared/cluster/contract.ts';
import { ContractError, decode, encode, workItem, workResult, workerHeartbeat, workProgress, MAX_MESSAGE_BYTES } from '../../shared/cluster/validators.ts';

const ITEM: WorkItem = {
  v: 1,
  runId: '2025-01-02T03-04-05-678Z-a1b2c3',
  chunkId: 'images/a b.bin_chunk_3',
  key: 'images/a b.bin',
  index: 3,
  offset: 3 * 1048576,
  size: 1000,
  objectSize: 3 * 1048576 + 1000,
  etag: '"9bb58f26192e4ba00f01e2e7b136bbd8"',
  nodeId: 'worker.1',
  targets: ['worker.1', 'worker-2'],
  checksum: 'md5',
  crc: 'crc32c',
  store: { kind: 's3', bucket: 'ml-data', region: 'us-east-1', endpoint: 'http://127.0.0.1:4568' },
};

const STORED: StoredResult = {
  v: 1,
  runId: ITEM.runId,
  chunkId: ITEM.chunkId,
  nodeId: 'worker.1',
  delivery: 2,
  at: '2025-01-02T03:04:06.001Z',
  status: 'stored',
  size: 1000,
  checksum: { algorithm: 'md5', hex: '0123456789abcdef0123456789abcdef' },
  crc: { kind: 'crc32c', value: 4294967295 },
  location: '/v1/chunks/images%2Fa%20b.bin_chunk_3',
  bytesRead: 1000,
  elapsedMs: 12,
};

function refused(check: () => unknown): string {
  try {
    check();
  } catch (error) {
    expect(error).toBeInstanceOf(ContractError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe('work items', () => {
  it('round-trip through encode and decode unchanged', () => {
    const bytes = encode(workItem, ITEM, 'item');
    expect(decode(workItem, bytes, 'item')).toEqual(ITEM);
    for (const store of [{ kind: 'local', path: '/data/source' }, { kind: 'gcs', bucket: 'b' }, { kind: 'azure', container: 'c', endpoint: 'http://127.0.0.1:1/devstoreaccount1' }] as const) {
      expect(decode(workItem, encode(workItem, { ...ITEM, store }, 'item'), 'item').store).toEqual(store);
    }
  });

  it('refuse what a worker must not act on, naming the field', () => {
    const bad = (patch: Record<string, unknown>) => refused(() => decode(workItem, JSON.stringify({ ...ITEM, ...patch }), 'item'));
    expect(bad({ size: -1 })).toBe('item.size: expected a whole number of at least 0, got number');
    expect(bad({ offset: 1.5 })).toContain('item.offset');
    expect(bad({ size: ITEM.objectSize })).toContain("past the object's");
    expect(bad({ checksum: 'crc64' })).toBe('item.checksum: expected one of md5, sha256, crc32c');
    expect(bad({ nodeId: '../etc' })).toContain('item.nodeId');
    expect(bad({ targets: ['worker-2'] })).toContain('does not name the item');
    expect(bad({ store: { kind: 'local', path: 'relative/dir' } })).toContain('item.store.path: expected an absolute path');
    expect(bad({ store: { kind: 's3', bucket: 'b', secretAccessKey: 'x' } })).toBe('item.store: unknown field "secretAccessKey"');
    expect(bad({ store: { kind: 'ftp' } })).toContain('item.store.kind');
    expect(bad({ v: 2 })).toContain('item.v: expected 1');
    expect(bad({ extra: true })).toBe('item: unknown field "extra"');
    expect(bad({ chunkId: 'a\nb' })).toContain('item.chunkId');
    expect(refused(() => decode(workItem, '{"v":1,', 'item'))).toBe('item: not UTF-8 JSON');
    expect(refused(() => decode(workItem, new Uint8Array([0x7b, 0xff, 0x7d]), 'item'))).toBe('item: not UTF-8 JSON');
    expect(refused(() => decode(workItem, 'x'.repeat(MAX_MESSAGE_BYTES + 1), 'item'))).toContain('more than');
    expect(refused(() => decode(workItem, '[]', 'item'))).toBe('item: expected an object, got array');
  });

  it('are refused before sending, too', () => {
    expect(refused(() => encode(workItem, { ...ITEM, index: -1 }, 'item'))).toContain('item.index');
  });
});

describe('results, heartbeats and progress', () => {
  it('a stored result and a failed one', () => {
    expect(decode(workResult, JSON.stringify(STORED), 'result')).toEqual(STORED);
    const failed = { v: 1, runId: ITEM.runId, chunkId: ITEM.chunkId, nodeId: 'worker.1', delivery: 1, at: STORED.at, status: 'failed', code: 'precondition_failed', reason: 'the object changed' };
    expect(decode(workResult, JSON.stringify(failed), 'result')).toEqual(failed);
    expect(refused(() => decode(workResult, JSON.stringify({ ...failed, checksum: STORED.checksum }), 'result'))).toBe('result: unknown field "checksum"');
    expect(refused(() => decode(workResult, JSON.stringify({ ...STORED, checksum: { algorithm: 'sha256', hex: STORED.checksum.hex } }), 'result'))).toContain('a sha256 digest has 64 hex digits');
    expect(refused(() => decode(workResult, JSON.stringify({ ...STORED, crc: { kind: 'crc32c', value: 2 ** 32 } }), 'result'))).toContain('32-bit');
    expect(refused(() => decode(workResult, JSON.stringify({ ...STORED, delivery: 0 }), 'result'))).toContain('result.delivery');
    expect(refused(() => decode(workResult, JSON.stringify({ ...STORED, status: 'maybe' }), 'result'))).toContain('result.status');
  });

  it('heartbeats and progress notes', () => {
    const beat = { v: 1, nodeId: 'w1', at: STORED.at, startedAt: STORED.at, inFlight: 2, stored: 5, existed: 1, failed: 0, bytesRead: 10, chunkCount: 6, bytesHeld: 60, freeBytes: 1e12 };
    expect(decode(workerHeartbeat, JSON.stringify(beat), 'heartbeat')).toEqual(beat);
    expect(refused(() => decode(workerHeartbeat, JSON.stringify({ ...beat, inFlight: '2' }), 'heartbeat'))).toContain('heartbeat.inFlight');
    const note = { v: 1, runId: ITEM.runId, chunkId: ITEM.chunkId, nodeId: 'w1', delivery: 1, bytes: 4096 };
    expect(decode(workProgress, JSON.stringify(note), 'progress')).toEqual(note);
  });
});

describe('subjects and names', () => {
  it('encode dots and wildcards so every id is one token, and different ids stay different', () => {
    expect(subjectToken('worker.1')).toBe('worker%2E1');
    expect(subjectToken('a*b>c d')).toBe('a%2Ab%3Ec%20d');
    expect(workSubject('run.1', 'n.1')).toBe('cloud-ingest.work.run%2E1.n%2E1');
    expect(workFilter('n.1')).toBe('cloud-ingest.work.*.n%2E1');
    expect(consumerName('w', 'a.b')).not.toBe(consumerName('w', 'a_2Eb'));
    expect(consumerName('w', 'a.b')).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(workMessageId(ITEM, 'a1b2.7.1')).toBe(`${ITEM.runId}|worker.1|${ITEM.chunkId}|a1b2.7.1`);
  });
});
