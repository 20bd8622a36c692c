// HTTPS for the node agent (--tls-cert/--tls-key) and the refusal to serve plain HTTP beyond loopback, with a CA and
// a server certificate made by openssl for the test and real agent processes.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { CLI, cleanupAgents, newToken, runCli } from '../helpers/agents.ts';
import { makeTestPki } from '../helpers/pki.ts';
import type { TestPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/temp.ts';
import { md5 } from './helpers.ts';
import { makeProject, makeSource } from './project.ts';

interface Started {
  url: string;
  dir: string;
  token: string;
  stdout(): string;
  stderr(): string;
  stop(): Promise<void>;
}

const running = new Set<Started>();
let pki: TestPki;

beforeAll(async () => {
  pki = await makeTestPki('agent');
});

afterAll(async () => {
  for (const agent of running) await agent.stop();
  await cleanupAgents();
});

/** `cloud-ingest agent ...args` with a fresh folder and token; resolves once it prints the URL it listens on. */
async function startAgent(args: string[]): Promise<Started> {
  const dir = await tempDir('ci-agent-');
  const token = newToken();
  const proc = spawn(process.execPath, [...ENGINE_NODE_FLAGS, CLI, 'agent', '--port', '0', '--dir', dir, '--token-env', 'TLS_TOKEN', ...args], {
    env: { ...process.env, TLS_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start\n${out}\n${err}`)), 20_000);
    proc.stdout.on('data', () => {
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(() => reject(new Error(`agent exited before listening\n${out}\n${err}`)));
  });
  const started: Started = {
    url,
    dir,
    token,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      running.delete(started);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  running.add(started);
  return started;
}

function request(url: string, options: https.RequestOptions & { body?: Buffer; trailers?: Record<string, string> } = {}): Promise<{ status: number; body: string; encrypted: boolean }> {
  const transport = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, { agent: false, ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, encrypted: 'encrypted' in res.socket && res.socket.encrypted === true }));
    });
    req.on('error', reject);
    if (options.body) req.write(options.body);
    if (options.trailers) req.addTrailers(options.trailers);
    req.end();
  });
}

describe('HTTPS', () => {
  it('serves chunks over TLS with --tls-cert and --tls-key', async () => {
    const agent = await startAgent(['--tls-cert', pki.cert, '--tls-key', pki.key]);
    expect(agent.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = await readFile(pki.ca);
    const auth = { authorization: `Bearer ${agent.token}` };
    const health = await request(`${agent.url}/v1/health`, { ca, headers: auth });
    expect(health).toMatchObject({ status: 200, encrypted: true });

    const bytes = randomBytes(256 * 1024);
    const put = await request(`${agent.url}/v1/chunks/tls_chunk_0`, {
      ca,
      method: 'PUT',
      headers: { ...auth, 'x-chunk-size': String(bytes.length), 'x-chunk-algorithm': 'md5', trailer: 'x-chunk-checksum' },
      body: bytes,
      trailers: { 'x-chunk-checksum': md5(bytes) },
    });
    expect(put.status).toBe(201);

    // Without the CA the certificate is not trusted; plain HTTP gets no HTTP answer.
    await expect(request(`${agent.url}/v1/health`, { headers: auth })).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
    await expect(request(`${agent.url.replace('https:', 'http:')}/v1/health`, { headers: auth })).rejects.toThrow();
    await agent.stop();
  });

  it('the engine reaches an HTTPS agent when NODE_EXTRA_CA_CERTS names the CA', async () => {
    const agent = await startAgent(['--tls-cert', pki.cert, '--tls-key', pki.key]);
    const source = await makeSource([{ name: 'tls.bin', bytes: 3 * 1024 * 1024 }]);
    const loaded = await makeProject({ source: source.dir, nodes: [{ id: 'tls-1', url: agent.url, token_env: 'TLS1_TOKEN' }], chunkMb: 1 });
    const env = { TLS1_TOKEN: agent.token, NODE_EXTRA_CA_CERTS: pki.ca };
    const nodes = await runCli(['nodes', '--config', loaded.path, '--json'], env);
    expect(nodes.code).toBe(0);
    expect(JSON.stringify(JSON.parse(nodes.stdout))).toMatch(/"state":"healthy"/);
    const run = await runCli(['run', '--config', loaded.path, '--cloud', 'local', '--json'], env, 60_000);
    expect(run.code, run.stderr).toBe(0);
    const listed = await request(`${agent.url}/v1/chunks`, { ca: await readFile(pki.ca), headers: { authorization: `Bearer ${agent.token}` } });
    expect((JSON.parse(listed.body) as { chunks: { id: string }[] }).chunks.map((c) => c.id).sort()).toEqual(['tls.bin_chunk_0', 'tls.bin_chunk_1', 'tls.bin_chunk_2']);

    const untrusted = await runCli(['nodes', '--config', loaded.path, '--json'], { TLS1_TOKEN: agent.token, NODE_EXTRA_CA_CERTS: '' });
    expect(untrusted.code).toBe(3);
    await agent.stop();
  });

  it('refuses a certificate without its key, an unreadable file and a key that does not match', async () => {
    const dir = await tempDir('ci-agent-');
    const env = { T_TOKEN: newToken() };
    const base = ['agent', '--port', '0', '--dir', dir, '--token-env', 'T_TOKEN'];
    const onlyCert = await runCli([...base, '--tls-cert', pki.cert], env);
    expect(onlyCert.code).toBe(2);
    expect(onlyCert.stderr).toMatch(/--tls-cert and --tls-key go together/);
    const missing = await runCli([...base, '--tls-cert', pki.cert, '--tls-key', join(dir, 'nope.key')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`--tls-key ${join(dir, 'nope.key')}`);
    const mismatch = await runCli([...base, '--tls-cert', pki.cert, '--tls-key', pki.otherKey], env);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/--tls-cert.*--tls-key.*(do not match|key values mismatch)/);
  });
});

describe('binding beyond loopback', () => {
  it('is refused over plain HTTP (exit 2, nothing bound) unless --insecure is given', async () => {
    const dir = await tempDir('ci-agent-');
    const env = { H_TOKEN: newToken() };
    const refused = await runCli(['agent', '--port', '0', '--dir', dir, '--token-env', 'H_TOKEN', '--host', '0.0.0.0'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/refusing to serve plain HTTP on 0\.0\.0\.0/);
    expect(refused.stderr).toMatch(/--tls-cert FILE --tls-key FILE/);
    expect(refused.stderr).toMatch(/--insecure/);
    expect(refused.stdout).not.toMatch(/listening/);

    for (const host of ['127.0.0.1', 'localhost', '::1']) {
      const ok = await startAgent(['--host', host]);
      expect(ok.url).toMatch(/^http:/);
      await ok.stop();
    }
    const insecure = await startAgent(['--host', '0.0.0.0', '--insecure']);
    expect(insecure.stderr()).toMatch(/WARNING.*--insecure.*plain HTTP/);
    await insecure.stop();
    const tls = await startAgent(['--host', '0.0.0.0', '--tls-cert', pki.cert, '--tls-key', pki.key]);
    expect(tls.url).toMatch(/^https:/);
    await tls.stop();
  });
});
