// Damage found at a glance, repaired in one click: ingest 288 chunks, damage one copy on disk and delete another,
// Verify all at 1024×700, and the Problems list names each bad copy (node, file, chunk, offset, both checksums)
// without scrolling; node tabs count their problems, "Problems only" narrows the table, a click on a problem
// brings its row into view; then Repair all, and verify passes on the manifest repair wrote.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import type { Page } from '@playwright/test';
import type { Manifest, ManifestChunk } from '../shared/types.ts';
import { expect, shoot, skipElectronWithoutBinary, test } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });
// 32 KiB chunks: the simulated AWS bucket's 9 MiB make 288 of them, 96 a node: a node's table needs scrolling.
test.use({ ingestion: { chunk_size_mb: 0.03125 } });

async function go(page: Page, screen: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: screen }).click();
}

/** The manifest of the run the Ingest screen shows (its path is printed under the figures). */
async function shownManifest(page: Page): Promise<Manifest> {
  const text = await page.getByTestId('overall').getByText(/^Manifest: /).innerText();
  return JSON.parse(readFileSync(text.replace(/^Manifest: /, '').trim(), 'utf8')) as Manifest;
}

/** The chunk with the highest index of `file` whose first copy is on `nodeId`: far down that node's table. */
function lateChunk(manifest: Manifest, nodeId: string, file: string): ManifestChunk {
  return manifest.chunks.filter((c) => c.file === file && c.copies[0]?.nodeId === nodeId).sort((a, b) => b.index - a.index)[0]!;
}

let damaged: ManifestChunk;
let deleted: ManifestChunk;

test('after Verify all, every bad copy is named on screen without scrolling, counted per node, and one click away', async ({ page }, testInfo) => {
  await go(page, 'Ingest');
  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 90_000 });

  const manifest = await shownManifest(page);
  expect(manifest.chunks).toHaveLength(288);
  const bySize = [...manifest.files].sort((a, b) => b.size - a.size);
  damaged = lateChunk(manifest, 'node-b', bySize[0]!.key);
  deleted = lateChunk(manifest, 'node-c', bySize.at(-1)!.key);
  // Damage: 16 bytes overwritten in place (same size); and a copy deleted outright.
  const fd = openSync(damaged.copies[0]!.location, 'r+');
  writeSync(fd, Buffer.alloc(16, 0x58), 0, 16, 0);
  closeSync(fd);
  rmSync(deleted.copies[0]!.location);

  await page.setViewportSize({ width: 1024, height: 700 });
  await go(page, 'Received chunks');
  await expect(page.getByRole('combobox', { name: 'Run manifest' })).not.toHaveValue('');
  await page.getByRole('button', { name: 'Verify all' }).click();
  await expect(page.getByTestId('verify-result')).toContainText('2 of 288 copies have problems, on ');
  await expect(page.getByTestId('verify-result')).toContainText('node-b (1)');
  await expect(page.getByTestId('verify-result')).toContainText('node-c (1)');

  const problems = page.getByTestId('problem');
  await expect(problems).toHaveCount(2);
  const bad = page.locator(`[data-testid=problem][data-chunk="${damaged.id}"]`);
  const gone = page.locator(`[data-testid=problem][data-chunk="${deleted.id}"]`);
  // Node, file, chunk, offset, what is wrong, and both checksums, in words on the page.
  await expect(bad).toContainText('node-b');
  await expect(bad).toContainText(damaged.file);
  await expect(bad).toContainText(`chunk #${damaged.index}`);
  await expect(bad).toContainText(`offset ${damaged.offset.toLocaleString('en-US')}`);
  await expect(bad).toContainText('damaged');
  await expect(bad).toContainText(`expected ${damaged.checksum}`);
  await expect(bad).toContainText(/found [0-9a-f]{32}/);
  await expect(gone).toContainText('node-c');
  await expect(gone).toContainText(deleted.file);
  await expect(gone).toContainText(`chunk #${deleted.index}`);
  await expect(gone).toContainText('missing');
  // Seen without scrolling: both problems lie inside the 1024×700 window as the page opens.
  expect(await page.evaluate(() => window.scrollY)).toBe(0);
  for (const p of [bad, gone]) {
    const box = (await p.boundingBox())!;
    expect(box.y).toBeGreaterThanOrEqual(0);
    expect(box.y + box.height).toBeLessThanOrEqual(700);
    expect(box.x + box.width).toBeLessThanOrEqual(1024);
  }
  await shoot(page, 'received-problems-1024', testInfo.project.name, false);

  // Counts on every node tab.
  await expect(page.getByTestId('tab-node-a')).toHaveAttribute('data-problems', '0');
  await expect(page.getByTestId('tab-node-b')).toHaveAttribute('data-problems', '1');
  await expect(page.getByTestId('tab-node-c')).toHaveAttribute('data-problems', '1');

  // Click the problem: its node's tab opens and its row is scrolled into view and marked.
  await bad.getByRole('button', { name: `Show ${damaged.id} on node-b in the table` }).click();
  await expect(page.getByTestId('tab-node-b')).toHaveAttribute('aria-selected', 'true');
  const row = page.getByTestId('received-list').locator(`[data-chunk="${damaged.id}"]`);
  await expect(row).toBeVisible();
  await expect(page.getByTestId('received-list').locator('.vrow.focused')).toContainText(`#${damaged.index}`);
  expect(Number(await page.getByTestId('received-list').evaluate((el) => el.scrollTop))).toBeGreaterThan(0);

  // Problems only: node-b's table narrows to its one bad copy.
  await page.getByRole('checkbox', { name: 'Problems only' }).check();
  await expect(page.getByTestId('received-list')).toHaveAttribute('aria-rowcount', '1');
  await expect(page.getByTestId('received-list').locator('.chunk-state.failed')).toHaveText('damaged');
  await page.getByRole('checkbox', { name: 'Problems only' }).uncheck();
  await expect(page.getByTestId('received-list')).toHaveAttribute('aria-rowcount', String(manifest.chunks.filter((c) => c.copies.some((k) => k.nodeId === 'node-b')).length));
  await shoot(page, 'received-problem-row-1024', testInfo.project.name, false);
  await page.setViewportSize({ width: 1400, height: 900 });
});

test('Repair all restores both copies, and verify passes on the manifest repair wrote', async ({ page }, testInfo) => {
  await page.getByTestId('problems').getByRole('button', { name: 'Repair all' }).click();
  await expect(page.getByTestId('repair-result')).toContainText('Restored 2 of 2 bad copies', { timeout: 60_000 });
  await expect(page.getByTestId('repair-verify')).toContainText('Verified after repair: all 288 chunk copies match their checksums.', { timeout: 60_000 });
  await expect(page.getByTestId('problems')).toHaveCount(0);
  await expect(page.getByTestId('verify-result')).toContainText('All 288 chunk copies verified');
  expect(readFileSync(damaged.copies[0]!.location).subarray(0, 16).equals(Buffer.alloc(16, 0x58))).toBe(false);
  await shoot(page, 'received-repaired', testInfo.project.name, false);
});
