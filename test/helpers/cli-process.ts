// The CLI started as a child process in a project folder, for tests that kill it midway: its process, and a promise
// of how it ended with everything it printed.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const CLI = resolve(import.meta.dirname, '..', '..', 'bin', 'cloud-ingest.js');

export interface CliEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function startCli(root: string, args: string[]): { child: ChildProcess; exit: Promise<CliEnd> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: root, env: { ...process.env, CLOUD_PROVIDER: 'local' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<CliEnd>((done) => child.once('exit', (code, signal) => done({ code, signal, stdout, stderr })));
  return { child, exit };
}
