// Pull mode's fault rows (issue 14). The node agents run with --nats and --id: each reads its own chunks from the
// store and takes its work items from a real nats-server (-js, file storage, a fresh one per trial);
// `cloud-ingest run --json` is the coordinator, a CLI child process. A worker SIGKILLed mid-run, the nats-server
// restarted mid-run, and a slow worker. Judged like every other row (harness.ts): nothing lost, nothing duplicated,
// no chunk with fewer good copies on live nodes than `replicas`, verify clean and every file reassembled byte for
// byte right after the run; and no agent wrote a chunk twice (a redelivered item finds its chunk kept).
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkResult } from '../../shared/cluster/contract.ts';
import { ManualCoordinator } from '../cluster/harness.ts';
import { agentLogs } from '../helpers/agents.ts';
import { agentSidecars } from '../helpers/agent-store.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { S3RVER_KEY, startS3 } from '../helpers/emulators.ts';
import type { Emulator } from '../helpers/emulators.ts';
import { startNatsServer } from '../helpers/nats.ts';
import type { NatsServer } from '../helpers/nats.ts';
import { completeRun } from './edge-scenarios.ts';
import { tcpProxy } from './proxies.ts';
import {
  agentSpecs,
  emptyRow,
  finishTrial,
  holdsListeningSocket,
  killAgentForReal,
  localSourceYaml,
  makeFiles,
  makeProject,
  mixedFiles,
  pick,
  rng,
  spawnCli,
  startAgents,
  stopAgents,
  tempRoot,
  timed,
  withEnv,
} from './harness.ts';
import type { CliChild, Cluster, Project, ScenarioOptions, ScenarioRow, SourceFile } from './harness.ts';

/** Short enough that a dead or frozen worker is noticed within seconds, long enough for a loaded 2-core box. */
const PULL_CLUSTER = { ack_wait_seconds: 5, worker_timeout_seconds: 3, max_deliver: 5 };
const RUN_TIMEOUT_MS = 180_000;

interface PullTrial {
  nats: NatsServer;
  cluster: Cluster;
  project: Project;
  args: string[];
}

/**
 * A fresh nats-server, three agents pulling for a1..a3 (`env[i]` for the i-th agent's process only), and a
 * pull-mode project over `sourceYaml`.
 */
async function pullTrial(sourceYaml: string, replicas: number, env?: Record<string, string>[]): Promise<PullTrial> {
  const nats = await startNatsServer();
  try {
    const args = (id: string): string[] => ['--nats', nats.url, '--id', id, '--pull-concurrency', '2'];
    const cluster = await startAgents(3, [0, 1, 2].map((i) => ({ args, ...(env?.[i] ? { env: env[i] } : {}) })));
    const project = await makeProject({
      sourceYaml,
      nodes: agentSpecs(cluster),
      chunkMb: 1,
      replicas,
      concurrency: 6,
      retries: 2,
      placement: 'stable',
      pull: { natsUrl: nats.url, cluster: PULL_CLUSTER },
    });
    const cloud = sourceYaml.trimStart().startsWith('aws:') ? 'aws' : 'local';
    return { nats, cluster, project, args: ['run', '--config', project.configPath, '--cloud', cloud, '--json'] };
  } catch (error) {
    await nats.kill();
    throw error;
  }
}

async function endTrial(t: PullTrial): Promise<void> {
  for (const a of t.cluster.agents) resume(a);
  await stopAgents(t.cluster);
  await t.nats.kill();
}

async function sidecars(dir: string): Promise<number> {
  return (await agentSidecars(dir)).length;
}

/** Waits until `ready()` or the child exits; true when the child is still running. */
async function runningUntil(child: { exited: Promise<unknown> }, ready: () => Promise<boolean>): Promise<boolean> {
  let exited = false;
  void child.exited.then(() => (exited = true));
  while (!exited && !(await ready())) await sleep(3);
  return !exited;
}

/** The CLI child's end, SIGKILLed (and the trial failed) past RUN_TIMEOUT_MS. */
async function ended(child: CliChild, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const result = await child.exited;
  clearTimeout(timer);
  if (result.signal === 'SIGKILL') throw new Error(`cloud-ingest ${args.join(' ')} did not finish within ${RUN_TIMEOUT_MS / 1000} s\n${child.stderr().slice(-3000)}`);
  return { code: result.code, stdout: child.stdout(), stderr: child.stderr() };
}

