// Pull mode in the app (issue 14), with a real nats-server and three real node agents pulling their own chunks
// (--nats, --id): the Nodes screen shows each worker's heartbeat and its share of the run; the Ingest screen runs a
// pull-mode ingest as it runs a push-mode one (progress, distribution, 100 %), and verify passes; a worker killed
// with SIGKILL turns silent on screen.
import { test as base, expect } from '@playwright/test';
import type { Browser, Page } from '@playwright/test';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNats, startWorker } from './cluster.ts';
import type { Started, Worker } from './cluster.ts';
import { launchChromium, shoot, startServeProcess, stopProcessGroup, VIEWPORTS } from './fixtures.ts';
import type { AppMode } from './fixtures.ts';

const test = base.extend<{ mode: AppMode }>({ mode: ['serve', { option: true }] });
test.describe.configure({ mode: 'serial' });
test.skip(({ mode }) => mode === 'electron', 'serve mode only: the spec starts its own cluster and app');

const IDS = ['worker-a', 'worker-b', 'worker-c'];
const FILES: [string, number][] = [
  ['train/shard-000.bin', 6 * 1024 * 1024],
  ['train/shard-001.bin', 5 * 1024 * 1024],
  ['val/part.bin', 3 * 1024 * 1024 + 1234],
];
const CHUNK = 128 * 1024;
const TOTAL_CHUNKS = FILES.reduce((n, [, size]) => n + Math.ceil(size / CHUNK), 0);

let dir: string;
let nats: Started & { url: string };
let workers: Worker[] = [];
let serve: ChildProcess;
let browser: Browser;
let page: Page;

/** Deterministic bytes, so a failure can be replayed. */
function bytesFor(name: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(name).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

test.beforeAll(async () => {
  test.setTimeout(120_000);
  dir = mkdtempSync(join(tmpdir(), 'cloud-ingest-e2e-pull-'));
  for (const [key, size] of FILES) {
    mkdirSync(join(dir, 'source', key, '..'), { recursive: true });
    writeFileSync(join(dir, 'source', key), bytesFor(key, size));
  }
  nats = await startNats(join(dir, 'nats'));
  workers = await Promise.all(IDS.map((id) => startWorker(id, join(dir, 'agents', id), nats.url)));
  mkdirSync(join(dir, 'config'));
  const configPath = join(dir, 'config', 'data_sources.yml');
  writeFileSync(
    configPath,
    [
      '# Pull mode: three node agents pull their own chunks from NATS.',
      'data_sources:',
      '  local: { type: "local", path: "./source" }',
      `ingestion: { chunk_size_mb: ${CHUNK / 1024 / 1024}, max_concurrent_chunks: 6, retry_delay_seconds: 0.2, mode: pull }`,
      `cluster: { nats_url: "${nats.url}", worker_timeout_seconds: 3 }`,
      'nodes:',
      ...workers.map((w) => `  - { id: ${w.id}, url: ${w.url}, token_env: ${w.tokenEnv} }`),
      '',
    ].join('\n'),
  );
  const tokens = Object.fromEntries(workers.map((w) => [w.tokenEnv, w.token]));
  const started = await startServeProcess({ configPath }, { ...tokens, CLOUD_PROVIDER: 'local' });
  serve = started.child;
  browser = await launchChromium();
  page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  await page.goto(started.url);
});

test.afterAll(async () => {
  await browser?.close();
  if (serve) await stopProcessGroup(serve);
  await Promise.all(workers.map((w) => w.stop()));
  await nats?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function go(screen: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: screen }).click();
}

test('Nodes: every worker’s heartbeat, fresh, with its figures; the summary names the NATS server', async ({ mode }, testInfo) => {
  void mode;
  await go('Nodes');
  await expect(page.getByTestId('pull-summary')).toContainText(`Workers heard on ${nats.url}`);
  await expect(page.getByTestId('pull-summary')).toContainText('3 of 3 workers sent a heartbeat in the last 3 s');
  for (const id of IDS) {
    await expect(page.getByTestId(`node-${id}`)).toHaveAttribute('data-state', 'healthy');
    const worker = page.getByTestId(`worker-${id}`);
    await expect(worker).toHaveAttribute('data-worker-state', 'alive');
    await expect(worker.getByTestId('heartbeat-age')).toHaveText(/^Pulling · heartbeat \d+\.\d s ago$/);
    await expect(worker.getByTestId('worker-inflight')).toHaveText('0');
  }
  // Heartbeats keep coming: the age stays under two seconds over several refreshes.
  for (let i = 0; i < 4; i++) {
    const text = await page.getByTestId('worker-worker-a').getByTestId('heartbeat-age').innerText();
    expect(Number(/(\d+\.\d) s ago/.exec(text)?.[1])).toBeLessThan(2.5);
    await page.waitForTimeout(700);
  }
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize(viewport);
    await shoot(page, `nodes-pull-${viewport.width}x${viewport.height}`, testInfo.project.name);
  }
  await page.setViewportSize({ width: 1400, height: 900 });
});

