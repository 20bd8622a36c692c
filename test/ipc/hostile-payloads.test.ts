// Payloads from a compromised renderer or a hostile socket client, through the real host (worker thread, real
// files) and the real serve bridge: each bad request fails alone, with a clear error, and the host goes on; no
// request reads or writes outside the manifest folder.
import { copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHost } from '../../electron/host/host.ts';
import type { EngineHost } from '../../electron/host/host.ts';
import { startServe } from '../../electron/serve/serve.ts';
import type { SaveResult, VerifyResult } from '../../shared/ipc/contract.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { ingestToEnd } from './ingest-to-end.ts';

let dir: string;
let outside: string;
let configPath: string;
let manifestPath: string;
let host: EngineHost;

function value<T>(envelope: { ok: boolean; value?: unknown; error?: unknown }): T {
  if (!envelope.ok) throw new Error(`call failed: ${JSON.stringify(envelope.error)}`);
  return envelope.value as T;
}

beforeAll(async () => {
  dir = await tempDir('hostile-');
  outside = await tempDir('hostile-outside-');
  configPath = join(dir, 'data_sources.yml');
  await writeFile(configPath, 'data_sources:\n  local: { type: "local", path: "./source" }\nnodes:\n  - { id: node-a, path: ./nodes/node-a }\n  - { id: node-b, path: ./nodes/node-b }\n');
  await mkdir(join(dir, 'source'));
  for (let i = 0; i < 3; i++) await writeFile(join(dir, 'source', `f${i}.txt`), `file ${i}\n`);
  host = createHost({ configPath, batchMs: 20 });
  manifestPath = await ingestToEnd(host);
});

afterAll(async () => {
  await host?.close();
  await removeTempDirs();
});

describe('hostile payloads through the host', () => {
  it('a verify narrowed to a node id named like an Object member answers alone, and the engine goes on', async () => {
    for (const nodeId of ['constructor', 'toString', 'hasOwnProperty']) {
      const result = value<VerifyResult>(await host.call('verify', { manifestPath, nodeId }));
      expect(result).toMatchObject({ nodeId, checked: 0, ok: 0, problems: [] });
    }
    expect(await host.call('loadConfig', {})).toMatchObject({ ok: true });
  });

  it('refuses a list with holes (Electron IPC keeps them; every item must be checked, not only the ones present)', async () => {
    const holey: unknown[] = [];
    holey[3] = 'f0.txt';
    for (const field of ['chunkIds', 'files'] as const) {
      expect(await host.call('repair', { manifestPath, [field]: holey })).toEqual({
        ok: false,
        error: { code: 'invalid_request', message: `Refused: repair.${field}[0]: expected a string, got undefined.` },
      });
    }
  });

  it('a config save of 100,000 keys (within the 1 MiB the contract takes) is checked in seconds, repeats found', async () => {
    const lines = Array.from({ length: 100_000 }, (_, i) => `k${i}: 1`);
    lines.push('k7: 2');
    const text = `${lines.join('\n')}\n`;
    expect(text.length).toBeLessThan(1024 * 1024);
    const started = Date.now();
    const result = value<SaveResult>(await host.call('saveConfig', { text }));
    // Was over a minute (the YAML parser compared each key with every key before it), with every request waiting.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(result.saved).toBe(false);
    expect(result.snapshot.diagnostics.filter((d) => d.severity === 'error')).toMatchObject([{ line: 100_001, message: 'YAML syntax error: Map keys must be unique' }]);
    expect(await host.call('appInfo', {})).toMatchObject({ ok: true });
  });

  it('refuses a manifest reached through a symlink that leads out of the manifest folder, for reading and for writing', async () => {
    const runs = join(manifestPath, '..');
    await writeFile(join(outside, 'secret.txt'), 'aws_secret_access_key = SECRET\n');
    await copyFile(manifestPath, join(outside, 'copy.json'));
    await symlink(join(outside, 'secret.txt'), join(runs, 'leak.json'));
    await symlink(join(outside, 'copy.json'), join(runs, 'linked.json'));
    await symlink(outside, join(runs, 'out'));
    const before = (await readdir(outside)).sort();
    for (const path of ['leak.json', 'linked.json', 'out/copy.json']) {
      for (const [channel, payload] of [
        ['openManifest', { path }],
        ['findFiles', { path, query: '', limit: 10 }],
        ['manifestChunks', { path, nodeId: 'node-a', start: 0, count: 10 }],
        ['locateChunk', { path, nodeId: 'node-a', chunkId: 'x' }],
        ['verify', { manifestPath: path }],
        ['repair', { manifestPath: path }],
        ['reassemble', { manifestPath: path, key: 'f0.txt', outPath: 'rebuilt/f0.txt' }],
      ] as const) {
        const answer = await host.call(channel, payload);
        expect(answer, `${channel} ${path}`).toMatchObject({ ok: false, error: { code: 'forbidden', message: expect.stringMatching(/is not a manifest in .*Fix: pick a run from the list/) } });
        expect(JSON.stringify(answer)).not.toContain('SECRET');
      }
    }
    expect((await readdir(outside)).sort()).toEqual(before); // repair wrote no next version there
    expect(await host.call('openManifest', { path: manifestPath })).toMatchObject({ ok: true });
  });
});

describe('hostile clients of the serve bridge', () => {
  it('refuses an upgrade request whose target is not a URL, without a token; the server goes on', async () => {
    const distDir = join(dir, 'dist');
    await mkdir(distDir, { recursive: true });
    await writeFile(join(distDir, 'index.html'), '<!doctype html><title>test</title>');
    const served = await startServe({ configPath, distDir });
    const raw = (request: string): Promise<string> =>
      new Promise((resolve) => {
        let answer = '';
        const socket = connect(served.port, '127.0.0.1', () => socket.write(request));
        socket.on('data', (d: Buffer) => {
          answer += d.toString();
          if (answer.includes('\r\n\r\n')) socket.destroy(); // the status and headers are all this test reads
        });
        socket.on('close', () => resolve(answer));
        socket.on('error', () => resolve(answer));
        setTimeout(() => socket.destroy(), 3000).unref();
      });
    const upgrade = (target: string): string =>
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${served.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://127.0.0.1:${served.port}\r\n\r\n`;
    try {
      for (const target of ['http://[oops/api', 'http://%zz/', '//[/']) {
        expect(await raw(upgrade(target)), target).toMatch(/^HTTP\/1\.1 403 /);
      }
      expect(await raw(upgrade(`/${served.token}/api`))).toMatch(/^HTTP\/1\.1 101 /);
    } finally {
      await served.close();
    }
  });
});
