// The config editor names a YAML indentation mistake on the line the user got wrong, once, in plain words with the
// fix (issue 13, item 6): typed with the keyboard in the editor, as a user makes the mistake.
import type { Page } from '@playwright/test';
import { expect, shoot, skipElectronWithoutBinary, test, VIEWPORTS } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });

const PARSER_WORDS = /compact mappings|Implicit keys|same column|Tabs are not allowed/;

/** Puts the cursor at the very start of a 1-based line (a click at its left edge; long lines wrap, so no ArrowDown). */
async function cursorToLineStart(page: Page, line: number): Promise<void> {
  await page.locator('.cm-line').nth(line - 1).click({ position: { x: 1, y: 4 } });
  const head = await page.evaluate(() => getSelection()?.focusOffset ?? -1);
  expect(head, 'the cursor at column 1').toBe(0);
}

async function lineOf(page: Page, text: string): Promise<number> {
  const lines = await page.locator('.cm-line').allInnerTexts();
  const index = lines.findIndex((l) => l.trimStart().startsWith(text));
  expect(index, `a line starting with ${text}`).toBeGreaterThanOrEqual(0);
  return index + 1;
}

// The app is shared with the specs before this one: start from the Config screen whatever screen they left open.
test.beforeEach(async ({ page }) => {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Config' }).click();
});

test('a key indented one space too far is named on its own line, once, with the fix', async ({ page }, testInfo) => {
  await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
  const line = await lineOf(page, 'local:');
  await cursorToLineStart(page, line);
  await page.keyboard.type(' ');

  const problems = page.getByTestId('diagnostic');
  await expect(problems).toHaveCount(1);
  await expect(problems.first()).toHaveAttribute('data-line', String(line));
  await expect(problems.first()).toContainText(`Line ${line}:4`);
  await expect(problems.first()).toContainText('data_sources.local');
  await expect(problems.first()).toContainText('this key is indented by 3 spaces, but its siblings by 2.');
  await expect(problems.first()).toContainText('Fix: indent it by 2 spaces, like azure above it.');
  await expect(problems.first()).not.toContainText(PARSER_WORDS);
  // The editor marks that very line, not the one above, and only it.
  await expect(page.locator('.cm-problemLine')).toHaveCount(1);
  await expect(page.locator(`.cm-line[data-problem-line="${line}"]`)).toBeVisible();
  await expect(page.locator('.cm-lint-marker-error')).toHaveCount(1);
  await expect(page.getByTestId('config-status')).toHaveText('1 error');
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize(viewport);
    await shoot(page, `config-indent-${viewport.width}x${viewport.height}`, testInfo.project.name, false);
  }
  await page.setViewportSize({ width: 1400, height: 900 });

  await page.keyboard.press('Backspace');
  await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
  await expect(problems).toHaveCount(0);
});

test('a list item indented one space too little, and a tab, each get their own words on their own line', async ({ page }) => {
  const line = await lineOf(page, '- { id: node-b');
  await cursorToLineStart(page, line);
  await page.keyboard.press('Delete');
  const problems = page.getByTestId('diagnostic');
  await expect(problems).toHaveCount(1);
  await expect(problems.first()).toHaveAttribute('data-line', String(line));
  await expect(problems.first()).toContainText('this list item is indented by 1 space, but the items around it by 2.');
  await expect(problems.first()).toContainText('Fix: indent it by 2 spaces, like the other items of nodes.');
  await expect(problems.first()).not.toContainText(PARSER_WORDS);
  await expect(page.locator('.cm-problemLine')).toHaveCount(1);
  await expect(page.locator(`.cm-line[data-problem-line="${line}"]`)).toBeVisible();

  await page.keyboard.insertText('\t');
  await expect(problems).toHaveCount(1);
  await expect(problems.first()).toHaveAttribute('data-line', String(line));
  await expect(problems.first()).toContainText('indented with a tab');
  await expect(problems.first()).toContainText('Fix: indent with spaces, not tabs (2 spaces at this level');
  await expect(problems.first()).not.toContainText(PARSER_WORDS);

  await page.keyboard.press('Backspace');
  await page.keyboard.type(' ');
  await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
});