test('Ingest: a pull-mode run reaches 100 % with live progress and every worker holding a share; verify passes', async ({ mode }, testInfo) => {
  void mode;
  test.setTimeout(180_000);
  await go('Ingest');
  await page.getByRole('button', { name: 'Start ingest' }).click();
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 150_000 });
  await expect(page.getByTestId('percent')).toHaveText('100%');
  await expect(page.getByTestId('chunks-done')).toHaveText(new RegExp(`^${TOTAL_CHUNKS}\\s*/\\s*${TOTAL_CHUNKS}`));
  let placed = 0;
  for (const id of IDS) {
    const chunks = Number(await page.getByTestId(`dist-${id}`).getAttribute('data-chunks'));
    expect(chunks, id).toBeGreaterThan(0);
    placed += chunks;
  }
  expect(placed).toBe(TOTAL_CHUNKS);
  await expect(page.getByTestId('chunk-list')).toHaveAttribute('aria-rowcount', String(TOTAL_CHUNKS));
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize(viewport);
    await shoot(page, `ingest-pull-${viewport.width}x${viewport.height}`, testInfo.project.name);
  }
  await page.setViewportSize({ width: 1400, height: 900 });

  // The Nodes screen: each worker's share of this run, all done, and what its heartbeat counted.
  await go('Nodes');
  let shares = 0;
  for (const id of IDS) {
    const run = page.getByTestId(`worker-${id}`).getByTestId('worker-run');
    await expect(run).toBeVisible();
    const done = Number(await run.getAttribute('data-done'));
    expect(done).toBe(Number(await run.getAttribute('data-placed')));
    shares += done;
    await expect.poll(async () => Number(await page.getByTestId(`worker-${id}`).getByTestId('worker-stored').innerText())).toBeGreaterThanOrEqual(done);
  }
  expect(shares).toBe(TOTAL_CHUNKS);

  await go('Received chunks');
  await page.getByRole('button', { name: 'Verify all' }).click();
  await expect(page.getByTestId('verify-result')).toContainText('verified: checksums match', { timeout: 60_000 });
});

test('a worker killed with SIGKILL turns silent on the Nodes screen; the others keep pulling', async ({ mode }, testInfo) => {
  void mode;
  await go('Nodes');
  await workers[2]!.kill();
  const dead = page.getByTestId('worker-worker-c');
  await expect(dead).toHaveAttribute('data-worker-state', 'silent', { timeout: 15_000 });
  await expect(dead.getByTestId('heartbeat-age')).toContainText('Silent (over 3 s)');
  await expect(page.getByTestId('pull-summary')).toContainText('2 of 3 workers');
  for (const id of IDS.slice(0, 2)) await expect(page.getByTestId(`worker-${id}`)).toHaveAttribute('data-worker-state', 'alive');
  await shoot(page, 'nodes-pull-worker-killed', testInfo.project.name);
});
