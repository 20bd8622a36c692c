// The app end to end, as a user drives it: config → nodes → ingest → received chunks, one workspace throughout.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, NODE_IDS, shoot, skipElectronWithoutBinary, test } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });

function md5(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('md5');
    createReadStream(path).on('data', (d) => hash.update(d)).on('end', () => resolve(hash.digest('hex'))).on('error', reject);
  });
}

async function replaceEditorText(page: Page, text: string): Promise<void> {
  const content = page.locator('.cm-content');
  await content.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
}

async function go(page: Page, screen: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: screen }).click();
}

test('config: load the default config, break it, see the error on its line, fix it and save keeping comments', async ({ page, workspace }, testInfo) => {
  const original = readFileSync(workspace.configPath, 'utf8');
  await expect(page.locator('.cm-content')).toContainText('data_sources:');
  await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
  await expect(page.getByTestId('effective-cloud')).toHaveText('aws');

  const lines = original.split('\n');
  const badLine = lines.findIndex((l) => l.includes('chunk_size_mb')) + 1;
  expect(badLine).toBeGreaterThan(0);
  const broken = original.replace(/chunk_size_mb:\s*[\d.]+/, 'chunk_size_mb: "lots"');
  await replaceEditorText(page, broken);

  const diagnostic = page.getByTestId('diagnostic').first();
  await expect(diagnostic).toHaveAttribute('data-line', String(badLine));
  await expect(diagnostic).toContainText('chunk_size_mb');
  await expect(diagnostic).toContainText(`Line ${badLine}:`);
  // The editor marks that very line and puts an error marker in the gutter.
  await expect(page.locator(`.cm-line[data-problem-line="${badLine}"]`)).toBeVisible();
  await expect(page.locator('.cm-lint-marker-error')).toHaveCount(1);
  await expect(page.getByTestId('config-status')).toHaveText('1 error');
  await expect(page.getByRole('button', { name: 'Save' })).toBeDisabled();
  await shoot(page, 'config-error', testInfo.project.name);

  const fixed = original.replace('# Folder nodes of the end-to-end test.', '# Folder nodes of the end-to-end test (edited in the app).');
  await replaceEditorText(page, fixed);
  await expect(page.getByTestId('config-status')).toHaveText('valid · unsaved');
  await expect(page.locator('.cm-lint-marker-error')).toHaveCount(0);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
  await expect(page.getByRole('status')).toContainText('Saved');
  const onDisk = readFileSync(workspace.configPath, 'utf8');
  expect(onDisk).toBe(fixed);
  expect(onDisk).toContain('# Cloud Ingest configuration.');
  expect(onDisk).toContain('(edited in the app)');
  await shoot(page, 'config', testInfo.project.name);
});

test('nodes: all healthy; a node whose folder becomes unusable turns unhealthy, and recovers', async ({ page, workspace }, testInfo) => {
  await go(page, 'Nodes');
  for (const id of NODE_IDS) {
    await expect(page.getByTestId(`node-${id}`)).toHaveAttribute('data-state', 'healthy');
  }
  await expect(page.getByTestId('node-node-a')).toContainText('ms');
  await shoot(page, 'nodes', testInfo.project.name);

  // Stop node-c: its folder is replaced by a plain file, so nothing can be written there.
  const dir = workspace.nodeDir('node-c');
  rmSync(dir, { recursive: true, force: true });
  writeFileSync(dir, 'this node is down\n');
  await expect(page.getByTestId('node-node-c')).toHaveAttribute('data-state', 'unhealthy');
  await expect(page.getByTestId('node-node-c').getByRole('note')).toContainText('node-c');
  await expect(page.getByTestId('node-node-a')).toHaveAttribute('data-state', 'healthy');
  await shoot(page, 'nodes-unhealthy', testInfo.project.name);

  rmSync(dir, { force: true });
  mkdirSync(dir, { recursive: true });
  await expect(page.getByTestId('node-node-c')).toHaveAttribute('data-state', 'healthy');
});

