// The renderer keeps up with a 2,049-chunk run and its resume: no long task over 50 ms caused by the app, progress
// arriving at most ~10 batches a second, and no first message carrying every row at once.
//
// What a long task costs the app is its main thread's CPU time, read from a Chromium trace of the run (each task's
// `tdur`, thread time, beside `dur`, wall time). PerformanceObserver's long tasks are wall time: on a loaded 2-core
// box a 20 ms task preempted for 200 ms shows as a 220 ms long task (measured here: 54 and 246 ms ones in runs whose
// every task used under 50 ms of CPU), so they are recorded and reported, and the assertion is on thread time.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { expect, shoot, skipElectronWithoutBinary, test } from './fixtures.ts';

skipElectronWithoutBinary();
test.describe.configure({ mode: 'serial' });
// 4,608-byte chunks, two at a time: the simulated AWS bucket's 9 MiB make 2,049 chunks.
test.use({ ingestion: { chunk_size_mb: 0.00439453125, max_concurrent_chunks: 2 } });
const TOTAL = 2049;

/** An ingestProgress message as the page received it: when (performance.now), its size, phase, rows, and when the host built it (ms into the run). */
type Frame = [at: number, bytes: number, phase: string, rows: number, sentMs: number];

interface Watch {
  frames: Frame[];
  longTasks: { at: number; ms: number }[];
  /** Long animation frames with the scripts that ran in them, to say what a long task was. */
  frames50: { at: number; ms: number; scripts: string[] }[];
}

/**
 * The renderer processes of the Chromium this test launched (descendants of this worker), raised to nice -5 where
 * allowed. On a shared 2-core box with a load of 8-12, a renderer at normal priority is preempted for 50-180 ms at
 * a time, and PerformanceObserver then reports the machine's load as the app's long tasks; at -5 the same run shows
 * none. What is measured is still every task the page runs, just not starved. Returns how many were raised.
 */
function raiseOwnRenderers(): number {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const mine = (pid: number): boolean => {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) if (p === process.pid) return true;
    return false;
  };
  let raised = 0;
  for (const pid of parents.keys()) {
    if (!mine(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      execFileSync('renice', ['-n', '-5', '-p', String(pid)], { stdio: 'ignore' });
      raised += 1;
    } catch {
      // Not allowed (not root): measured at normal priority.
    }
  }
  return raised;
}

/** One task of a renderer's main thread, from the trace: wall time and the thread's CPU time in it. */
export interface MainThreadTask {
  /** Trace clock, ms. */
  at: number;
  wallMs: number;
  cpuMs: number;
}

