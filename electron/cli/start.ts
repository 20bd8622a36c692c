// The CLI's entry (bin/cloud-ingest.js): a command that hashes on the engine's threads starts them before the
// rest of the CLI and the engine load, then the CLI loads and runs (main.ts). Idle threads never keep the process up.
import { startHashThreads } from '../engine/threads.ts';

const HASHING_COMMANDS = new Set(['run', 'verify', 'repair', 'reassemble']);

/** Runs the command `argv` names; `loaded` is called once the CLI's code is loaded, before the command runs. */
export async function startCli(argv: readonly string[], loaded: () => void = () => {}): Promise<number> {
  if (HASHING_COMMANDS.has(argv[0] ?? '') && !argv.includes('--help') && !argv.includes('-h')) startHashThreads();
  const [{ main }, { quietSdkStreamWarnings }] = await Promise.all([import('./main.ts'), import('./process-warnings.ts')]);
  loaded();
  quietSdkStreamWarnings();
  return main([...argv]);
}
