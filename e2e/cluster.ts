// Pull mode for the app's end-to-end tests: a real `nats-server -js` on loopback (a free port, its store in a temp
// folder) and real node agent processes started with --nats and --id, each in its own process group.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { node22, ROOT, stopProcessGroup } from './fixtures.ts';

export const NATS_SERVER_BIN = process.env.CLOUD_INGEST_NATS_SERVER ?? '/usr/sbin/nats-server';

export interface Started {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `command` in its own process group and resolves once `ready` matches its output (stdout and stderr). */
function startUntil(command: string, args: string[], ready: RegExp, what: string, env: NodeJS.ProcessEnv = process.env): Promise<Started & { match: RegExpExecArray }> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 30 s:\n${out}`)), 30_000);
    const onData = (d: Buffer): void => {
      out = (out + d.toString()).slice(-20_000);
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, output: () => out, stop: () => stopProcessGroup(child) });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${out}`));
    });
  });
}

export async function startNats(storeDir: string): Promise<Started & { url: string }> {
  if (!existsSync(NATS_SERVER_BIN)) throw new Error(`${NATS_SERVER_BIN} is missing: run .ci/install-emulators.sh (apt-get install -y nats-server)`);
  mkdirSync(storeDir, { recursive: true });
  const started = await startUntil(NATS_SERVER_BIN, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', '-1'], /Listening for client connections on 127\.0\.0\.1:(\d+)[\s\S]*Server is ready/, 'nats-server');
  return { ...started, url: `nats://127.0.0.1:${started.match[1]}` };
}

export interface Worker extends Started {
  id: string;
  url: string;
  dir: string;
  tokenEnv: string;
  token: string;
  /** SIGKILL to the agent itself, as a machine that dies. */
  kill(): Promise<void>;
}

/** A node agent that also pulls its own work items from NATS (`--nats URL --id ID`). */
export async function startWorker(id: string, dir: string, natsUrl: string): Promise<Worker> {
  mkdirSync(dir, { recursive: true });
  const tokenEnv = `E2E_TOKEN_${id.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
  const token = randomBytes(24).toString('hex');
  const args = [join(ROOT, 'bin/cloud-ingest.js'), 'agent', '--port', '0', '--dir', dir, '--token-env', tokenEnv, '--nats', natsUrl, '--id', id];
  const started = await startUntil(node22(), args, /listening on (http:\/\/\S+)/, `agent ${id}`, { ...process.env, [tokenEnv]: token });
  const exited = new Promise<void>((resolve) => {
    if (started.child.exitCode !== null || started.child.signalCode !== null) resolve();
    else started.child.once('exit', () => resolve());
  });
  return {
    ...started,
    id,
    url: started.match[1]!,
    dir,
    tokenEnv,
    token,
    async kill() {
      try {
        process.kill(-started.child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    },
  };
}
