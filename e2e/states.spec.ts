// States that tell the truth, and the smaller fixes of issue 13, as a user meets them: Ingest opened first shows
// every node; Cancel leaves no chunk "sending"; a resumed run is not listed as unfinished while it runs and does
// not open on 0 % / 0 B; localhost works; a refused socket says so; Reload asks before discarding edits; a problem
// in the config is one click from its line; reassemble shows the plain MD5 and refuses paths outside the project.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, launchChromium, NODE_IDS, shoot, skipElectronWithoutBinary, test } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });
// 8 KiB chunks, two at a time: 1,152 chunks, so Cancel lands mid-run.
test.use({ ingestion: { chunk_size_mb: 0.0078125, max_concurrent_chunks: 2 } });

async function go(page: Page, screen: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: screen }).click();
}

async function stateCount(page: Page, state: string): Promise<number> {
  const button = page.getByRole('group', { name: 'Show chunks' }).getByRole('button', { name: new RegExp(`^${state} `) });
  if ((await button.count()) === 0) return 0;
  return Number(await button.locator('b').innerText());
}

async function chunksDone(page: Page): Promise<number> {
  return Number((await page.getByTestId('chunks-done').innerText()).split('/')[0]);
}

test('Ingest opened before Nodes shows every node’s panel, and no legend before there are files', async ({ page }) => {
  await go(page, 'Ingest');
  for (const id of NODE_IDS) await expect(page.getByTestId(`dist-${id}`)).toBeVisible();
  await expect(page.getByRole('list', { name: 'Files' })).toHaveCount(0);
  await expect(page.getByRole('list', { name: 'Chunk states' })).toHaveCount(0);
});

let cancelledRun = '';

test('Cancel leaves no chunk waiting or in flight: the undelivered ones are marked cancelled', async ({ page }, testInfo) => {
  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect.poll(() => chunksDone(page), { timeout: 60_000, intervals: [20] }).toBeGreaterThan(0);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('phase')).toHaveText('cancelled');
  for (const state of ['queued', 'reading', 'sending', 'retried']) expect(await stateCount(page, state), state).toBe(0);
  const cancelled = await stateCount(page, 'cancelled');
  expect(cancelled).toBeGreaterThan(0);
  expect(cancelled + (await stateCount(page, 'verified'))).toBe(1152);
  await expect(page.getByTestId('chunk-list').locator('.chunk-state.sending, .chunk-state.reading, .chunk-state.queued')).toHaveCount(0);
  const row = page.getByRole('table', { name: 'Unfinished runs' }).locator('tbody tr').first();
  cancelledRun = (await row.locator('td').first().innerText()).trim();
  await shoot(page, 'ingest-cancelled', testInfo.project.name);
});

test('a resumed run leaves "Unfinished runs" at once and never shows 0 % / 0 B while it starts', async ({ page }, testInfo) => {
  // Record every percent and bytes text the page shows from the click on.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { __frames: string[] }).__frames = seen;
    const grab = (): void => {
      const percent = document.querySelector('[data-testid=percent]')?.textContent ?? '';
      const bytes = document.querySelector('[data-testid=overall] dd')?.textContent ?? '';
      seen.push(`${percent}|${bytes}`);
    };
    new MutationObserver(grab).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole('button', { name: `Resume ${cancelledRun}` }).click();
  await expect(page.getByTestId(`resumable-${cancelledRun}`)).toHaveCount(0);
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 60_000 });
  const frames = await page.evaluate(() => (window as unknown as { __frames: string[] }).__frames);
  expect(frames.length).toBeGreaterThan(0);
  expect(frames.filter((f) => f.startsWith('0%') || f.includes('0 B / 0 B'))).toEqual([]);
  expect(await stateCount(page, 'skipped')).toBeGreaterThan(0);
  await shoot(page, 'ingest-resumed', testInfo.project.name);
});

test('the page opened as http://localhost:PORT/TOKEN/ works like 127.0.0.1', async ({ app }) => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const url = app.url!.replace('127.0.0.1', 'localhost');
    await page.goto(url);
    await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
    await expect(page.locator('.cm-content')).toContainText('data_sources:');
    await expect(page.getByTestId('connection')).toHaveCount(0);
  } finally {
    await browser.close();
  }
});

