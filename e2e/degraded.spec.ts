// The Ingest screen for a run that ended degraded (issue 13): replicas: 2 on two folder nodes, one made unusable
// mid-run (its folder replaced by a file), so every chunk ends with one copy of two. The screen says so (the
// shortfall: which chunks, copies held and wanted, why) with Repair; once the folder is back, Repair gives every
// chunk its second copy, the manifest is complete and verify passes.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { expect, shoot, skipElectronWithoutBinary, test, VIEWPORTS } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });
// 8 KiB chunks, one at a time, two copies each: 1,152 chunks and 2,304 writes, so the node can fail mid-run.
test.use({ ingestion: { chunk_size_mb: 0.0078125, max_concurrent_chunks: 1, replicas: 2 }, nodeIds: ['node-a', 'node-b'] });

const CHUNKS = 1152;

async function go(page: Page, screen: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: screen }).click();
}

async function chunksDone(page: Page): Promise<number> {
  return Number((await page.getByTestId('chunks-done').innerText()).split('/')[0]);
}

test('a node lost mid-run with replicas: 2 ends the run degraded, with the shortfall named and Repair', async ({ page, workspace }, testInfo) => {
  test.setTimeout(180_000);
  await go(page, 'Ingest');
  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect.poll(() => chunksDone(page), { timeout: 60_000, intervals: [20] }).toBeGreaterThan(20);
  // node-b's folder becomes a plain file: every write to it fails from now on. (Moved aside in one step: removing
  // it would race the writes going on in it.)
  const dir = workspace.nodeDir('node-b');
  renameSync(dir, `${dir}.lost`);
  writeFileSync(dir, 'this node is down\n');
  expect(await chunksDone(page), 'the node failed before the run ended').toBeLessThan(CHUNKS);

  await expect(page.getByTestId('phase')).toHaveText('degraded', { timeout: 150_000 });
  const degraded = page.getByTestId('degraded');
  await expect(degraded).toBeVisible();
  await expect(degraded.getByRole('heading')).toContainText('Run ended degraded');
  const short = Number(await degraded.locator('.count-pill').innerText());
  expect(short).toBe(CHUNKS);
  const first = degraded.getByTestId('shortfall').first();
  await expect(first).toContainText('1 of 2 copies');
  await expect(first).toContainText(/_chunk_\d+/);
  await expect(first.locator('.problem-what')).not.toBeEmpty();
  await expect(degraded.getByTestId('shortfall')).toHaveCount(200); // the first 200 of 1,152 are listed
  await expect(degraded.getByRole('button', { name: 'Repair' })).toBeEnabled();
  // Nothing is left in flight, and no chunk counts as failed: each has one good copy.
  await expect(page.getByTestId('chunk-list').locator('.chunk-state.sending, .chunk-state.reading, .chunk-state.queued')).toHaveCount(0);
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize(viewport);
    await expect(degraded).toBeInViewport({ ratio: 0.1 });
    await shoot(page, `ingest-degraded-${viewport.width}x${viewport.height}`, testInfo.project.name, false);
  }
  await page.setViewportSize({ width: 1400, height: 900 });
});

test('with the folder back, Repair gives every chunk its second copy: the manifest is complete and verify passes', async ({ page, workspace }, testInfo) => {
  test.setTimeout(180_000);
  const dir = workspace.nodeDir('node-b');
  // A new, empty folder: the node's earlier copies are gone, so every chunk needs its second copy again.
  rmSync(dir, { force: true });
  mkdirSync(dir, { recursive: true });
  await go(page, 'Nodes');
  await expect(page.getByTestId('node-node-b')).toHaveAttribute('data-state', 'healthy');
  await go(page, 'Ingest');
  await page.getByTestId('degraded').getByRole('button', { name: 'Repair' }).click();
  const result = page.getByTestId('repair-result');
  await expect(result).toContainText('Manifest now complete', { timeout: 150_000 });
  await expect(result).toContainText(`Added ${CHUNKS} copies to chunks short of their replicas (${CHUNKS} from another node's good copy, 0 read again from the source).`);
  await expect(result).not.toContainText('Nothing to repair');
  await expect(page.getByTestId('repair-verify')).toHaveText(`Verified after repair: all ${2 * CHUNKS} chunk copies match their checksums.`, { timeout: 60_000 });
  // The degraded card says the run is repaired, and offers no Repair for a shortfall that is gone.
  const degraded = page.getByTestId('degraded');
  await expect(degraded).toHaveAttribute('data-repaired', 'true');
  await expect(degraded).toContainText('repaired');
  await expect(degraded.getByRole('button', { name: 'Repair' })).toHaveCount(0);
  await shoot(page, 'ingest-degraded-repaired', testInfo.project.name);
});
