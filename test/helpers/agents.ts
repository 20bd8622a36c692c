// Real node agent processes for tests: `cloud-ingest agent ...` (node with the engine's flags, as the installed
// command runs) on a free loopback port with a temp folder, plus a loopback TCP proxy that can stall, to play a node
// that stops answering.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { removeTempDirs, tempDir } from './temp.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CLI = join(REPO_ROOT, 'bin', 'cloud-ingest.js');

export interface AgentProcess {
  url: string;
  port: number;
  dir: string;
  /** The token the agent requires (undefined with --insecure-no-auth). */
  token: string | undefined;
  /** Name of the environment variable the agent read its token from. */
  tokenEnv: string;
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The options it was started with (see restartAgent). */
  spawnedWith: SpawnAgentOptions;
}

export interface SpawnAgentOptions {
  dir?: string;
  port?: number;
  /** Token to require; null starts the agent with --insecure-no-auth. Default: a fresh random token. */
  token?: string | null;
  tokenEnv?: string;
  maxBytes?: number;
  args?: string[];
}

const live = new Set<AgentProcess>();
export function newToken(): string {
  return randomBytes(24).toString('hex');
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `cloud-ingest ...args` as a child process, as the installed command starts it; resolves with its exit and output, never throws on a non-zero exit. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000, cwd?: string): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete merged.CLOUD_INGEST_DEBUG;
    const proc = spawn(process.execPath, [...ENGINE_NODE_FLAGS, CLI, ...args], { env: merged, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`cloud-ingest ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

export async function spawnAgent(options: SpawnAgentOptions = {}): Promise<AgentProcess> {
  const dir = options.dir ?? (await tempDir('ci-agent-'));
  const tokenEnv = options.tokenEnv ?? 'TEST_AGENT_TOKEN';
  const token = options.token === null ? undefined : (options.token ?? newToken());
  const args = [...ENGINE_NODE_FLAGS, CLI, 'agent', '--port', String(options.port ?? 0), '--dir', dir, '--token-env', tokenEnv];
  if (token === undefined) args.push('--insecure-no-auth');
  if (options.maxBytes !== undefined) args.push('--max-bytes', String(options.maxBytes));
  args.push(...(options.args ?? []));
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env[tokenEnv];
  if (token !== undefined) env[tokenEnv] = token;
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.once('exit', (code, signal) => res({ code, signal })));

  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`agent did not start within 20 s\nstdout: ${out}\nstderr: ${err}`)), 20_000);
    const check = (): void => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        res(m[1]!);
      }
    };
    proc.stdout!.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`agent exited (${code ?? signal}) before listening\nstdout: ${out}\nstderr: ${err}`));
    });
  });
  const agent: AgentProcess = {
    url,
    port: Number(new URL(url).port),
    dir,
    token,
    tokenEnv,
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    spawnedWith: options,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const result = await exited;
      live.delete(agent);
      return result;
    },
  };
  live.add(agent);
  void exited.then(() => live.delete(agent));
  return agent;
}

/** Stops `agent` with `signal` and starts it again with the same folder, port, token and options, as an operator restarting it would. */
export async function restartAgent(agent: AgentProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<AgentProcess> {
  await agent.kill(signal);
  return spawnAgent({ ...agent.spawnedWith, dir: agent.dir, port: agent.port, token: agent.token ?? null, tokenEnv: agent.tokenEnv });
}

/** Kills every agent this file started and removes the temp folders; call from afterAll. */
export async function cleanupAgents(): Promise<void> {
  await Promise.all([...live].map((a) => a.kill('SIGKILL')));
  await removeTempDirs();
}

/** Structured log lines an agent wrote to stderr. */
export function agentLogs(agent: AgentProcess): Record<string, unknown>[] {
  return agent
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface StallProxy {
  url: string;
  port: number;
  /** Stops forwarding in both directions: connections stay open, nothing moves. */
  stall(): void;
  /** Forwards again. */
  resume(): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy in front of `target` that can stop moving bytes, like a node that hangs. */
export async function stallProxy(target: { host?: string; port: number }): Promise<StallProxy> {
  let stalled = false;
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer({ pauseOnConnect: true }, (client) => {
    const upstream = createConnection({ host: target.host ?? '127.0.0.1', port: target.port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    // Forwarded by hand rather than with pipe(): pipe() resumes a paused source on 'drain', which would end a stall.
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (data: Buffer) => {
        if (!to.write(data)) from.pause();
      });
      to.on('drain', () => {
        if (!stalled) from.resume();
      });
      from.on('end', () => to.end());
    };
    forward(client, upstream);
    forward(upstream, client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    if (stalled) {
      client.pause();
      upstream.pause();
    } else client.resume();
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stall() {
      stalled = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    resume() {
      stalled = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    async close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}
