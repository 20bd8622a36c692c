// npm run faults [-- --trials N --seed S --only kill,flaky,...]
// Runs every fault scenario of issues 6, 12 and 14 (pull mode) against real components with seeded trials, prints the results as
// a markdown table, and exits non-zero if any chunk was lost, duplicated or under-replicated or any check failed.
// `--trials N` sets the kill-and-resume trials (default 20); the other scenarios run a few trials each.
import { parseArgs } from 'node:util';
import { markdownTable, removeTemps } from '../test/faults/harness.ts';
import type { ScenarioRow } from '../test/faults/harness.ts';
import { SCENARIOS } from '../test/faults/scenarios.ts';
import type { ScenarioName } from '../test/faults/scenarios.ts';
import { cleanupAgents } from '../test/helpers/agents.ts';
import { stopNatsServers } from '../test/helpers/nats.ts';

// Never let a cloud SDK probe a real metadata address from here.
process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = 'http://127.0.0.1:9';
process.env.GCE_METADATA_HOST = '127.0.0.1:9';
process.env.AZURE_IMDS_ENDPOINT = 'http://127.0.0.1:9';
process.env.CLOUD_INGEST_DMI_DIR = '/nonexistent-dmi';
delete process.env.CLOUD_PROVIDER;

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    seed: { type: 'string', default: 'faults-1' },
    only: { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});
const killTrials = Number(values.trials);
if (!Number.isInteger(killTrials) || killTrials < 1) {
  process.stderr.write(`--trials must be a whole number of at least 1, got ${values.trials}\n`);
  process.exit(2);
}
const names = (values.only ? values.only.split(',') : Object.keys(SCENARIOS)) as ScenarioName[];
for (const name of names) {
  if (!(name in SCENARIOS)) {
    process.stderr.write(`unknown scenario "${name}"; known: ${Object.keys(SCENARIOS).join(', ')}\n`);
    process.exit(2);
  }
}
const TRIALS: Record<ScenarioName, number> = {
  kill: killTrials,
  flaky: 3,
  corrupt: 3,
  'node-killed': 3,
  'node-back': 1,
  'disk-full': 2,
  slow: 2,
  'agent-kill-r1': 3,
  'agent-kill-r2': 3,
  'hash-thread': 4,
  names: 4,
  'pull-worker-killed': 2,
  'pull-nats-restart': 2,
  'pull-slow': 2,
};
const log = values.quiet ? undefined : (line: string): void => void process.stderr.write(`  ${line}\n`);

const rows: ScenarioRow[] = [];
try {
  for (const name of names) {
    process.stderr.write(`${name}: ${TRIALS[name]} trial(s), seed ${values.seed}\n`);
    const row = await SCENARIOS[name]({ trials: TRIALS[name], seed: values.seed, ...(log ? { log } : {}) });
    rows.push(row);
    for (const note of row.notes) process.stderr.write(`  note: ${note}\n`);
    for (const failure of row.failures) process.stderr.write(`  FAIL: ${failure}\n`);
  }
} finally {
  await stopNatsServers();
  await cleanupAgents();
  await removeTemps();
}

process.stdout.write(`\n${markdownTable(rows)}\n`);
const bad = rows.filter((r) => r.lost > 0 || r.duplicates > 0 || r.underReplicated > 0 || r.failures.length > 0);
if (bad.length > 0) {
  process.stdout.write(`\nFAILED: ${bad.map((r) => `${r.scenario} (${r.lost} lost, ${r.duplicates} duplicates, ${r.underReplicated} under-replicated, ${r.failures.length} failed checks)`).join('; ')}\n`);
  process.exit(1);
}
process.stdout.write(`\nall ${rows.reduce((s, r) => s + r.trials, 0)} trials: nothing lost, nothing duplicated, nothing under-replicated, every file reassembled byte for byte\n`);
