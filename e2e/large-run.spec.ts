// A run larger than what the host sends of a manifest at once (CLOUD_INGEST_PREVIEW_ENTRIES=20 here, 20,000 by
// default): every node tab counts all its copies, the table fetches its rows a page at a time as it scrolls and
// reaches the node's last chunk, and a file beyond the first twenty is found by searching its name and rebuilt; a
// problem deep in a node's table is one click from its row (the host locates it).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { CHUNK_PAGE_ROWS } from '../renderer/store/chunk-pages.ts';
import type { Manifest, NodeChunkRow } from '../shared/types.ts';
import { expect, NODE_IDS, shoot, skipElectronWithoutBinary, test } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });
// 8 KiB chunks: the simulated bucket's 9 MiB and forty small files make ~1,190 chunks, ~400 a node (two pages of
// rows), and 43 files; the host sends the first 20 files and chunks of the manifest, the rest on demand.
const PREVIEW = 20;
const EXTRA_FILES = 40;
test.use({ ingestion: { chunk_size_mb: 0.0078125, max_concurrent_chunks: 2 }, appEnv: { CLOUD_INGEST_PREVIEW_ENTRIES: String(PREVIEW) } });

async function go(page: Page, screen: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: screen }).click();
}

function md5(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** The newest manifest in the workspace's runs folder, parsed whole (the test may; the app never does for a large run). */
function latestManifest(dir: string): Manifest {
  const runs = join(dir, '.cloud-ingest', 'runs');
  const newest = readdirSync(runs).filter((n) => n.endsWith('.json')).map((n) => join(runs, n)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
  return JSON.parse(readFileSync(newest, 'utf8')) as Manifest;
}

function rowsOn(manifest: Manifest, nodeId: string): NodeChunkRow[] {
  return manifest.chunks.flatMap((chunk) => chunk.copies.filter((c) => c.nodeId === nodeId).map((c) => ({ chunk, location: c.location })));
}

test('a run larger than the preview: full counts, every row reachable by scrolling, any file found by name and rebuilt', async ({ page, workspace }, testInfo) => {
  const source = join(workspace.dir, 'test_data', 'aws_s3_simulation');
  for (let i = 0; i < EXTRA_FILES; i++) writeFileSync(join(source, `extra-${String(i).padStart(2, '0')}.bin`), `extra file ${i}\n`.repeat(200 + i));
  await go(page, 'Ingest');
  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 90_000 });
  const manifest = latestManifest(workspace.dir);
  expect(manifest.files.length).toBe(EXTRA_FILES + 3);

  await go(page, 'Received chunks');
  await expect(page.getByTestId('manifest-partial')).toContainText(`A large run: ${manifest.files.length} files and ${manifest.chunks.length.toLocaleString('en-US')} chunks`);
  for (const id of NODE_IDS) await expect(page.getByTestId(`tab-count-${id}`)).toHaveText(rowsOn(manifest, id).length.toLocaleString('en-US'));

  // node-b's table: its first row, then scrolled to its very end, the last chunk it holds (pages fetched on the way).
  const rows = rowsOn(manifest, 'node-b');
  expect(rows.length).toBeGreaterThan(CHUNK_PAGE_ROWS); // more than one page
  await page.getByTestId('tab-node-b').click();
  const list = page.getByTestId('received-list');
  await expect(list).toHaveAttribute('aria-rowcount', String(rows.length));
  await expect(list.locator(`[data-chunk="${rows[0]!.chunk.id}"]`)).toBeVisible();
  await list.evaluate((el) => {
    el.scrollTop = el.scrollHeight;
  });
  const last = rows.at(-1)!.chunk;
  await expect(list.locator(`[data-chunk="${last.id}"]`)).toBeVisible();
  await expect(list.locator(`[role=row][aria-rowindex="${rows.length}"]`)).toContainText(last.file);
  await expect(list.getByTestId('row-loading')).toHaveCount(0);
  await shoot(page, 'received-large-run', testInfo.project.name);

  // The last file of the manifest is past the first twenty: found by searching, rebuilt, its checksum matched.
  const key = manifest.files.at(-1)!.key;
  expect(manifest.files.findIndex((f) => f.key === key)).toBeGreaterThanOrEqual(PREVIEW);
  const search = page.getByRole('searchbox', { name: 'Search files' });
  await search.fill(key.slice(0, -2).toUpperCase()); // any case, part of the name
  const select = page.getByRole('combobox', { name: 'File to reassemble' });
  await expect(select.locator('option')).toHaveText([key]);
  await expect(page.getByTestId('file-matches')).toHaveText('1 match.');
  await page.getByRole('textbox', { name: 'Output path' }).fill('reassembled/found.bin');
  await page.getByRole('button', { name: 'Reassemble' }).click();
  await expect(page.getByTestId('reassemble-result')).toContainText('Checksum matches');
  expect(md5(readFileSync(join(workspace.dir, 'reassembled', 'found.bin')))).toBe(md5(readFileSync(join(source, key))));
});

test('a bad copy far down a large run’s table: the problem’s click brings its row into view, and “Problems only” lists it', async ({ page, workspace }) => {
  const manifest = latestManifest(workspace.dir);
  const rows = rowsOn(manifest, 'node-a');
  const at = rows.length - 30; // in the second page of rows, not sent with the manifest
  const gone = rows[at]!;
  rmSync(gone.location);
  await page.getByRole('button', { name: 'Verify all' }).click();
  await expect(page.getByTestId('verify-result')).toContainText('1 of');
  await page.getByRole('button', { name: `Show ${gone.chunk.id} on node-a in the table` }).click();
  await expect(page.getByTestId('tab-node-a')).toHaveAttribute('aria-selected', 'true');
  const list = page.getByTestId('received-list');
  await expect(list.locator('.vrow.focused')).toHaveAttribute('aria-rowindex', String(at + 1));
  await expect(list.locator(`[data-chunk="${gone.chunk.id}"]`)).toBeVisible();
  await expect(list.locator('.vrow.focused .chunk-state.failed')).toHaveText('missing');
  await page.getByRole('checkbox', { name: 'Problems only' }).check();
  await expect(list).toHaveAttribute('aria-rowcount', '1');
  await expect(list.locator(`[data-chunk="${gone.chunk.id}"]`)).toContainText(gone.chunk.file);
  await page.getByRole('checkbox', { name: 'Problems only' }).uncheck();
  await expect(list).toHaveAttribute('aria-rowcount', String(rows.length));
});
