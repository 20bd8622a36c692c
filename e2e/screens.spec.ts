// Every screen at 1024×700 and 1440×900, checked by element geometry (no clipped badge, no header over its
// neighbour, no text running out of its card, no sideways scrolling) and photographed into e2e/screenshots/; and the
// distribution picture of a 50-file run: a palette that never draws a file in the failed colour, hover details,
// a legend searched and clicked to pick out one file's chunks on every node, each node's bytes and share.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { deltaE, FAILED_COLOUR } from '../renderer/palette.ts';
import { expect, NODE_IDS, shoot, skipElectronWithoutBinary, test, VIEWPORTS } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });
// 64 KiB chunks, two at a time: a run long enough for a throughput chart.
test.use({ ingestion: { chunk_size_mb: 0.0625, max_concurrent_chunks: 2 } });

const EXTRA_FILES = 47;

async function go(page: Page, screen: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: screen }).click();
}

/**
 * Everything on the page that does not fit: header cells cut or wrapped or over their neighbour, badges cut or
 * sticking out of their cell, text marked as a path or hash running out of its card, the page scrolling sideways.
 */
async function layoutFaults(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const faults: string[] = [];
    const name = (el: Element): string => `${el.className || el.tagName} "${(el.textContent ?? '').trim().slice(0, 40)}"`;
    if (document.documentElement.scrollWidth > window.innerWidth + 1) faults.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
    for (const head of Array.from(document.querySelectorAll('.vhead'))) {
      const cells = Array.from(head.children) as HTMLElement[];
      cells.forEach((cell, i) => {
        if (cell.scrollWidth > cell.clientWidth + 1) faults.push(`header cut: ${name(cell)}`);
        if (cell.getBoundingClientRect().height > 20) faults.push(`header wraps: ${name(cell)}`);
        const next = cells[i + 1];
        if (next && cell.getBoundingClientRect().right > next.getBoundingClientRect().left + 0.5) faults.push(`header over its neighbour: ${name(cell)}`);
      });
    }
    for (const badge of Array.from(document.querySelectorAll('.vlist .chunk-state, .tabs .count-pill, .problem .chunk-state, .state-counts .chunk-state')) as HTMLElement[]) {
      if (badge.scrollWidth > badge.clientWidth + 1) faults.push(`badge cut: ${name(badge)}`);
      const cell = badge.parentElement!;
      const b = badge.getBoundingClientRect();
      const c = cell.getBoundingClientRect();
      if (b.right > c.right + 0.5 || b.left < c.left - 0.5) faults.push(`badge sticks out of its cell: ${name(badge)}`);
    }
    for (const text of Array.from(document.querySelectorAll('.path, .hash, .problem-what')) as HTMLElement[]) {
      const card = text.closest('.card');
      if (card && text.getBoundingClientRect().right > card.getBoundingClientRect().right + 0.5) faults.push(`text runs out of its card: ${name(text)}`);
    }
    // The file column shows whole names (no "t…").
    for (const cell of Array.from(document.querySelectorAll('.vlist .received-cols > span:nth-child(2)')) as HTMLElement[]) {
      if (cell.scrollWidth > cell.clientWidth + 1) faults.push(`file name cut: ${name(cell)}`);
    }
    return faults;
  });
}

/** Checks the layout and takes a screenshot at both window sizes, ending at 1440×900. */
async function everySize(page: Page, name: string, project: string, before?: () => Promise<void>): Promise<void> {
  for (const size of VIEWPORTS) {
    await page.setViewportSize(size);
    await before?.();
    await page.waitForTimeout(150);
    expect(await layoutFaults(page), `${name} at ${size.width}×${size.height}`).toEqual([]);
    await shoot(page, `${name}-${size.width}x${size.height}`, project, false);
  }
}

test('config and nodes at both sizes', async ({ page, workspace }, testInfo) => {
  // 47 more files next to the 3 of the simulated bucket: a 50-file run for the distribution picture.
  const dir = join(workspace.dir, 'test_data', 'aws_s3_simulation', 'shards');
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < EXTRA_FILES; i += 1) writeFileSync(join(dir, `shard-${String(i).padStart(3, '0')}.tar`), Buffer.alloc(40_000 + i * 5_000, i));
  await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
  await everySize(page, 'config', testInfo.project.name);
  await go(page, 'Nodes');
  for (const id of NODE_IDS) await expect(page.getByTestId(`node-${id}`)).toHaveAttribute('data-state', 'healthy');
  await everySize(page, 'nodes', testInfo.project.name);
});

