// The IPC contract's runtime checks: every malformed renderer payload and every unknown channel is refused.
import { describe, expect, it } from 'vitest';
import { EVENT_CHANNELS, eventMethodName, REQUEST_CHANNELS } from '../../shared/ipc/contract.ts';
import { parseRequestFrame, requestValidators, validateRequest, ValidationError } from '../../shared/ipc/validators.ts';
import { checkRequest } from '../../electron/host/host.ts';

describe('request validators', () => {
  it('has a validator for every request channel', () => {
    expect(Object.keys(requestValidators).sort()).toEqual([...REQUEST_CHANNELS].sort());
  });

  it('accepts well-formed payloads', () => {
    expect(validateRequest('loadConfig', {})).toEqual({});
    expect(validateRequest('saveConfig', { text: 'a: 1\n' })).toEqual({ text: 'a: 1\n' });
    expect(validateRequest('detectCloud', { override: null })).toEqual({ override: null });
    expect(validateRequest('detectCloud', { override: 'gcp' })).toEqual({ override: 'gcp' });
    expect(validateRequest('upsertNode', { node: { id: 'n1', path: './x' }, originalId: 'n0' })).toEqual({ node: { id: 'n1', path: './x' }, originalId: 'n0' });
    expect(validateRequest('upsertNode', { node: { id: 'n2', url: 'http://127.0.0.1:7070', token_env: 'N2_TOKEN' } })).toBeTruthy();
    expect(validateRequest('startIngest', { pattern: '**/*.bin' })).toEqual({ pattern: '**/*.bin' });
    expect(validateRequest('startIngest', { resume: '2025-01-02T03-04-05-678Z-a1b2c3' })).toEqual({ resume: '2025-01-02T03-04-05-678Z-a1b2c3' });
    expect(validateRequest('startIngest', { resume: 'r'.repeat(128) })).toEqual({ resume: 'r'.repeat(128) });
    expect(validateRequest('listResumable', {})).toEqual({});
    expect(validateRequest('reassemble', { manifestPath: 'm.json', key: 'a/b.bin', outPath: '/tmp/x' })).toBeTruthy();
    expect(validateRequest('cancelTask', { task: 'verify' })).toEqual({ task: 'verify' });
    expect(validateRequest('cancelTask', { task: 'repair' })).toEqual({ task: 'repair' });
    expect(validateRequest('saveConfig', { text: 'a: 1\n', baseRevision: '0a1b2c3d4e5f6789' })).toEqual({ text: 'a: 1\n', baseRevision: '0a1b2c3d4e5f6789' });
    expect(validateRequest('repair', { manifestPath: 'm.json' })).toEqual({ manifestPath: 'm.json' });
    expect(validateRequest('repair', { manifestPath: 'm.json', chunkIds: ['a.bin_chunk_0'], files: ['a.bin'] })).toEqual({ manifestPath: 'm.json', chunkIds: ['a.bin_chunk_0'], files: ['a.bin'] });
    expect(validateRequest('pickOutputFolder', {})).toEqual({});
    expect(validateRequest('activityDetail', { runId: '2025-01-02T03-04-05-678Z-a1b2c3' })).toBeTruthy();
    expect(validateRequest('manifestChunks', { path: 'm.json', nodeId: 'node-a', start: 0, count: 1_000 })).toEqual({ path: 'm.json', nodeId: 'node-a', start: 0, count: 1_000 });
    expect(validateRequest('manifestChunks', { path: 'm.json', nodeId: 'node-a', start: 999_999, count: 1 })).toBeTruthy();
    expect(validateRequest('locateChunk', { path: 'm.json', nodeId: 'node-a', chunkId: 'a.bin_chunk_3' })).toEqual({ path: 'm.json', nodeId: 'node-a', chunkId: 'a.bin_chunk_3' });
    expect(validateRequest('findFiles', { path: 'm.json', query: '', limit: 100 })).toEqual({ path: 'm.json', query: '', limit: 100 });
  });

  const malformed: [string, unknown, RegExp][] = [
    ['loadConfig', undefined, /expected an object/],
    ['loadConfig', null, /expected an object/],
    ['loadConfig', [], /expected an object, got array/],
    ['loadConfig', { extra: 1 }, /unknown field "extra"/],
    ['saveConfig', {}, /saveConfig.text: required/],
    ['saveConfig', { text: 42 }, /expected a string, got number/],
    ['saveConfig', { text: 'x'.repeat(1024 * 1024 + 1) }, /longer than/],
    ['saveConfig', { text: 'a\0b' }, /NUL/],
    ['saveConfig', { text: 'a', baseRevision: '../x' }, /revision/],
    ['repair', { manifestPath: 'm.json', chunkIds: 'a.bin_chunk_0' }, /repair.chunkIds: expected an array/],
    ['repair', { manifestPath: 'm.json', chunkIds: [7] }, /repair.chunkIds\[0\]: expected a string/],
    ['repair', { manifestPath: 'm.json', files: new Array(10_001).fill('f') }, /more than 10000 items/],
    ['activityDetail', { runId: '../../etc/passwd' }, /run id/],
    ['detectCloud', { override: 'mars' }, /one of aws, gcp, azure, local/],
    ['upsertNode', { node: { id: '../etc', path: './x' } }, /node id/],
    ['upsertNode', { node: { id: 'n', path: './x', url: 'http://127.0.0.1:1' } }, /exactly one of/],
    ['upsertNode', { node: { id: 'n' } }, /exactly one of/],
    ['upsertNode', { node: { id: 'n', url: 'file:///etc/passwd' } }, /http\(s\) URL/],
    ['upsertNode', { node: { id: 'n', url: 'http://h:1', token_env: 'not a name' } }, /environment variable name/],
    ['upsertNode', { node: { id: 'n', path: './x', token: 'secret' } }, /unknown field "token"/],
    ['removeNode', { id: 7 }, /expected a node id/],
    ['startIngest', { pattern: ['*'] }, /expected a string, got array/],
    ['startIngest', { resume: '' }, /startIngest.resume: must not be empty/],
    ['startIngest', { resume: 'r'.repeat(129) }, /startIngest.resume: longer than 128 characters/],
    ['startIngest', { resume: '../../etc/passwd' }, /startIngest.resume: expected a run id/],
    ['startIngest', { resume: 'runs/2025' }, /expected a run id/],
    ['startIngest', { resume: 'C:\\runs' }, /expected a run id/],
    ['startIngest', { resume: 'run id' }, /expected a run id/],
    ['startIngest', { resume: 'run\nid' }, /expected a run id/],
    ['startIngest', { resume: 'run\0' }, /NUL/],
    ['startIngest', { resume: 'rün' }, /expected a run id/],
    ['startIngest', { resume: 42 }, /expected a run id \(letters, digits, ".", "_", "-"\), got number/],
    ['startIngest', { resume: null }, /expected a run id/],
    ['listResumable', { runId: 'x' }, /unknown field "runId"/],
    ['listResumable', null, /expected an object/],
    ['openManifest', { path: '' }, /must not be empty/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: -1, count: 10 }, /manifestChunks\.start: expected a row number, a whole number from 0 to [\d,]+, got -1/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: 2.5, count: 10 }, /manifestChunks\.start: .*got 2\.5/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: '0', count: 10 }, /manifestChunks\.start: .*got a string/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: Number.NaN, count: 10 }, /got NaN/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: 0, count: 0 }, /manifestChunks\.count: expected how many rows, a whole number from 1 to 1,000, got 0/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: 0, count: 1_001 }, /from 1 to 1,000, got 1001/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: 0, count: Infinity }, /got Infinity/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: 0 }, /manifestChunks\.count: required/],
    ['manifestChunks', { path: 'm.json', nodeId: '../x', start: 0, count: 10 }, /node id/],
    ['manifestChunks', { path: 'm.json', nodeId: 'node-a', start: 0, count: 10, chunkId: 'x' }, /unknown field "chunkId"/],
    ['locateChunk', { path: 'm.json', nodeId: 'node-a', chunkId: '' }, /locateChunk\.chunkId: must not be empty/],
    ['findFiles', { path: 'm.json', query: 'x', limit: 0 }, /findFiles\.limit: expected how many keys, a whole number from 1 to 1,000, got 0/],
    ['findFiles', { path: 'm.json', query: 'x'.repeat(1_025), limit: 10 }, /findFiles\.query: longer than 1024/],
    ['findFiles', { path: '', query: 'x', limit: 10 }, /findFiles\.path: must not be empty/],
    ['verify', { manifestPath: 'm.json', nodeId: '' }, /must not be empty/],
    ['reassemble', { manifestPath: 'm.json', key: 'k' }, /outPath: required/],
    ['cancelTask', { task: 'ingest' }, /one of verify, reassemble/],
  ];
  it.each(malformed)('refuses %s with %j', (channel, payload, message) => {
    expect(() => validateRequest(channel, payload)).toThrow(ValidationError);
    expect(() => validateRequest(channel, payload)).toThrow(message);
  });

  it('refuses objects that are not plain (class instances, prototype tricks)', () => {
    class Sneaky {
      text = 'a';
    }
    expect(() => validateRequest('saveConfig', new Sneaky())).toThrow(/plain object/);
    const polluted = JSON.parse('{"__proto__": {"admin": true}, "text": "a"}') as unknown;
    expect(() => validateRequest('saveConfig', polluted)).toThrow(/unknown field "__proto__"/);
  });

  it('refuses unknown channels', () => {
    expect(() => validateRequest('readFile', { path: '/etc/passwd' })).toThrow(/unknown channel "readFile"/);
    expect(() => validateRequest('__proto__', {})).toThrow(/unknown channel/);
    expect(() => validateRequest('toString', {})).toThrow(/unknown channel/);
  });

  it('returns a copy holding only the known fields', () => {
    const input = { node: { id: 'n1', path: './x' } };
    const out = validateRequest('upsertNode', input);
    expect(out).toEqual(input);
    expect(out.node).not.toBe(input.node);
  });
});

