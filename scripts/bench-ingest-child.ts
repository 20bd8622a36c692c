// One ingest in a fresh process, so its peak RSS is its own. Prints a JSON line.
import { loadConfig } from '../electron/engine/config.ts';
import { runIngest } from '../electron/engine/ingest.ts';

const configPath = process.argv[2];
if (!configPath) throw new Error('usage: bench-ingest-child.ts CONFIG');
const loaded = await loadConfig(configPath);
const started = performance.now();
const { manifest } = await runIngest({ loaded, detection: { cloud: 'local', signal: 'flag', detail: 'bench', elapsedMs: 0, probes: [] } });
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`${JSON.stringify({ seconds, bytes: manifest.totals.bytes, status: manifest.status, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