test('ingest of 50 files: the distribution picture, at both sizes', async ({ page }, testInfo) => {
  await go(page, 'Ingest');
  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 90_000 });

  // Every file in the legend (none hidden behind "+N more"), none in a colour near the failed one.
  const swatches = page.getByRole('list', { name: 'Files' }).locator('[data-colour]');
  await expect(swatches).toHaveCount(50);
  const colours = await swatches.evaluateAll((els) => els.map((e) => e.getAttribute('data-colour') ?? ''));
  for (const colour of colours) expect(deltaE(colour, FAILED_COLOUR), colour).toBeGreaterThan(35);
  // Nor is any cell drawn in it: no pixel of any node's picture is near the failed red (no chunk failed here).
  const redPixels = await page.locator('.dist-panel canvas').evaluateAll((canvases) =>
    canvases.reduce((n, c) => {
      const canvas = c as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - 220) < 30 && Math.abs(data[i + 1]! - 38) < 30 && Math.abs(data[i + 2]! - 38) < 30 && data[i + 3]! > 200) n += 1;
      return n;
    }, 0),
  );
  expect(redPixels).toBe(0);

  // Each node's bytes and share of the total.
  let shares = 0;
  for (const id of NODE_IDS) {
    const text = await page.getByTestId(`share-${id}`).innerText();
    expect(text).toMatch(/KiB|MiB/);
    shares += Number(/([\d.]+)%/.exec(text)?.[1]);
  }
  expect(Math.abs(shares - 100)).toBeLessThanOrEqual(1.5);

  // Hover a cell: the chunk's id, file, offset, size, node, state and attempts.
  const canvas = page.getByTestId('dist-node-a').locator('canvas');
  const cell = Number(await canvas.getAttribute('data-cell'));
  await canvas.hover({ position: { x: cell / 2, y: cell / 2 } });
  const card = page.getByTestId('cell-card');
  await expect(card).toBeVisible();
  for (const label of ['File', 'Offset', 'Size', 'Node', 'State', 'Attempts']) await expect(card).toContainText(label);
  await expect(card).toContainText('node-a');
  await expect(card).toContainText('verified');
  await expect(card).toContainText(/_chunk_\d+/);
  await shoot(page, 'distribution-hover', testInfo.project.name, false);
  await page.mouse.move(0, 0);

  // Find a file by name and pick it: its chunks are picked out on every node that holds some.
  await page.getByRole('searchbox', { name: 'Find a file' }).fill('shard-046');
  const picked = page.getByRole('list', { name: 'Files' }).getByRole('button');
  await expect(picked).toHaveCount(1);
  await picked.click();
  await expect(page.getByTestId('distribution')).toHaveAttribute('data-highlight', 'shards/shard-046.tar');
  // 270,000 bytes in 64 KiB chunks: 5 chunks, wherever they went.
  const perNode = await Promise.all(NODE_IDS.map(async (id) => Number(await page.getByTestId(`dist-${id}`).getAttribute('data-highlighted'))));
  expect(perNode.reduce((a, b) => a + b, 0)).toBe(5);
  await everySize(page, 'ingest', testInfo.project.name);
  await page.getByRole('button', { name: 'Show all files' }).click();
  await expect(page.getByTestId('distribution')).toHaveAttribute('data-highlight', '');
});

test('received chunks, verified, and a rebuilt file, at both sizes', async ({ page }, testInfo) => {
  await go(page, 'Received chunks');
  await expect(page.getByRole('combobox', { name: 'Run manifest' })).not.toHaveValue('');
  await page.getByRole('button', { name: 'Verify all' }).click();
  await expect(page.getByTestId('verify-result')).toContainText('verified: checksums match');
  await page.getByRole('textbox', { name: 'Output path' }).fill('reassembled/a/rather/deep/folder/for/the/rebuilt/file/to/show/that/a/long/path/wraps/inside/its/card.bin');
  await page.getByRole('button', { name: 'Reassemble' }).click();
  await expect(page.getByTestId('reassemble-result')).toContainText('Checksum matches');
  await everySize(page, 'received', testInfo.project.name);
});

test('activity at both sizes: the runs with who ran them, and a throughput chart', async ({ page }, testInfo) => {
  await go(page, 'Activity');
  const rows = page.getByRole('table', { name: 'Runs' }).locator('tbody tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('complete');
  await expect(rows.first()).toContainText(/app · .+@.+/);
  await expect(page.getByTestId('throughput-chart')).toBeVisible();
  expect(Number(await page.getByTestId('throughput-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(2);
  await everySize(page, 'activity', testInfo.project.name);
});
