// Activity for runs the app did not make: a run made with the CLI on the same config is listed with who ran it
// from where (from its manifest) and charted over time (from its journal), beside a run the app made.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { APP_ENV, expect, node22, NODE_IDS, ROOT, shoot, skipElectronWithoutBinary, test, VIEWPORTS } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });
// 64 KiB chunks, two at a time: ~150 chunks, so the runs last long enough to have a shape.
test.use({ ingestion: { chunk_size_mb: 0.0625, max_concurrent_chunks: 2 } });

async function go(page: Page, screen: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: screen }).click();
}

let cliRun = '';

test('a CLI run is listed as "CLI · user@host" and charted from its journal', async ({ page, workspace }, testInfo) => {
  const out = execFileSync(node22(), [join(ROOT, 'bin/cloud-ingest.js'), 'run', '--config', workspace.configPath, '--json'], {
    cwd: workspace.dir,
    env: { ...process.env, ...APP_ENV },
    encoding: 'utf8',
  });
  cliRun = (JSON.parse(out) as { runId: string }).runId;

  await go(page, 'Activity');
  const row = page.getByTestId(`activity-${cliRun}`);
  await expect(row).toContainText('complete');
  await expect(row.getByTestId('ran-by')).toHaveText(`CLI · ${userInfo().username}@${hostname()}`);
  await row.getByRole('button', { name: `Show throughput of ${cliRun}` }).click();
  const chart = page.getByTestId('throughput-chart');
  await expect(chart).toBeVisible();
  await expect(chart).toHaveAttribute('aria-label', new RegExp(`Throughput of ${cliRun} over time, peak \\d`));
  expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId('chart-empty')).toHaveCount(0);
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize(viewport);
    await shoot(page, `activity-cli-${viewport.width}x${viewport.height}`, testInfo.project.name);
  }
  await page.setViewportSize({ width: 1400, height: 900 });
});

test('a run made in the app is listed beside it as "app · user@host", newest first, each with its own chart', async ({ page, workspace }) => {
  // Empty nodes, so the app's run sends every chunk again instead of finding them there.
  for (const id of NODE_IDS) rmSync(workspace.nodeDir(id), { recursive: true, force: true });
  await go(page, 'Ingest');
  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 90_000 });
  await go(page, 'Activity');
  await page.getByRole('button', { name: 'Refresh' }).click();
  const rows = page.getByRole('table', { name: 'Runs' }).locator('tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0).getByTestId('ran-by')).toHaveText(`app · ${userInfo().username}@${hostname()}`);
  await expect(rows.nth(1)).toHaveAttribute('data-testid', `activity-${cliRun}`);
  for (const index of [0, 1]) {
    await rows.nth(index).getByRole('button', { name: /^Show throughput of / }).click();
    await expect(rows.nth(index)).toHaveAttribute('aria-selected', 'true');
    await expect(page.getByTestId('throughput-chart')).toBeVisible();
    expect(Number(await page.getByTestId('throughput-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
  }
});