/** No agent wrote one chunk twice: each "chunk stored ... created" log line is a write that reached its store. */
function checkWrittenOnce(row: ScenarioRow, label: string, cluster: Cluster): void {
  for (const [i, agent] of cluster.agents.entries()) {
    const created = agentLogs(agent).filter((l) => l.msg === 'chunk stored' && l.status === 'created').map((l) => String(l.id));
    const twice = created.filter((id, k) => created.indexOf(id) !== k);
    if (twice.length > 0) row.failures.push(`${label}: a${i + 1} wrote ${[...new Set(twice)].join(', ')} more than once`);
  }
}

/** A trial whose run finished before its fault could be injected proves nothing: tried again, up to 3 times. */
async function withFault(row: ScenarioRow, label: string, attempt: (tryIndex: number) => Promise<boolean>): Promise<number> {
  for (let i = 0; i < 3; i++) if (await attempt(i)) return i;
  row.trials++;
  row.failures.push(`${label}: the run finished before the fault could be injected, on every attempt`);
  return 3;
}

// ---- 9a. a worker SIGKILLed mid-run ------------------------------------------------------------------------------

export function pullWorkerKilled(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('9a. pull mode: a worker (agent with --nats) SIGKILLed mid-run; verify right after, the worker still dead');
  let startedOver = 0;
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const replicas = trial % 2 === 0 ? 1 : 2;
      const label = `pull-worker-killed trial ${trial} (replicas ${replicas}, seed ${o.seed})`;
      const random = rng(`${o.seed}/pull-worker-killed/${trial}`);
      const sourceDir = await tempRoot('ci-faults-src-');
      const files = await makeFiles(sourceDir, mixedFiles(pick(random, [24, 32])), `pull-worker-killed/${o.seed}/${trial}`);
      const victim = Math.floor(random() * 3);
      let holds = 1 + Math.floor(random() * 4);
      startedOver += await withFault(row, label, async () => {
        const t = await pullTrial(localSourceYaml(sourceDir), replicas);
        try {
          const child = spawnCli(t.args);
          const agent = t.cluster.agents[victim]!;
          if (!(await runningUntil(child, async () => (await sidecars(agent.dir)) >= holds))) {
            holds = 1;
            await child.exited;
            return false;
          }
          await killAgentForReal(agent);
          const done = await completeRun(row, label, t.args, await ended(child, t.args));
          if (!done) return true;
          const victimId = `a${victim + 1}`;
          if (done.manifest.nodes.find((n) => n.id === victimId)?.healthy !== false) row.failures.push(`${label}: ${victimId} was killed but the manifest calls it healthy`);
          checkWrittenOnce(row, label, t.cluster);
          await finishTrial(row, label, t.project, files, done);
          o.log?.(`${label}: ${victimId} killed holding ${holds}+ chunk(s); ${done.manifest.totals.retries} retries, ${done.manifest.totals.replacements} re-placements; status ${done.manifest.status}`);
          return true;
        } finally {
          await endTrial(t);
        }
      });
    }
    if (startedOver > 0) row.notes.push(`${startedOver} run(s) finished before their kill point and were started over`);
  });
}

// ---- 9b. the nats-server restarted mid-run -----------------------------------------------------------------------

export function pullNatsRestarted(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('9b. pull mode: nats-server restarted mid-run (SIGTERM or SIGKILL, file storage)');
  let startedOver = 0;
  const outages: string[] = [];
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const signal = trial % 2 === 0 ? 'SIGTERM' : 'SIGKILL';
      const label = `pull-nats-restart trial ${trial} (${signal}, seed ${o.seed})`;
      const random = rng(`${o.seed}/pull-nats-restart/${trial}`);
      const sourceDir = await tempRoot('ci-faults-src-');
      const files = await makeFiles(sourceDir, mixedFiles(pick(random, [32, 40])), `pull-nats-restart/${o.seed}/${trial}`);
      let after = 3 + Math.floor(random() * 8);
      const downMs = pick(random, [300, 1000, 2000]);
      startedOver += await withFault(row, label, async () => {
        const t = await pullTrial(localSourceYaml(sourceDir), 1);
        try {
          const child = spawnCli(t.args);
          const total = async (): Promise<number> => (await Promise.all(t.cluster.agents.map((a) => sidecars(a.dir)))).reduce((s, n) => s + n, 0);
          if (!(await runningUntil(child, async () => (await total()) >= after))) {
            after = 1;
            await child.exited;
            return false;
          }
          let exited = false;
          void child.exited.then(() => (exited = true));
          const downAt = performance.now();
          await (signal === 'SIGTERM' ? t.nats.stop() : t.nats.kill());
          await sleep(downMs);
          await t.nats.start();
          const restartedAt = performance.now();
          // A run that could finish while the server was away had nothing left to ask of it: not a restart mid-run.
          if (exited) {
            after = Math.max(1, Math.floor(after / 2));
            return false;
          }
          const run = await ended(child, t.args);
          outages.push(`${signal} after ${after} chunks, ${((restartedAt - downAt) / 1000).toFixed(1)} s down, run ended ${((performance.now() - restartedAt) / 1000).toFixed(1)} s after the restart`);
          const done = await completeRun(row, label, t.args, run);
          if (!done) return true;
          checkWrittenOnce(row, label, t.cluster);
          await finishTrial(row, label, t.project, files, done);
          o.log?.(`${label}: ${outages.at(-1)}; ${done.manifest.totals.retries} retries; status ${done.manifest.status}`);
          return true;
        } finally {
          await endTrial(t);
        }
      });
    }
    if (outages.length) row.notes.push(`restarts: ${outages.join('; ')}`);
    if (startedOver > 0) row.notes.push(`${startedOver} run(s) finished before the server was back (nothing left to ask of it) and were started over with an earlier restart`);
  });
}

