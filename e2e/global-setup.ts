// Builds what the specs run: the renderer always, the Electron bundles when an Electron build is given.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export default function globalSetup(): void {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  execFileSync(npm, ['run', '--silent', 'build:renderer'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (process.env.ELECTRON_OVERRIDE_DIST_PATH) {
    execFileSync(npm, ['run', '--silent', 'build:electron'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
}
