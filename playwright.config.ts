// End-to-end tests of the app. `serve` drives Debian's Chromium (/usr/bin/chromium; Playwright never downloads a
// browser) against `npm run serve`; `electron` runs the same specs against the Electron app when
// ELECTRON_OVERRIDE_DIST_PATH points at an Electron build, and is skipped otherwise.
import { defineConfig } from '@playwright/test';
import type { AppMode } from './e2e/fixtures.ts';

export default defineConfig<{ mode: AppMode }>({
  testDir: 'e2e',
  outputDir: 'e2e/results',
  globalSetup: './e2e/global-setup.ts',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 20_000 },
  reporter: [['list']],
  use: { trace: 'off', screenshot: 'off', viewport: { width: 1400, height: 900 } },
  projects: [
    { name: 'serve', use: { mode: 'serve' } },
    { name: 'electron', use: { mode: 'electron' }, testIgnore: ['security.spec.ts'] },
  ],
});