// ---- 9c. a slow worker ---------------------------------------------------------------------------------------------

function pause(agent: AgentProcess): void {
  if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGSTOP');
}

function resume(agent: AgentProcess): void {
  if (agent.proc.exitCode === null && agent.proc.signalCode === null) agent.proc.kill('SIGCONT');
}

/** Waits until a resumed agent answers its health endpoint, then a little longer for items it held to finish. */
async function settled(agent: AgentProcess, ms: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${agent.url}/v1/health`, { headers: { authorization: `Bearer ${agent.token}` }, signal: AbortSignal.timeout(2000) }).then(
      (r) => (void r.body?.cancel(), r.status === 200),
      () => false,
    );
    if (ok) break;
    await sleep(100);
  }
  await sleep(ms);
}

/** Every result the workers recorded for `runId` (the result stream keeps them), read once the run is over. */
async function recordedResults(natsUrl: string, runId: string, atLeast: number): Promise<WorkResult[]> {
  const reader = await ManualCoordinator.open(natsUrl, [], { ack_wait_seconds: PULL_CLUSTER.ack_wait_seconds, max_deliver: PULL_CLUSTER.max_deliver });
  try {
    return await reader.results(runId, (r) => r.length >= atLeast, 10_000);
  } finally {
    await reader.close();
  }
}

/** Bytes per second the slow worker reads the store at: one 1 MiB chunk takes ~6.4 s, past the 5 s ack wait. */
const SLOW_READ_RATE = 160 * 1024;

/**
 * `slow`: the source is s3rver, and one worker reaches it through a throttled link (SLOW_READ_RATE per
 * connection), so each of its chunks takes longer than the ack wait: it must say it is still working, or its items
 * would be handed out again. `frozen`: one worker's process is stopped (SIGSTOP) once it holds a chunk, past the
 * worker timeout, and woken (SIGCONT) after the run, when it finishes items the run has long moved elsewhere.
 */
export function pullSlowWorker(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('9c. pull mode: a slow worker (reads slower than the ack wait, or frozen past the worker timeout and woken after the run)');
  let startedOver = 0;
  const notes: string[] = [];
  return timed(row, async () => {
    const s3 = await startS3();
    try {
      await withEnv({ AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_KEY, AWS_REGION: 'us-east-1' }, async () => {
        for (let trial = 0; trial < o.trials; trial++) {
          const mode = trial % 2 === 0 ? 'slow' : 'frozen';
          const label = `pull-slow trial ${trial} (${mode}, seed ${o.seed})`;
          const random = rng(`${o.seed}/pull-slow/${trial}`);
          const victim = Math.floor(random() * 3);
          const victimId = `a${victim + 1}`;
          const sourceDir = await tempRoot('ci-faults-src-');
          const files: SourceFile[] = await makeFiles(sourceDir, mixedFiles(mode === 'slow' ? pick(random, [10, 12]) : pick(random, [24, 32])), `pull-slow/${o.seed}/${trial}`);
          if (mode === 'slow') {
            startedOver += await withFault(row, label, () => slowTrial({ row, label, s3, files, victim, trial, notes, log: o.log }));
            continue;
          }
          startedOver += await withFault(row, label, async () => {
            const t = await pullTrial(localSourceYaml(sourceDir), 1);
            try {
              const agent = t.cluster.agents[victim]!;
              if (!(await holdsListeningSocket(agent.proc.pid!, agent.port))) throw new Error(`pid ${agent.proc.pid} is not the agent serving port ${agent.port}: stopping it would not freeze the worker`);
              const child = spawnCli(t.args);
              if (!(await runningUntil(child, async () => (await sidecars(agent.dir)) >= 1))) {
                await child.exited;
                return false;
              }
              pause(agent);
              const frozenAt = performance.now();
              const run = await ended(child, t.args);
              const frozenSeconds = (performance.now() - frozenAt) / 1000;
              resume(agent);
              // Woken, it finishes the items it had taken, late, for a run that has moved them elsewhere.
              await settled(agent, 3000);
              const done = await completeRun(row, label, t.args, run);
              if (!done) return true;
              const movedOff = done.manifest.chunks.filter((c) => c.movedFrom.includes(victimId)).length;
              if (movedOff === 0) row.failures.push(`${label}: ${victimId} was frozen past the worker timeout but no chunk was moved off it`);
              checkWrittenOnce(row, label, t.cluster);
              await finishTrial(row, label, t.project, files, done);
              notes.push(`${victimId} frozen for the last ${frozenSeconds.toFixed(1)} s of the run, ${movedOff} chunks moved off it`);
              o.log?.(`${label}: ${notes.at(-1)}; ${done.manifest.totals.retries} retries; status ${done.manifest.status}`);
              return true;
            } finally {
              await endTrial(t);
            }
          });
        }
      });
    } finally {
      await s3.stop();
    }
    if (notes.length) row.notes.push(notes.join('; '));
    if (startedOver > 0) row.notes.push(`${startedOver} run(s) finished before the worker could be frozen and were started over`);
  });
}

async function slowTrial(o: {
  row: ScenarioRow;
  label: string;
  s3: Emulator;
  files: SourceFile[];
  victim: number;
  trial: number;
  notes: string[];
  log: ScenarioOptions['log'];
}): Promise<boolean> {
  const { row, label, s3, files, victim } = o;
  const victimId = `a${victim + 1}`;
  const bucket = `pull-slow-${o.trial}-${Date.now().toString(36)}`;
  await s3.createBucket(bucket);
  for (const f of files) await s3.put(bucket, f.key, f.size > 0 ? { file: f.path } : Buffer.alloc(0));
  const link = await tcpProxy({ port: s3.port }, SLOW_READ_RATE);
  const direct = `http://${s3.host}:${s3.port}`;
  // No endpoint in the config: each process takes its own from AWS_ENDPOINT_URL_S3 (the SDK's convention).
  const endpoints = [0, 1, 2].map((i) => ({ AWS_ENDPOINT_URL_S3: i === victim ? link.url : direct }));
  const t = await pullTrial(`  aws: { type: s3, bucket: ${bucket}, region: us-east-1 }`, 1, endpoints);
  try {
    const child = spawnCli(t.args, { AWS_ENDPOINT_URL_S3: direct });
    const started = performance.now();
    const done = await completeRun(row, label, t.args, await ended(child, t.args));
    const seconds = (performance.now() - started) / 1000;
    if (!done) return true;
    const onVictim = done.manifest.chunks.filter((c) => c.copies.some((x) => x.nodeId === victimId));
    const slowest = Math.max(0, ...onVictim.map((c) => c.size)) / SLOW_READ_RATE;
    if (onVictim.length === 0) row.failures.push(`${label}: the slow ${victimId} kept none of its chunks`);
    // The point of the trial: an item read for longer than the ack wait was never handed out a second time.
    const results = await recordedResults(t.nats.url, done.manifest.runId, done.manifest.chunks.length);
    const redelivered = results.filter((r) => r.nodeId === victimId && r.delivery > 1);
    if (slowest <= PULL_CLUSTER.ack_wait_seconds) row.failures.push(`${label}: ${victimId}'s largest chunk reads in ${slowest.toFixed(1)} s, inside the ${PULL_CLUSTER.ack_wait_seconds} s ack wait; the trial proves nothing`);
    for (const r of redelivered) row.failures.push(`${label}: ${r.chunkId} was delivered ${r.delivery} times to the slow ${victimId}: it did not keep its item with working()`);
    checkWrittenOnce(row, label, t.cluster);
    await finishTrial(row, label, t.project, files, done);
    o.notes.push(`${victimId} read at ${SLOW_READ_RATE / 1024} KiB/s (~${slowest.toFixed(1)} s per chunk, ack wait ${PULL_CLUSTER.ack_wait_seconds} s): ${onVictim.length} chunks kept, ${redelivered.length} redelivered, run ${seconds.toFixed(1)} s`);
    o.log?.(`${label}: ${o.notes.at(-1)}; status ${done.manifest.status}`);
    return true;
  } finally {
    await link.close();
    await endTrial(t);
  }
}