interface TraceEvent {
  ph: string;
  name: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

/** Every top-level task run on a renderer main thread (`CrRendererMain`) in a Chromium trace of category toplevel. */
export function rendererMainTasks(trace: Buffer): MainThreadTask[] {
  const parsed = JSON.parse(trace.toString('utf8')) as { traceEvents?: TraceEvent[] } | TraceEvent[];
  const events = Array.isArray(parsed) ? parsed : (parsed.traceEvents ?? []);
  const mainThreads = new Set(events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  return events
    .filter((e) => e.ph === 'X' && e.name === 'ThreadControllerImpl::RunTask' && mainThreads.has(`${e.pid}:${e.tid}`))
    .map((e) => ({ at: e.ts / 1000, wallMs: (e.dur ?? 0) / 1000, cpuMs: (e.tdur ?? e.dur ?? 0) / 1000 }));
}

async function chunksDone(page: Page): Promise<number> {
  return Number((await page.getByTestId('chunks-done').innerText()).split('/')[0]);
}

export function perRun(frames: Frame[]): { batches: number; seconds: number; perSecond: number; busiestSecond: number; busiestSentSecond: number; closestSentMs: number; firstBytes: number; maxBytes: number; maxRows: number } {
  const seconds = frames.length > 1 ? (frames.at(-1)![0] - frames[0]![0]) / 1000 : 0;
  let busiest = 0;
  for (let i = 0, j = 0; i < frames.length; i += 1) {
    while (frames[i]![0] - frames[j]![0] >= 1000) j += 1;
    busiest = Math.max(busiest, i - j + 1);
  }
  // How close together the host built two batches of a run in progress (after the run ends, elapsedMs stops).
  const live = frames.filter((f) => f[2] === 'running' || f[2] === 'starting');
  let closest = Infinity;
  for (let i = 1; i < live.length; i += 1) closest = Math.min(closest, live[i]![4] - live[i - 1]![4]);
  // The most batches the host built within any one second, by its own clock (elapsedMs into the run).
  let busiestSent = 0;
  for (let i = 0, j = 0; i < live.length; i += 1) {
    while (live[i]![4] - live[j]![4] >= 1000) j += 1;
    busiestSent = Math.max(busiestSent, i - j + 1);
  }
  return {
    batches: frames.length,
    seconds,
    perSecond: seconds > 0 ? (frames.length - 1) / seconds : 0,
    busiestSecond: busiest,
    busiestSentSecond: busiestSent,
    closestSentMs: closest,
    firstBytes: frames[0]?.[1] ?? 0,
    maxBytes: Math.max(0, ...frames.map((f) => f[1])),
    maxRows: Math.max(0, ...frames.map((f) => f[3])),
  };
}

test('the trace blames the app for a task that keeps the main thread busy, and not for one that waits', async ({ page }) => {
  const browser = page.context().browser();
  test.skip(!browser, 'no Browser to trace through (Electron)');
  await expect(page.getByTestId('config-status')).toHaveText('valid · saved');
  await page.waitForTimeout(500); // the page settled: its first renders are not part of this
  // A fixed amount of work: hundreds of ms of CPU however loaded the machine is.
  await browser!.startTracing(page, { categories: ['toplevel'] });
  const result = await page.evaluate(() => {
    let x = 0;
    for (let i = 0; i < 300_000_000; i++) x = (x + i) % 1_000_003;
    return x;
  });
  expect(result).toBeGreaterThan(0);
  const busy = rendererMainTasks(await browser!.stopTracing()).filter((t) => t.cpuMs > 50);
  expect(busy, 'the busy task').toHaveLength(1);
  expect(busy[0]!.cpuMs).toBeGreaterThan(200);
  expect(busy[0]!.wallMs).toBeGreaterThanOrEqual(busy[0]!.cpuMs);
  // A task that only waits (300 ms in a timer) uses next to no CPU, however long it is on the wall.
  await browser!.startTracing(page, { categories: ['toplevel'] });
  await page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
  const waiting = rendererMainTasks(await browser!.stopTracing());
  expect(waiting.length).toBeGreaterThan(0);
  expect(waiting.filter((t) => t.cpuMs > 50)).toEqual([]);
});

test('a 2,049-chunk run, cancelled and resumed: no long task over 50 ms, at most ~10 progress batches a second', async ({ page }, testInfo) => {
  // Before the app's code: record every progress message as it arrives, and every long task.
  await page.addInitScript(() => {
    const watch: Watch = { frames: [], longTasks: [], frames50: [] };
    (window as unknown as { __watch: Watch }).__watch = watch;
    const Original = window.WebSocket;
    window.WebSocket = class extends Original {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener('message', (e) => {
          const text = String(e.data);
          if (!text.startsWith('{"event":"ingestProgress"')) return;
          const phase = /"phase":"(\w+)"/.exec(text)?.[1] ?? '';
          const rows = (text.match(/"seq":/g) ?? []).length;
          const sentMs = Number(/"elapsedMs":(\d+)/.exec(text)?.[1] ?? NaN);
          watch.frames.push([performance.now(), text.length, phase, rows, sentMs]);
        });
      }
    };
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) watch.longTasks.push({ at: Math.round(e.startTime), ms: Math.round(e.duration) });
    }).observe({ type: 'longtask' });
    new PerformanceObserver((list) => {
      for (const e of list.getEntries() as (PerformanceEntry & { scripts: { invoker: string; duration: number }[] })[]) {
        if (e.duration > 50) watch.frames50.push({ at: Math.round(e.startTime), ms: Math.round(e.duration), scripts: e.scripts.map((x) => `${x.invoker} ${Math.round(x.duration)} ms`) });
      }
    }).observe({ type: 'long-animation-frame' });
  });
  await page.reload();
  const raised = raiseOwnRenderers();
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Ingest' }).click();
  await expect(page.getByRole('button', { name: 'Start ingest' })).toBeEnabled();
  // Only what happens from the Start click on counts (loading the page is not part of a run).
  const since = await page.evaluate(() => performance.now());
  // Electron's page has no Browser to trace through: there, wall time is all there is.
  const browser = page.context().browser();
  await browser?.startTracing(page, { categories: ['toplevel'] });

  await page.getByRole('button', { name: 'Start ingest' }).click();
  // Polled gently: Playwright's queries run on the page's main thread too.
  await expect.poll(() => chunksDone(page), { timeout: 90_000, intervals: [250] }).toBeGreaterThan(TOTAL * 0.3);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('phase')).toHaveText('cancelled');
  await page.getByRole('table', { name: 'Unfinished runs' }).getByRole('button', { name: /^Resume / }).click();
  await expect(page.getByTestId('phase')).toHaveText('finished', { timeout: 120_000 });
  await expect(page.getByTestId('chunks-done')).toHaveText(`${TOTAL} / ${TOTAL}`);
  await page.waitForTimeout(300);
  const trace = browser ? await browser.stopTracing() : undefined;
  const watch = await page.evaluate(() => (window as unknown as { __watch: Watch }).__watch);
  await shoot(page, 'perf-finished', testInfo.project.name);

  // The resumed run keeps the run id: it begins with the first 'starting' message after the cancelled one.
  const frames = watch.frames.filter((f) => f[0] >= since);
  const cancelledAt = frames.findIndex((f) => f[2] === 'cancelled');
  const resumedAt = frames.findIndex((f, i) => i > cancelledAt && f[2] === 'starting');
  expect(cancelledAt).toBeGreaterThan(0);
  expect(resumedAt).toBeGreaterThan(cancelledAt);
  const run = perRun(frames.slice(0, resumedAt));
  const resumed = perRun(frames.slice(resumedAt));
  const longTasks = watch.longTasks.filter((t) => t.at >= since);
  const tasks = trace ? rendererMainTasks(trace) : undefined;
  const round = (ms: number): number => Math.round(ms * 10) / 10;
  const slowest = tasks ? [...tasks].sort((a, b) => b.cpuMs - a.cpuMs).slice(0, 3).map((t) => ({ cpuMs: round(t.cpuMs), wallMs: round(t.wallMs) })) : [];
  const figures = {
    renderersRaised: raised,
    longTasksWallMs: longTasks.map((t) => t.ms),
    mainThreadTasks: tasks?.length,
    tasksOver50WallMs: tasks?.filter((t) => t.wallMs > 50).map((t) => ({ wallMs: round(t.wallMs), cpuMs: round(t.cpuMs) })),
    mostCpuMs: slowest,
    run,
    resumed,
  };
  testInfo.annotations.push({ type: 'figures', description: JSON.stringify(figures) });
  process.stdout.write(`perf figures: ${JSON.stringify(figures)}\n`);

  const explain = (at: number) => watch.frames50.filter((f) => Math.abs(f.at - at) < 100).flatMap((f) => f.scripts);
  if (tasks) {
    // The trace saw the run: the tasks are there, and none spent over 50 ms of the main thread's CPU.
    expect(tasks.length, 'renderer main-thread tasks in the trace').toBeGreaterThan(1000);
    const appLong = tasks.filter((t) => t.cpuMs > 50).map((t) => ({ cpuMs: round(t.cpuMs), wallMs: round(t.wallMs) }));
    expect(appLong, `tasks that used over 50 ms of the main thread's CPU (long animation frames: ${JSON.stringify(longTasks.filter((t) => t.ms > 50).map((t) => ({ ...t, in: explain(t.at) })))})`).toEqual([]);
  } else {
    const over = longTasks.filter((t) => t.ms > 50).map((t) => ({ ...t, in: explain(t.at) }));
    expect(over, 'long tasks over 50 ms (with the scripts of their frame)').toEqual([]);
  }
  for (const r of [run, resumed]) {
    expect(r.batches).toBeGreaterThan(3);
    // The host builds batches at least 110 ms apart (a timer may fire a millisecond early): at most 10 a second.
    expect(r.closestSentMs).toBeGreaterThanOrEqual(109);
    expect(r.busiestSentSecond).toBeLessThanOrEqual(10);
    // As received, over the run: at most 10 a second. (Within one second of arrivals a loaded machine can hold a
    // frame up so it lands with the next, 12 in a second after 8 in the one before: reported, not asserted; the
    // pacing is the host's, asserted above on its own clock.)
    expect(r.perSecond).toBeLessThanOrEqual(10);
    // No batch carries every row: the first is small, and none is over the row cap.
    expect(r.firstBytes).toBeLessThan(60_000);
    expect(r.maxRows).toBeLessThanOrEqual(300);
  }
});
