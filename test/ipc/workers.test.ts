// The host's view of pull workers, on a real nats-server: heartbeats checked by the contract's validator (a
// malformed one fails only itself), workers the config does not name listed apart, a silent worker marked, no
// NATS URL or a server that does not answer said with a fix, and push mode costing no connection at all.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../electron/engine/config.ts';
import { WorkerWatch } from '../../electron/host/workers.ts';
import { heartbeatSubject } from '../../shared/cluster/contract.ts';
import type { WorkerHeartbeat } from '../../shared/cluster/contract.ts';
import { startNatsServer, stopNatsServers } from '../helpers/nats.ts';
import type { NatsServer } from '../helpers/nats.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';

/** Polls an async check (the view is async) until it holds. */
async function eventually(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let nats: NatsServer;
let nc: NatsConnection;
let dir: string;
const watch = new WorkerWatch();

function config(mode: 'push' | 'pull', natsUrl?: string): string {
  return [
    'data_sources:',
    '  local: { type: "local", path: "./source" }',
    `ingestion: { mode: ${mode} }`,
    ...(natsUrl ? [`cluster: { nats_url: "${natsUrl}", worker_timeout_seconds: 1 }`] : []),
    'nodes:',
    '  - { id: w1, url: "http://127.0.0.1:1", token_env: W1_TOKEN }',
    '  - { id: w2, url: "http://127.0.0.1:2", token_env: W2_TOKEN }',
    '',
  ].join('\n');
}

async function loaded(text: string) {
  const path = join(dir, 'data_sources.yml');
  await writeFile(path, text);
  return loadConfig(path);
}

function beat(nodeId: string, stored: number): WorkerHeartbeat {
  const now = new Date().toISOString();
  return { v: 1, nodeId, at: now, startedAt: now, inFlight: 1, stored, existed: 0, failed: 0, bytesRead: stored * 1024, chunkCount: stored, bytesHeld: stored * 1024, freeBytes: 1e9 };
}

beforeAll(async () => {
  dir = await tempDir('app-workers-');
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
}, 60_000);

afterAll(async () => {
  await watch.close();
  await nc?.close();
  await stopNatsServers();
  await removeTempDirs();
});

describe('pull workers as the Nodes screen sees them', () => {
  it('push mode: no connection, no workers', async () => {
    expect(await watch.view(await loaded(config('push')), {})).toEqual({ mode: 'push', connected: false, timeoutMs: 10_000, workers: [] });
  });

  it('pull mode without a NATS URL says so, with the fix', async () => {
    const view = await watch.view(await loaded(config('pull')), {});
    expect(view.connected).toBe(false);
    expect(view.error).toMatch(/neither cluster\.nats_url .* nor NATS_URL is set\. Fix: set cluster\.nats_url/);
  });

  it('a server that does not answer is said, with the fix, within seconds', async () => {
    const started = Date.now();
    const view = await watch.view(await loaded(config('pull', 'nats://127.0.0.1:9')), {});
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(view).toMatchObject({ mode: 'pull', connected: false, natsUrl: 'nats://127.0.0.1:9' });
    expect(view.error).toMatch(/does not answer .* Fix: start it/);
  });

  it('heartbeats: configured workers first, strangers after, malformed ones refused, silence marked', async () => {
    const cfg = await loaded(config('pull', nats.url));
    const first = await watch.view(cfg, {});
    expect(first).toMatchObject({ mode: 'pull', connected: true, natsUrl: nats.url, timeoutMs: 1000 });
    expect(first.workers).toEqual([
      { nodeId: 'w1', configured: true, alive: false },
      { nodeId: 'w2', configured: true, alive: false },
    ]);
    nc.publish(heartbeatSubject('w1'), JSON.stringify(beat('w1', 5)));
    nc.publish(heartbeatSubject('stranger'), JSON.stringify(beat('stranger', 2)));
    nc.publish(heartbeatSubject('w2'), 'not json');
    nc.publish(heartbeatSubject('w2'), JSON.stringify({ ...beat('w2', 1), stored: -4 }));
    nc.publish(heartbeatSubject('w2'), JSON.stringify({ ...beat('w2', 1), secret: 'x' }));
    await nc.flush();
    await eventually(async () => (await watch.view(cfg, {})).workers.length === 3, 'three workers');
    const view = await watch.view(cfg, {});
    expect(view.workers.map((w) => [w.nodeId, w.configured, w.alive])).toEqual([
      ['w1', true, true],
      ['w2', true, false],
      ['stranger', false, true],
    ]);
    expect(view.workers[0]!.heartbeat).toMatchObject({ stored: 5, inFlight: 1, bytesRead: 5120 });
    expect(view.workers[0]!.silentMs).toBeLessThan(1000);
    expect(watch.refused).toBe(3);
    // No heartbeat for over worker_timeout_seconds (1 s): silent.
    await eventually(async () => (await watch.view(cfg, {})).workers[0]!.alive === false, 'w1 silent');
    expect((await watch.view(cfg, {})).workers[0]!.silentMs).toBeGreaterThan(1000);
  });

  it('going back to push mode closes the connection and forgets what it heard', async () => {
    expect(await watch.view(await loaded(config('push')), {})).toMatchObject({ mode: 'push', workers: [] });
    const again = await watch.view(await loaded(config('pull', nats.url)), {});
    expect(again.workers.every((w) => w.silentMs === undefined)).toBe(true);
  });
});
