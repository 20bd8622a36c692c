// The launchers (bin/cloud-ingest.js, scripts/with-node22.js) re-run the command under Node 22 when the machine's
// Node is older. The PID a user holds is the launcher's: a signal sent to it must reach the agent behind it, and a
// launcher killed outright must not leave an agent serving with parent PID 1. Run under the machine's own old Node,
// so the launcher really re-executes.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isNodeNewEnough } from '../../bin/node22.js';
import { CLI, REPO_ROOT } from '../helpers/agents.ts';
import { removeTempDirs, tempDir } from '../helpers/temp.ts';
import { until } from '../helpers/until.ts';

const OLD_NODE = process.env.CLOUD_INGEST_OLD_NODE ?? '/usr/bin/node';
const WITH_NODE22 = join(REPO_ROOT, 'scripts', 'with-node22.js');
const CLI_MAIN = join(REPO_ROOT, 'electron', 'cli', 'main.ts');

/** Every process this file started, killed by PID when it ends (agents a broken launcher left behind included). */
const started = new Set<number>();

afterAll(async () => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await removeTempDirs();
});

function oldNodeVersion(): string | undefined {
  try {
    return execFileSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).trim().replace(/^v/, '');
  } catch {
    return undefined;
  }
}

/** PIDs whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** Gone, or a zombie nobody has reaped yet (it serves nothing). */
function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface LaunchedAgent {
  launcher: ChildProcess;
  port: number;
  agentPid: number;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `<old node> <launcher...> agent --port 0 ...`; resolves once the agent listens, with the PID of the process behind the launcher. */
async function launchAgent(launcher: string[], options: { ownGroup?: boolean } = {}): Promise<LaunchedAgent> {
  const dir = await tempDir('ci-launcher-');
  const proc = spawn(OLD_NODE, [...launcher, 'agent', '--port', '0', '--dir', dir, '--insecure-no-auth'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownGroup === true,
  });
  started.add(proc.pid!);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  await until(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out) || gone, 'the agent to listen', 30_000);
  const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  expect(port, `the agent did not start\nstdout: ${out}\nstderr: ${err}`).toBeGreaterThan(0);
  const behind = childrenOf(proc.pid!);
  expect(behind, 'the launcher runs the command in one child process (Node 22)').toHaveLength(1);
  const agentPid = behind[0]!;
  started.add(agentPid);
  expect(await portAccepts(port)).toBe(true);
  return { launcher: proc, port, agentPid, stderr: () => err, exited };
}

async function expectAgentStopped(agent: LaunchedAgent): Promise<void> {
  await until(() => isGone(agent.agentPid), `the agent (PID ${agent.agentPid}) to exit after its launcher`, 20_000, 50).catch(() => undefined);
  const open = await portAccepts(agent.port);
  expect(isGone(agent.agentPid), `the agent behind the launcher is still running (PID ${agent.agentPid}, parent ${readParent(agent.agentPid)})`).toBe(true);
  expect(open, `port ${agent.port} still accepts connections`).toBe(false);
}

function readParent(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '?';
  } catch {
    return 'gone';
  }
}

const LAUNCHERS: [string, string[]][] = [
  ['bin/cloud-ingest.js', [CLI]],
  ['scripts/with-node22.js', [WITH_NODE22, CLI_MAIN]],
];

describe('launchers under an older Node', () => {
  it(`the machine's ${OLD_NODE} is older than 22.18, so the launchers re-execute (the cases below need that)`, () => {
    const version = oldNodeVersion();
    expect(version, `no Node at ${OLD_NODE}: set CLOUD_INGEST_OLD_NODE to a Node older than 22.18`).toBeDefined();
    expect(isNodeNewEnough(version), `${OLD_NODE} is ${version}: set CLOUD_INGEST_OLD_NODE to a Node older than 22.18`).toBe(false);
  });

  for (const [name, launcher] of LAUNCHERS) {
    it(`${name}: SIGTERM to the launcher stops the agent gracefully and the launcher exits with its status`, async () => {
      const agent = await launchAgent(launcher);
      process.kill(agent.launcher.pid!, 'SIGTERM');
      expect(await agent.exited).toEqual({ code: 0, signal: null });
      await expectAgentStopped(agent);
    });

    it(`${name}: SIGKILL to the launcher leaves no agent serving`, async () => {
      const agent = await launchAgent(launcher);
      process.kill(agent.launcher.pid!, 'SIGKILL');
      expect(await agent.exited).toEqual({ code: null, signal: 'SIGKILL' });
      await expectAgentStopped(agent);
    });
  }

  it('bin/cloud-ingest.js: SIGHUP is passed on, and the launcher dies of the signal that ended the agent', async () => {
    const agent = await launchAgent([CLI]);
    process.kill(agent.launcher.pid!, 'SIGHUP');
    expect(await agent.exited).toEqual({ code: null, signal: 'SIGHUP' });
    await expectAgentStopped(agent);
  });

  it('bin/cloud-ingest.js: Ctrl-C (SIGINT to the whole process group) reaches the agent once: it stops gracefully, exit 0', async () => {
    const agent = await launchAgent([CLI], { ownGroup: true });
    process.kill(-agent.launcher.pid!, 'SIGINT');
    const result = await agent.exited;
    expect(agent.stderr()).not.toMatch(/again; exiting now/);
    expect(result).toEqual({ code: 0, signal: null });
    await expectAgentStopped(agent);
  });
});