test('ingest: start an ingest of generated test data and watch it reach 100%', async ({ page }, testInfo) => {
  await go(page, 'Ingest');
  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 60_000 });
  await expect(page.getByTestId('percent')).toHaveText('100%');
  const done = await page.getByTestId('chunks-done').innerText();
  const [got, total] = done.split('/').map((s) => Number(s.trim()));
  expect(total).toBeGreaterThan(10);
  expect(got).toBe(total);
  // Every node got a share, and the chunk view lists every chunk as verified.
  for (const id of NODE_IDS) {
    expect(Number(await page.getByTestId(`dist-${id}`).getAttribute('data-chunks'))).toBeGreaterThan(0);
  }
  await expect(page.getByTestId('chunk-list')).toHaveAttribute('aria-rowcount', String(total));
  await expect(page.getByTestId('chunk-list').locator('.chunk-state.verified').first()).toBeVisible();
  await shoot(page, 'ingest', testInfo.project.name);
});

test('received chunks: verify all, reassemble a file and see its checksum match', async ({ page, workspace }, testInfo) => {
  await go(page, 'Received chunks');
  await expect(page.getByRole('combobox', { name: 'Run manifest' })).not.toHaveValue('');
  const tabs = page.getByRole('tablist', { name: 'Nodes' }).getByRole('tab');
  await expect(tabs).toHaveCount(NODE_IDS.length);
  await expect(page.getByTestId('received-list').locator('[role=row]').first()).toBeVisible();

  await page.getByRole('button', { name: 'Verify all' }).click();
  await expect(page.getByTestId('verify-result')).toContainText('verified: checksums match');
  await expect(page.getByTestId('received-list').locator('.chunk-state.verified').first()).toBeVisible();

  await tabs.nth(1).click();
  await page.getByRole('button', { name: /^Verify node-/ }).click();
  await expect(page.getByTestId('verify-result')).toContainText(`on ${NODE_IDS[1]} verified`);

  const key = 'training_batch_1.dat';
  await page.getByRole('combobox', { name: 'File to reassemble' }).selectOption(key);
  await page.getByRole('textbox', { name: 'Output path' }).fill('reassembled/out.bin');
  await page.getByRole('button', { name: 'Reassemble' }).click();
  await expect(page.getByTestId('reassemble-result')).toContainText('Checksum matches');
  const out = join(workspace.dir, 'reassembled', 'out.bin');
  expect(existsSync(out)).toBe(true);
  expect(await md5(out)).toBe(await md5(join(workspace.dir, 'test_data', 'aws_s3_simulation', key)));
  await shoot(page, 'received', testInfo.project.name);
});

test('nodes: show what each node holds after the ingest; add a node through the form and remove it again', async ({ page, workspace }, testInfo) => {
  await go(page, 'Nodes');
  for (const id of NODE_IDS) {
    await expect(page.getByTestId(`node-${id}`).locator('dd').nth(2)).not.toHaveText(/^(0|—)$/);
  }
  await page.getByRole('button', { name: 'Add node' }).click();
  const form = page.getByRole('form', { name: 'Add node' });
  await form.getByLabel('Id', { exact: true }).fill('node-d');
  await form.getByRole('textbox', { name: 'Folder' }).fill('./nodes/node-d');
  await form.getByRole('button', { name: 'Save node' }).click();
  await expect(page.getByTestId('node-node-d')).toHaveAttribute('data-state', 'healthy');
  let text = readFileSync(workspace.configPath, 'utf8');
  expect(text).toMatch(/id: node-d/);
  expect(text).toContain('(edited in the app)');
  expect(text).toContain('# Cloud Ingest configuration.');
  await shoot(page, 'nodes-after-ingest', testInfo.project.name);

  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByTestId('node-node-d').getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByTestId('node-node-d')).toHaveCount(0);
  text = readFileSync(workspace.configPath, 'utf8');
  expect(text).not.toContain('node-d');
  expect(text).toContain('(edited in the app)');
});
