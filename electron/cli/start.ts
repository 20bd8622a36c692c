// The CLI's entry (bin/cloud-ingest.js): a command that hashes on the engine's threads starts them before the
// rest of the CLI and the engine load, then runs (main.ts). Idle threads never keep the process up.
import { startHashThreads } from '../engine/threads.ts';

const HASHING_COMMANDS = new Set(['run', 'verify', 'repair', 'reassemble']);

if (HASHING_COMMANDS.has(process.argv[2] ?? '') && !process.argv.includes('--help') && !process.argv.includes('-h')) startHashThreads();
await import('./main.ts');