test('a refused socket is reported as refused, and the Config screen does not claim a valid config', async ({ app }, testInfo) => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
    // The server answers the page but refuses its socket (as it does a page from an origin it does not serve).
    await page.routeWebSocket(/\/api$/, (ws) => ws.close({ code: 1008, reason: 'refused' }));
    await page.goto(app.url!);
    await expect(page.getByTestId('connection')).toContainText('The app server is running but refused this page’s connection'.replace('’', "'"));
    await expect(page.getByTestId('connection')).not.toContainText('still running');
    await expect(page.getByTestId('config-status')).toHaveText('not loaded');
    await expect(page.getByText('No problems')).toHaveCount(0);
    await shoot(page, 'socket-refused', testInfo.project.name, false);
  } finally {
    await browser.close();
  }
});

test('Reload asks before discarding unsaved edits; a problem in the list puts the cursor on its line', async ({ page, workspace }) => {
  await go(page, 'Config');
  const original = readFileSync(workspace.configPath, 'utf8');
  const content = page.locator('.cm-content');
  await content.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(original.replace(/max_concurrent_chunks:\s*\d+/, 'max_concurrent_chunks: none'));
  await expect(page.getByTestId('config-status')).toHaveText('1 error');

  await page.getByRole('button', { name: 'Reload' }).click();
  const confirm = page.getByTestId('confirm-reload');
  await expect(confirm).toContainText('Discard your unsaved edits');
  await confirm.getByRole('button', { name: 'Keep editing' }).click();
  await expect(page.getByTestId('config-status')).toHaveText('1 error');

  const problem = page.getByTestId('diagnostic').first();
  const line = Number(await problem.getAttribute('data-line'));
  await problem.getByRole('button').click();
  await expect(page.locator('.cm-activeLine')).toContainText('max_concurrent_chunks: none');
  const cursorLine = await page.evaluate(() => {
    const active = document.querySelector('.cm-activeLine');
    return Array.from(document.querySelectorAll('.cm-line')).indexOf(active as Element);
  });
  expect(cursorLine).toBeGreaterThanOrEqual(0);
  expect(line).toBeGreaterThan(0);

  await page.getByRole('button', { name: 'Reload' }).click();
  await page.getByTestId('confirm-reload').getByRole('button', { name: 'Discard and reload' }).click();
  await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
  expect(readFileSync(workspace.configPath, 'utf8')).toBe(original);
});

test('reassemble shows the plain MD5 to compare with md5sum, and refuses a path outside the project folder', async ({ page, workspace }, testInfo) => {
  await go(page, 'Received chunks');
  await expect(page.getByRole('combobox', { name: 'Run manifest' })).not.toHaveValue('');
  await expect(page.getByTestId('output-rule')).toContainText(workspace.dir);
  await expect(page.getByTestId('output-rule')).toContainText('no folder dialog');
  const key = await page.getByRole('combobox', { name: 'File to reassemble' }).inputValue();
  await page.getByRole('textbox', { name: 'Output path' }).fill('/tmp/cloud-ingest-e2e-outside.bin');
  await page.getByRole('button', { name: 'Reassemble' }).click();
  await expect(page.getByRole('alert')).toContainText('outside the project folder');

  await page.getByRole('textbox', { name: 'Output path' }).fill('rebuilt/out.bin');
  await page.getByRole('button', { name: 'Reassemble' }).click();
  await expect(page.getByTestId('reassemble-result')).toContainText('Checksum matches');
  const md5 = createHash('md5').update(readFileSync(join(workspace.dir, 'rebuilt', 'out.bin'))).digest('hex');
  expect(md5).toBe(createHash('md5').update(readFileSync(join(workspace.dir, 'test_data', 'aws_s3_simulation', key))).digest('hex'));
  await expect(page.getByTestId('reassemble-md5')).toContainText(md5);
  await shoot(page, 'reassembled', testInfo.project.name);
});
