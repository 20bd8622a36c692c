// `npm test` needs the Python emulators (gcp-storage-emulator, moto, in .venv, with webdataset for reading shards), Debian's nats-server, fincore (util-linux-extra: page-cache residency), script (bsdutils: a terminal for the CLI's live lines) and Chromium. Installs them on first run when it can
// (root on Debian), or says exactly what to run. CI installs them in .ci/run before this is reached.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const steps = [
  { ready: () => existsSync('.venv/bin/gcp-storage-emulator') && existsSync('.venv/bin/moto_server') && hasWebdataset() && existsSync('/usr/sbin/nats-server') && existsSync('/usr/bin/fincore') && existsSync('/usr/bin/script'), script: '.ci/install-emulators.sh', what: 'the storage emulators, nats-server, fincore and script' },
  { ready: () => existsSync('/usr/bin/chromium'), script: '.ci/install-browser.sh', what: "Debian's Chromium" },
];

/** The packed-shard tests read shards with the webdataset package, in .venv beside the emulators. */
function hasWebdataset() {
  return existsSync('.venv/bin/python') && spawnSync('.venv/bin/python', ['-c', 'import webdataset'], { stdio: 'ignore' }).status === 0;
}

for (const step of steps) {
  if (step.ready()) continue;
  if (process.getuid?.() !== 0) {
    process.stderr.write(`npm test needs ${step.what}. Fix: run \`sudo bash ${step.script}\` once, then npm test again.\n`);
    process.exit(1);
  }
  process.stderr.write(`Installing ${step.what} (first run): bash ${step.script}\n`);
  const result = spawnSync('bash', [step.script], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
