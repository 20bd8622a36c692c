// Running a command under another Node as if it were this process: the launchers (bin/cloud-ingest.js,
// scripts/with-node22.js) use `relaunch`; the command started that way stops when its launcher goes (imported
// below, or preloaded with `--import`).
//
// The PID a user holds (`cloud-ingest agent ... &`, a service manager, `kill %1`) is the launcher's, so signals sent
// to it are passed on, and the launcher ends as its child did: its exit code, or dying of the same signal.
// The child runs in its own session (as dumb-init does): a signal sent to the launcher's whole process group (Ctrl-C,
// `kill %1`, a hangup) then reaches the child once, through the launcher, never twice (a second SIGINT or SIGTERM
// means "stop now" to the agent and the CLI). SIGKILL cannot be passed on: the child holds one end of a socket pair
// whose other end only the launcher holds, and when that closes (the launcher is gone, however it died) the child
// sends itself SIGTERM, so it stops as gracefully as a `kill` would have stopped it.
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { withMallocEnv } from './malloc-env.js';

/** Names the child's file descriptor of the socket pair it shares with its launcher. */
const LAUNCHER_FD_ENV = 'CLOUD_INGEST_LAUNCHER_FD';
const LAUNCHER_FD = 3;

/** Passed on to the child as they come. SIGWINCH too: the terminal sends it to the launcher's group only. */
const FORWARDED = /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGWINCH']);

/**
 * Runs `command args` with this process's stdio; passes signals on; exits as the child exits.
 * @param {string} command
 * @param {string[]} args
 */
export function relaunch(command, args) {
  const child = spawn(command, args, {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    detached: true,
    env: withMallocEnv({ ...process.env, [LAUNCHER_FD_ENV]: String(LAUNCHER_FD) }),
  });
  /** @type {Map<string, () => void>} */
  const handlers = new Map();
  const listen = (/** @type {NodeJS.Signals} */ signal, /** @type {() => void} */ handler) => {
    handlers.set(signal, handler);
    process.on(signal, handler);
  };
  for (const signal of FORWARDED) listen(signal, () => sendTo(child.pid, signal));
  // Ctrl-Z stops the launcher's group only: stop the child with it (SIGSTOP, since a stop signal from the terminal
  // is ignored by a process group with no parent in its session), and continue it with `fg`/`bg`.
  listen('SIGTSTP', () => {
    sendTo(child.pid, 'SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  });
  listen('SIGCONT', () => sendTo(child.pid, 'SIGCONT'));

  child.once('error', (error) => {
    process.stderr.write(`cloud-ingest: cannot start ${command}: ${error.message}\n`);
    process.exit(2);
  });
  child.once('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    for (const [name, handler] of handlers) process.off(name, handler);
    process.kill(process.pid, signal);
    // A signal whose default action does not end a process: end with the shell's code for it.
    setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 0)), 1000).unref();
  });
}

/**
 * @param {number | undefined} pid
 * @param {NodeJS.Signals} signal
 */
function sendTo(pid, signal) {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // it has just exited: its 'exit' ends this process
  }
}

/** In a child started by `relaunch`: stop (SIGTERM to itself) when the launcher is gone. */
function exitWithLauncher() {
  const fd = Number(process.env[LAUNCHER_FD_ENV]);
  // Not for this process's own children: they have other file descriptors.
  delete process.env[LAUNCHER_FD_ENV];
  if (fd !== LAUNCHER_FD) return;
  let socket;
  try {
    socket = new Socket({ fd, readable: true, writable: false });
  } catch {
    return;
  }
  let gone = false;
  const launcherGone = () => {
    if (gone) return;
    gone = true;
    process.kill(process.pid, 'SIGTERM');
  };
  socket.on('end', launcherGone).on('close', launcherGone).on('error', launcherGone);
  socket.resume();
  socket.unref();
}

exitWithLauncher();
