// The pull worker inside a real agent process (`cloud-ingest agent --nats --id`) keeps its chunks straight in the
// agent's store: no upload to itself over loopback HTTP(S). So an agent serving HTTPS with a certificate Node does
// not trust (no NODE_EXTRA_CA_CERTS) still stores what it pulls, and the agent serves those chunks afterwards.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredResult } from '../../shared/cluster/contract.ts';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { CLI, newToken } from '../helpers/agents.ts';
import { startNatsServer, stopNatsServers } from '../helpers/nats.ts';
import type { NatsServer } from '../helpers/nats.ts';
import { makeTestPki } from '../helpers/pki.ts';
import type { TestPki } from '../helpers/pki.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { ManualCoordinator, MiB, itemsFor, localSource, md5Range } from './harness.ts';

let nats: NatsServer;
let pki: TestPki;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  pki = await makeTestPki('worker');
}, 60_000);

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await stopNatsServers();
  await removeTempDirs();
});

/** `cloud-ingest agent` over HTTPS that also pulls for `nodeId`; NODE_EXTRA_CA_CERTS is left unset on purpose. */
async function httpsPullAgent(nodeId: string): Promise<{ url: string; token: string; stderr: () => string }> {
  const dir = await tempDir('ci-worker-agent-');
  const token = newToken();
  const env: NodeJS.ProcessEnv = { ...process.env, WORKER_TLS_TOKEN: token };
  delete env.NODE_EXTRA_CA_CERTS;
  const args = ['agent', '--port', '0', '--dir', dir, '--token-env', 'WORKER_TLS_TOKEN', '--tls-cert', pki.cert, '--tls-key', pki.key, '--nats', nats.url, '--id', nodeId];
  const proc = spawn(process.execPath, [...ENGINE_NODE_FLAGS, CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  stops.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start pulling\n${out}\n${err}`)), 30_000);
    proc.stdout.on('data', () => {
      const m = /listening on (https:\/\/\S+)/.exec(out);
      if (m && /pulling work items/.test(out)) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(() => reject(new Error(`agent exited\n${out}\n${err}`)));
  });
  return { url, token, stderr: () => err };
}

function get(url: string, token: string, ca: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
      })
      .on('error', reject);
  });
}

describe('pull worker inside the agent process', () => {
  it('stores straight into its agent\'s store: an HTTPS agent whose certificate Node does not trust still keeps what it pulls', async () => {
    const agent = await httpsPullAgent('tls-w1');
    const source = await localSource([{ key: 'tls-pull.bin', bytes: 2 * MiB + 99 }]);
    const coordinator = await ManualCoordinator.open(nats.url, ['tls-w1'], { ack_wait_seconds: 5, max_deliver: 2 });
    stops.push(() => coordinator.close());
    const items = itemsFor('run-tls', source.dir, source.files, MiB, 'tls-w1');
    for (const item of items) await coordinator.publish(item);
    const results = await coordinator.results('run-tls', (r) => r.length >= items.length, 60_000);
    expect(results.map((r) => r.status), JSON.stringify(results)).toEqual(items.map(() => 'stored'));

    const ca = await readFile(pki.ca);
    for (const item of items) {
      const want = await md5Range(source.files[0]!.path, item.offset, item.size);
      expect((results.find((r) => r.chunkId === item.chunkId) as StoredResult).checksum.hex).toBe(want);
      const served = await get(`${agent.url}/v1/chunks/${encodeURIComponent(item.chunkId)}`, agent.token, ca);
      expect(served.status).toBe(200);
      expect(createHash('md5').update(served.body).digest('hex')).toBe(want);
    }
    // Each chunk written once, by the worker, into the store (not an upload the agent's HTTP server received).
    const stored = agent
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'chunk stored');
    expect(stored.map((l) => [l.id, l.status, l.via]).sort()).toEqual(items.map((i) => [i.chunkId, 'created', 'pull']).sort());
  }, 120_000);
});