describe('host-side check (shared by Electron main and serve mode)', () => {
  it('turns refusals into data the renderer can show', () => {
    expect(checkRequest('nope', {})).toEqual({ ok: false, error: { code: 'unknown_channel', message: 'Unknown channel "nope".' } });
    const bad = checkRequest('saveConfig', { text: 1 });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error).toEqual({ code: 'invalid_request', message: 'Refused: saveConfig.text: expected a string, got number.' });
    expect(checkRequest('loadConfig', {})).toEqual({ ok: true, payload: {} });
  });
});

describe('WebSocket frames', () => {
  it('parses a request frame', () => {
    expect(parseRequestFrame('{"id":1,"channel":"loadConfig","payload":{}}')).toEqual({ id: 1, channel: 'loadConfig', payload: {} });
  });
  it.each([
    ['not json', /not JSON/],
    ['[]', /expected an object/],
    ['{"channel":"loadConfig","payload":{}}', /message.id/],
    ['{"id":-1,"channel":"loadConfig","payload":{}}', /message.id/],
    ['{"id":1.5,"channel":"loadConfig","payload":{}}', /message.id/],
    ['{"id":1,"payload":{}}', /message.channel/],
    ['{"id":1,"channel":"loadConfig","payload":{},"extra":true}', /unknown field "extra"/],
  ])('refuses %s', (raw, message) => {
    expect(() => parseRequestFrame(raw)).toThrow(message);
  });
});

describe('contract surface', () => {
  it('derives one subscription method per event channel', () => {
    expect(EVENT_CHANNELS.map(eventMethodName)).toEqual(['onIngestProgress', 'onTaskProgress', 'onNodeStatus', 'onRepairProgress']);
  });
});
