// Resume in the app, as a user drives it: start an ingest of many small chunks, cancel it, find it under
// "Unfinished runs", resume it and watch it reach 100% without sending the delivered chunks again.
import type { Page } from '@playwright/test';
import { expect, shoot, skipElectronWithoutBinary, test } from './fixtures.ts';

skipElectronWithoutBinary();
// 8 KiB chunks, two at a time: the 9 MiB of the simulated AWS bucket make 1,152 chunks, so Cancel lands mid-run.
test.use({ ingestion: { chunk_size_mb: 0.0078125, max_concurrent_chunks: 2 } });
const TOTAL_CHUNKS = 1152;

async function chunksDone(page: Page): Promise<[number, number]> {
  const [done, total] = (await page.getByTestId('chunks-done').innerText()).split('/').map((s) => Number(s.trim()));
  return [done ?? NaN, total ?? NaN];
}

test('resume: cancel an ingest, see it listed as unfinished, resume it and watch it reach 100%', async ({ page }, testInfo) => {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Ingest' }).click();
  await expect(page.getByTestId('resumable')).toHaveCount(0);

  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect.poll(async () => (await chunksDone(page))[0], { timeout: 60_000, intervals: [20] }).toBeGreaterThan(0);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('phase')).toHaveText('cancelled');
  const [delivered, total] = await chunksDone(page);
  expect(total).toBe(TOTAL_CHUNKS);
  expect(delivered).toBeLessThan(total);

  // The cancelled run is offered for resuming: its id, when it started, what it delivered, how it ended.
  const rows = page.getByRole('table', { name: 'Unfinished runs' }).locator('tbody tr');
  await expect(rows).toHaveCount(1);
  const row = rows.first();
  await expect(row).toContainText('cancelled');
  const runId = (await row.locator('td').first().innerText()).trim();
  expect(runId).toMatch(/^\d{4}-\d{2}-\d{2}T[\w-]+$/);
  const listed = Number(await row.getAttribute('data-chunks'));
  expect(listed).toBeGreaterThan(0);
  expect(listed).toBeLessThan(TOTAL_CHUNKS);
  await expect(row.locator('td').nth(2)).toHaveText(String(listed));
  await shoot(page, 'resume-listed', testInfo.project.name);

  await row.getByRole('button', { name: `Resume ${runId}` }).click();
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 60_000 });
  await expect(page.getByTestId('percent')).toHaveText('100%');
  expect(await chunksDone(page)).toEqual([TOTAL_CHUNKS, TOTAL_CHUNKS]);
  // What the cancelled run delivered was skipped, the rest sent now; and nothing is left to resume.
  const count = async (state: string): Promise<number> => Number(await page.getByRole('group', { name: 'Show chunks' }).getByRole('button', { name: new RegExp(`^${state} `) }).locator('b').innerText());
  expect(await count('skipped')).toBeGreaterThanOrEqual(listed);
  expect((await count('skipped')) + (await count('verified'))).toBe(TOTAL_CHUNKS);
  await expect(page.getByTestId('bytes-skipped')).toContainText('already on nodes');
  await expect(page.getByTestId('overall').locator('dd').first()).toHaveText('9.0 MiB / 9.0 MiB');
  await expect(page.getByTestId('resumable')).toHaveCount(0);
  await expect(page.locator('.logs')).toContainText(`resuming run ${runId}`);
  await shoot(page, 'resume-finished', testInfo.project.name);
});
