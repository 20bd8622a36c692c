// A real `nats-server -js` for tests and benchmarks: loopback, a free port, its JetStream store in a temp folder
// (file storage, so a restart keeps streams, consumers and messages). Stop and restart keep the same port and store.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './emulators.ts';
import { tempDir } from './temp.ts';

/** Debian's package (`apt-get install -y nats-server`, see .ci/install-emulators.sh); not on every shell's PATH. */
export const NATS_SERVER_BIN = process.env.CLOUD_INGEST_NATS_SERVER ?? '/usr/sbin/nats-server';

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  pid(): number | undefined;
  /** Stops the server (SIGTERM, SIGKILL after 5 s), keeping its store. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  start(): Promise<void>;
  /** Kills the server with SIGKILL, keeping its store. */
  kill(): Promise<void>;
  output(): string;
}

const live = new Set<ChildProcess>();

export async function startNatsServer(): Promise<NatsServer> {
  if (!existsSync(NATS_SERVER_BIN)) throw new Error(`${NATS_SERVER_BIN} is missing: run .ci/install-emulators.sh (apt-get install -y nats-server)`);
  const storeDir = await tempDir('ci-nats-');
  const port = await freePort();
  let child: ChildProcess | undefined;
  let out = '';

  const start = async (): Promise<void> => {
    const proc = spawn(NATS_SERVER_BIN, ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const keep = (d: Buffer): void => void (out = (out + d.toString()).slice(-8000));
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    const started = Date.now();
    // Ready once it accepts connections and says JetStream is up (it logs "Server is ready").
    while (!/Server is ready/.test(out) || !(await accepts(port))) {
      if (proc.exitCode !== null) throw new Error(`nats-server exited with code ${proc.exitCode}:\n${out}`);
      if (Date.now() - started > 20_000) throw new Error(`nats-server did not start within 20 s:\n${out}`);
      await sleep(25);
    }
  };

  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((res) => proc.once('exit', () => res()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    out = '';
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    pid: () => child?.pid,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
    start,
    output: () => out,
  };
}

/** Kills every nats-server this process started; call from afterAll (before removing temp folders). */
export async function stopNatsServers(): Promise<void> {
  await Promise.all(
    [...live].map(
      (proc) =>
        new Promise<void>((res) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return res();
          proc.once('exit', () => res());
          proc.kill('SIGKILL');
        }),
    ),
  );
}

function accepts(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      res(true);
    });
    socket.once('error', () => res(false));
  });
}
