// The fault scenarios of issue 6 (issue 12's are in edge-scenarios.ts). Each runs seeded trials against real components (the engine CLI as a child
// process, s3rver, node agent processes, real folders), ends every trial with verify and a byte-exact reassembly
// of every file, audits the nodes independently (harness.ts) and returns one row of the results table.
// `npm run faults` runs them with many trials (scripts/faults.ts); `npm test` with a few (faults.test.ts).
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runIngest } from '../../electron/engine/ingest.ts';
import type { IngestResult } from '../../electron/engine/ingest.ts';
import { readManifest } from '../../electron/engine/manifest.ts';
import { AgentNode } from '../../electron/engine/nodes/agent-node.ts';
import type { DetectionResult, IngestEvent, ManifestChunk } from '../../shared/types.ts';
import { spawnAgent } from '../helpers/agents.ts';
import { S3RVER_KEY, startS3 } from '../helpers/emulators.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { heldCount } from '../nodes/folder-layout.ts';
import {
  agentSpecs,
  canonicalCopies,
  emptyRow,
  finishTrial,
  hasStackTrace,
  LOCAL,
  localSourceYaml,
  makeFiles,
  makeProject,
  MiB,
  mixedFiles,
  partialFiles,
  pick,
  rng,
  runCliToEnd,
  spawnCli,
  startAgents,
  stopAgents,
  tempRoot,
  timed,
} from './harness.ts';
import type { NodeSpec, Project, ScenarioOptions, ScenarioRow } from './harness.ts';
import { agentKilledForReal, hashThreadKilled, namesThroughAgents } from './edge-scenarios.ts';
import { corruptingProxy, tcpProxy } from './proxies.ts';
import { pullNatsRestarted, pullSlowWorker, pullWorkerKilled } from './pull-scenarios.ts';

const AWS: DetectionResult = { cloud: 'aws', signal: 'flag', detail: '--cloud aws (fault suite)', elapsedMs: 0, probes: [] };

// ---- 1. the engine process SIGKILLed at seeded points, then resumed --------------------------------------------

/** Complete copies on the nodes (index lines and sidecars: see test/nodes/folder-layout.ts). */
async function countSidecars(dirs: Iterable<string>): Promise<number> {
  let n = 0;
  for (const dir of dirs) n += await heldCount(dir);
  return n;
}

interface KillPoint {
  /** Kill once this many complete copies are on the nodes (0: by time instead). */
  copies: number;
  /** Extra delay before the kill, ms (from spawn when `copies` is 0). */
  delayMs: number;
}

/** Starts the CLI and SIGKILLs it at the point; resolves whether the kill happened before it exited by itself. */
async function runAndKill(project: Project, args: string[], point: KillPoint): Promise<{ killed: boolean; code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args);
  let exited = false;
  void child.exited.then(() => (exited = true));
  if (point.copies > 0) {
    while (!exited && (await countSidecars(project.nodeDirs.values())) < point.copies) await sleep(3);
  }
  if (!exited) await Promise.race([sleep(point.delayMs), child.exited]);
  const killed = !exited;
  if (killed) child.proc.kill('SIGKILL');
  const result = await child.exited;
  return { killed: killed && result.signal === 'SIGKILL', code: result.code, stdout: child.stdout(), stderr: child.stderr() };
}

interface JournalView {
  runId: string;
  /** Chunk id → what the journal says was delivered. */
  chunks: Map<string, ManifestChunk>;
}

async function findJournal(manifestDir: string): Promise<JournalView | undefined> {
  let names: string[];
  try {
    names = (await readdir(manifestDir)).filter((n) => n.endsWith('.journal.jsonl'));
  } catch {
    return undefined;
  }
  if (names.length === 0) return undefined;
  if (names.length > 1) throw new Error(`more than one journal in ${manifestDir}: ${names.join(', ')}`);
  const runId = names[0]!.slice(0, -'.journal.jsonl'.length);
  const chunks = new Map<string, ManifestChunk>();
  for (const line of (await readFile(join(manifestDir, names[0]!), 'utf8')).split('\n')) {
    try {
      const entry = JSON.parse(line) as { type?: string; chunk?: ManifestChunk };
      if (entry.type === 'chunk' && entry.chunk) chunks.set(entry.chunk.id, entry.chunk);
    } catch {
      // a torn last line
    }
  }
  return { runId, chunks };
}

type FileStamp = { ino: number; mtimeMs: number; size: number };

async function stampsOf(journal: JournalView, project: Project): Promise<Map<string, FileStamp>> {
  const stamps = new Map<string, FileStamp>();
  const onNodes = await canonicalCopies(project.nodeDirs);
  for (const chunk of journal.chunks.values()) {
    for (const copy of chunk.copies) {
      const found = onNodes.find((c) => c.id === chunk.id && c.nodeId === copy.nodeId);
      if (!found) continue;
      const s = await stat(found.dataPath);
      stamps.set(`${chunk.id}@${copy.nodeId}`, { ino: s.ino, mtimeMs: s.mtimeMs, size: s.size });
    }
  }
  return stamps;
}

export function killAndResume(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('1. engine SIGKILLed at a seeded point, then resumed');
  let killedBeforeJournal = 0;
  let finishedFirst = 0;
  let earlierPoints = 0;
  let doubleKills = 0;
  let sourceChanges = 0;
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const label = `kill trial ${trial} (seed ${o.seed})`;
      const random = rng(`${o.seed}/kill/${trial}`);
      const sourceDir = await tempRoot('ci-faults-src-');
      let files = await makeFiles(sourceDir, mixedFiles(pick(random, [16, 24, 32])), `kill/${o.seed}/${trial}`);
      const replicas = random() < 0.5 ? 1 : 2;
      const chunkMb = pick(random, [1, 2]);
      const concurrency = pick(random, [2, 3, 4]);
      const totalCopies = files.reduce((s, f) => s + Math.ceil(f.size / (chunkMb * MiB)), 0) * replicas;
      let point: KillPoint =
        random() < 0.15 ? { copies: 0, delayMs: Math.round(100 + random() * 700) } : { copies: 1 + Math.floor(random() * 0.9 * totalCopies), delayMs: Math.round(random() * 25) };

      // A run that finishes before its kill point proves nothing: start over on fresh nodes with an earlier point.
      let project!: Project;
      let first!: Awaited<ReturnType<typeof runAndKill>>;
      for (let attempt = 0; attempt < 4; attempt++) {
        const nodesRoot = await tempRoot('ci-faults-nodes-');
        const nodes: NodeSpec[] = [1, 2, 3].map((n) => ({ id: `node-${n}`, path: join(nodesRoot, `node-${n}`) }));
        project = await makeProject({ sourceYaml: localSourceYaml(sourceDir), nodes, chunkMb, replicas, concurrency });
        first = await runAndKill(project, ['run', '--config', project.configPath, '--cloud', 'local', '--json'], point);
        if (first.killed) break;
        earlierPoints++;
        point = point.copies > 0 ? { copies: Math.max(1, Math.floor(point.copies / 2)), delayMs: 0 } : { copies: 0, delayMs: Math.floor(point.delayMs / 2) };
      }
      const config = ['--config', project.configPath, '--cloud', 'local'];
      const outputs = [first.stdout + first.stderr];
      if (!first.killed) {
        finishedFirst++;
        row.failures.push(`${label}: the run finished before every kill point tried, so nothing was killed`);
      }
      let journal = await findJournal(project.manifestDir);
      if (!journal) killedBeforeJournal++;

      // Some trials are killed a second time, while resuming.
      const double = journal !== undefined && random() < 0.25;
      if (double) {
        const again = await runAndKill(project, ['run', ...config, '--resume', journal!.runId], { copies: (await countSidecars(project.nodeDirs.values())) + 1 + Math.floor(random() * 4), delayMs: Math.round(random() * 25) });
        outputs.push(again.stdout + again.stderr);
        if (again.killed) doubleKills++;
        journal = await findJournal(project.manifestDir);
      }

      // Some trials change a file between the kill and the resume: it must be read again, never mixed.
      let changedKey: string | undefined;
      if (journal && random() < 0.2) {
        const victim = files.find((f) => f.key === 'shard-b.bin')!;
        changedKey = victim.key;
        const newSize = victim.size + pick(random, [0, 1, -1000, 300_000]);
        await rm(victim.path);
        const [fresh] = await makeFiles(sourceDir, [{ key: victim.key, size: newSize }], `kill/${o.seed}/${trial}/changed`);
        files = files.map((f) => (f.key === victim.key ? fresh! : f));
        sourceChanges++;
      }

      const stamps = journal ? await stampsOf(journal, project) : new Map<string, FileStamp>();
      const resumeArgs = journal ? ['run', ...config, '--resume', journal.runId] : ['run', ...config];
      const last = await runCliToEnd(resumeArgs);
      outputs.push(last.stdout + last.stderr);
      if (last.code !== 0) {
        row.failures.push(`${label}: \`cloud-ingest ${resumeArgs.join(' ')}\` exited ${last.code}, expected 0:\n${last.stderr.slice(-2000)}`);
        row.trials++;
        continue;
      }
      for (const text of outputs) if (hasStackTrace(text)) row.failures.push(`${label}: the CLI printed a stack trace:\n${text.slice(-1500)}`);

      const runId = journal?.runId ?? (await findJournal(project.manifestDir))?.runId;
      const manifestPath = join(project.manifestDir, `${runId}.json`);
      const manifest = await readManifest(manifestPath);
      if (journal && manifest.runId !== journal.runId) row.failures.push(`${label}: resumed manifest has run id ${manifest.runId}, the journal ${journal.runId}`);

      // Chunks the journal had as delivered were neither sent again nor moved (unless their file changed).
      if (journal) {
        const after = await stampsOf(journal, project);
        for (const [where, before] of stamps) {
          const chunkId = where.slice(0, where.lastIndexOf('@'));
          if (changedKey && journal.chunks.get(chunkId)?.file === changedKey) continue;
          const now = after.get(where);
          if (!now || now.ino !== before.ino || now.mtimeMs !== before.mtimeMs) row.failures.push(`${label}: ${where} was journaled as delivered before the kill but was written again on resume`);
        }
        for (const chunk of journal.chunks.values()) {
          if (changedKey && chunk.file === changedKey) continue;
          const final = manifest.chunks.find((c) => c.id === chunk.id);
          const same = final && final.copies.map((c) => c.nodeId).sort().join() === chunk.copies.map((c) => c.nodeId).sort().join();
          if (!same) row.failures.push(`${label}: ${chunk.id} was journaled on ${chunk.copies.map((c) => c.nodeId).join('+')}, the resumed manifest has ${final?.copies.map((c) => c.nodeId).join('+') ?? 'nothing'}`);
        }
        const changedWasJournaled = changedKey !== undefined && [...journal.chunks.values()].some((c) => c.file === changedKey);
        if (changedWasJournaled && !(last.stderr.includes(changedKey!) && /changed/i.test(last.stderr))) {
          row.failures.push(`${label}: ${changedKey} changed before the resume, but the resume printed no warning naming it:\n${last.stderr.slice(-1500)}`);
        }
      }
      await finishTrial(row, label, project, files, { manifest, manifestPath });
      const partial = await partialFiles(project.nodeDirs);
      if (partial > 0) row.notes.push(`${label}: ${partial} unfinished upload file(s) left in node temp folders`);
      o.log?.(`${label}: ${first.killed ? 'killed' : 'finished first'}${double ? ', killed again on resume' : ''}${changedKey ? `, ${changedKey} changed` : ''}; ${journal?.chunks.size ?? 0} chunk(s) journaled; ${manifest.totals.chunks} chunks, status ${manifest.status}`);
    }
    row.notes.push(`${row.trials - finishedFirst} of ${row.trials} runs were killed before they finished (${earlierPoints} run(s) finished first and were started over with an earlier kill point); ${killedBeforeJournal} before the journal existed; ${doubleKills} killed again while resuming; ${sourceChanges} with a source file changed before the resume`);
  });
}

// ---- 2. a flaky source: a proxy answering 503 / dropping 20 % of requests in front of s3rver ----------------------

export function flakySource(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('2. flaky source (s3rver behind a proxy: 20 % 503 / reset / cut short)');
  let injected = 0;
  const kinds = new Map<string, number>();
  return timed(row, async () => {
    const s3 = await startS3();
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY, region: process.env.AWS_REGION };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: S3RVER_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_KEY, AWS_REGION: 'us-east-1' });
    try {
      for (let trial = 0; trial < o.trials; trial++) {
        const label = `flaky-source trial ${trial} (seed ${o.seed})`;
        const random = rng(`${o.seed}/flaky/${trial}`);
        const bucket = `flaky-${trial}-${Math.floor(random() * 1e6)}`;
        await s3.createBucket(bucket);
        const sourceDir = await tempRoot('ci-faults-src-');
        const files = await makeFiles(sourceDir, mixedFiles(pick(random, [12, 16])), `flaky/${o.seed}/${trial}`);
        for (const f of files) await s3.put(bucket, f.key, f.size > 0 ? { file: f.path } : Buffer.alloc(0));
        const proxy = await startFaultProxy({ host: s3.host, port: s3.port }, { kinds: ['503', 'reset', 'truncate'], fraction: 0.2, seed: `${o.seed}/${trial}` });
        try {
          const nodesRoot = await tempRoot('ci-faults-nodes-');
          const project = await makeProject({
            sourceYaml: `  aws: { type: s3, bucket: ${bucket}, region: us-east-1, endpoint: "${proxy.url}" }`,
            nodes: [1, 2, 3].map((n) => ({ id: `node-${n}`, path: join(nodesRoot, `node-${n}`) })),
            chunkMb: pick(random, [1, 2]),
            replicas: trial % 2 === 0 ? 1 : 2,
            concurrency: 4,
            retries: 4,
          });
          const result = await runIngest({ loaded: project.loaded, detection: AWS });
          injected += proxy.faults.length;
          for (const f of proxy.faults) kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
          if (proxy.faults.length === 0) row.failures.push(`${label}: the proxy injected no fault; the trial proves nothing`);
          await finishTrial(row, label, project, files, result);
          o.log?.(`${label}: ${proxy.faults.length} faults injected over ${proxy.requests} requests; ${result.manifest.totals.retries} retries; status ${result.manifest.status}`);
        } finally {
          await proxy.close();
        }
      }
    } finally {
      for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret], ['AWS_REGION', saved.region]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await s3.stop();
    }
    row.notes.push(`${injected} source faults injected (${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}), each retried`);
  });
}

// ---- 3. bytes corrupted between the engine and an agent -------------------------------------------------------

export function corruptInTransit(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('3. bytes corrupted in transit to agents (30 % of uploads)');
  let corrupted = 0;
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const label = `corruption trial ${trial} (seed ${o.seed})`;
      const random = rng(`${o.seed}/corrupt/${trial}`);
      const sourceDir = await tempRoot('ci-faults-src-');
      const files = await makeFiles(sourceDir, mixedFiles(pick(random, [12, 16])), `corrupt/${o.seed}/${trial}`);
      const cluster = await startAgents(3);
      const proxies = await Promise.all(cluster.agents.map((a, i) => corruptingProxy({ port: a.port }, { fraction: 0.3, seed: `${o.seed}/${trial}/${i}` })));
      try {
        const project = await makeProject({
          sourceYaml: localSourceYaml(sourceDir),
          nodes: agentSpecs(cluster, proxies.map((p) => p.url)),
          chunkMb: pick(random, [1, 2]),
          replicas: trial % 2 === 0 ? 1 : 2,
          concurrency: 4,
          retries: 3,
        });
        const result = await runIngest({ loaded: project.loaded, detection: LOCAL });
        const altered = proxies.flatMap((p) => p.corrupted);
        corrupted += altered.length;
        if (altered.length === 0) row.failures.push(`${label}: no upload was corrupted; the trial proves nothing`);
        for (const [i, p] of proxies.entries()) {
          for (const [status, count] of p.answersToCorrupted) {
            if (status !== 422) row.failures.push(`${label}: agent a${i + 1} answered ${count} corrupted upload(s) with HTTP ${status} instead of 422 (checksum mismatch)`);
          }
        }
        if (result.manifest.totals.retries < altered.length) row.failures.push(`${label}: ${altered.length} uploads were corrupted but the run counted only ${result.manifest.totals.retries} retries`);
        await finishTrial(row, label, project, files, result);
        o.log?.(`${label}: ${altered.length} of ${proxies.reduce((s, p) => s + p.puts, 0)} uploads corrupted; ${result.manifest.totals.retries} retries; status ${result.manifest.status}`);
      } finally {
        await Promise.all(proxies.map((p) => p.close()));
        await stopAgents(cluster);
      }
    }
    row.notes.push(`${corrupted} uploads corrupted in transit, every one refused by the agent's checksum check and redelivered`);
  });
}

// ---- 4. nodes dying, coming back, filling up -------------------------------------------------------------------

export function nodeKilled(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('4a. agent SIGKILLed mid-ingest');
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const label = `node-killed trial ${trial} (seed ${o.seed})`;
      const random = rng(`${o.seed}/node-killed/${trial}`);
      const sourceDir = await tempRoot('ci-faults-src-');
      const files = await makeFiles(sourceDir, mixedFiles(pick(random, [16, 24])), `node-killed/${o.seed}/${trial}`);
      const cluster = await startAgents(3);
      try {
        const replicas = trial % 2 === 0 ? 1 : 2;
        const project = await makeProject({ sourceYaml: localSourceYaml(sourceDir), nodes: agentSpecs(cluster), chunkMb: 1, replicas, concurrency: 4, retries: 2 });
        const victim = Math.floor(random() * 3);
        const victimId = `a${victim + 1}`;
        const killAfter = 2 + Math.floor(random() * 8);
        let verified = 0;
        let killed: Promise<unknown> | undefined;
        const onVictimBefore = new Set<string>();
        const result = await runIngest({
          loaded: project.loaded,
          detection: LOCAL,
          onEvent: (e) => {
            if (e.type !== 'chunk' || e.state !== 'verified') return;
            if (!killed && e.nodeId === victimId) onVictimBefore.add(e.id);
            if (++verified === killAfter) killed = cluster.agents[victim]!.kill('SIGKILL');
          },
        });
        await killed;
        if (!killed) row.failures.push(`${label}: the run ended before the kill point`);
        // The victim's folder is all that is left of it; bring it back so verify can read its copies.
        const back = await spawnAgent({ dir: cluster.agents[victim]!.dir, port: cluster.agents[victim]!.port, token: cluster.agents[victim]!.token! });
        cluster.agents[victim] = back;
        if (result.manifest.nodes.find((n) => n.id === victimId)?.healthy !== false) row.failures.push(`${label}: ${victimId} was killed but the manifest calls it healthy`);
        await finishTrial(row, label, project, files, result);
        o.log?.(`${label}: ${victimId} killed after ${killAfter} verified chunks; ${result.manifest.totals.replacements} re-placements; status ${result.manifest.status}`);
      } finally {
        await stopAgents(cluster);
      }
    }
  });
}

export function nodeComesBack(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('4b. agent killed, restarted mid-run, gets work again; run cancelled, then resumed');
  const cancelMs: number[] = [];
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const label = `node-back trial ${trial} (seed ${o.seed})`;
      const random = rng(`${o.seed}/node-back/${trial}`);
      const sourceDir = await tempRoot('ci-faults-src-');
      const files = await makeFiles(sourceDir, mixedFiles(40), `node-back/${o.seed}/${trial}`);
      const cluster = await startAgents(3);
      // Throttled links keep the run going long enough for the restarted node to serve its cool-down.
      const links = await Promise.all(cluster.agents.map((a) => tcpProxy({ port: a.port }, 512 * 1024)));
      try {
        const project = await makeProject({ sourceYaml: localSourceYaml(sourceDir), nodes: agentSpecs(cluster, links.map((l) => l.url)), chunkMb: 1, concurrency: 4, retries: 1 });
        const controller = new AbortController();
        const killAfter = 2 + Math.floor(random() * 4);
        let verified = 0;
        let phase: 'up' | 'down' | 'back' = 'up';
        let restart: Promise<void> | undefined;
        const afterReturn: string[] = [];
        let abortedAt = 0;
        const states: string[] = [];
        const onEvent = (e: IngestEvent): void => {
          if (e.type === 'node' && e.status.id === 'a2' && states.at(-1) !== e.status.state) states.push(e.status.state);
          if (e.type !== 'chunk' || e.state !== 'verified') return;
          verified++;
          if (phase === 'up' && verified === killAfter) {
            phase = 'down';
            restart = (async () => {
              const dead = cluster.agents[1]!;
              await dead.kill('SIGKILL');
              await sleep(300);
              cluster.agents[1] = await spawnAgent({ dir: dead.dir, port: dead.port, token: dead.token! });
              phase = 'back';
            })();
          } else if (phase === 'back' && e.nodeId === 'a2') {
            afterReturn.push(e.id);
            if (afterReturn.length === 2) {
              abortedAt = performance.now();
              controller.abort(new Error('cancelled by the fault suite'));
            }
          }
        };
        let first: IngestResult | undefined;
        try {
          first = await runIngest({ loaded: project.loaded, detection: LOCAL, signal: controller.signal, onEvent });
        } catch (error) {
          row.failures.push(`${label}: the cancelled run threw instead of writing a cancelled manifest: ${(error as Error).message}`);
        }
        if (abortedAt) cancelMs.push(performance.now() - abortedAt);
        await restart;
        if (afterReturn.length < 2) row.failures.push(`${label}: a2 came back but received ${afterReturn.length} chunk(s) before the run ended (states: ${states.join(' → ')})`);
        if (first && abortedAt && first.manifest.status !== 'cancelled') row.failures.push(`${label}: cancelled run's manifest status is ${first.manifest.status}`);
        for (const l of links) l.setRate(Infinity);
        const runId = first?.manifest.runId;
        if (!runId) continue;
        const resumed = await runIngest({ loaded: project.loaded, detection: LOCAL, resume: runId });
        if (resumed.manifest.runId !== runId) row.failures.push(`${label}: the resumed manifest has run id ${resumed.manifest.runId}, expected ${runId}`);
        await finishTrial(row, label, project, files, resumed);
        // The cancelled first part's retries and re-placements count too.
        if (first) {
          row.retries += first.manifest.totals.retries;
          row.replacements += first.manifest.totals.replacements;
        }
        o.log?.(`${label}: a2 states ${states.join(' → ')}; ${afterReturn.length} chunks to a2 after it came back; cancel took ${cancelMs.at(-1)?.toFixed(0)} ms; resumed: ${resumed.manifest.status}`);
      } finally {
        await Promise.all(links.map((l) => l.close()));
        await stopAgents(cluster);
      }
    }
    if (cancelMs.length) row.notes.push(`cancel → runIngest returned in ${cancelMs.map((m) => m.toFixed(0)).join(', ')} ms`);
  });
}

export function diskFills(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('4c. agent disk fills (--max-bytes)');
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const label = `disk-full trial ${trial} (seed ${o.seed})`;
      const random = rng(`${o.seed}/disk-full/${trial}`);
      const sourceDir = await tempRoot('ci-faults-src-');
      const files = await makeFiles(sourceDir, mixedFiles(24), `disk-full/${o.seed}/${trial}`);
      const quota = pick(random, [3, 5, 7]) * MiB;
      const cluster = await startAgents(3, [{}, {}, { maxBytes: quota }]);
      try {
        // Round robin keeps offering a3 its share whatever free space it reports, so it does fill up.
        const project = await makeProject({ sourceYaml: localSourceYaml(sourceDir), nodes: agentSpecs(cluster), chunkMb: 2, concurrency: 3, placement: 'round_robin', retries: 1 });
        let full = false;
        const result = await runIngest({ loaded: project.loaded, detection: LOCAL, onEvent: (e) => void (e.type === 'node' && e.status.id === 'a3' && e.status.state === 'full' && (full = true)) });
        if (!full) row.failures.push(`${label}: a3 (quota ${quota} bytes) was never reported full`);
        const onA3 = result.manifest.chunks.filter((c) => c.copies.some((x) => x.nodeId === 'a3')).reduce((s, c) => s + c.size, 0);
        if (onA3 > quota) row.failures.push(`${label}: the manifest puts ${onA3} bytes on a3, over its ${quota}-byte quota`);
        await finishTrial(row, label, project, files, result);
        o.log?.(`${label}: quota ${quota / MiB} MiB, ${onA3} bytes on a3; ${result.manifest.totals.replacements} re-placements; status ${result.manifest.status}`);
      } finally {
        await stopAgents(cluster);
      }
    }
  });
}

// ---- 5. a slow node past its timeout -------------------------------------------------------------------------

export function slowNode(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('5. slow node past its timeout (hangs, or stores but answers late)');
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const label = `slow-node trial ${trial} (seed ${o.seed})`;
      const random = rng(`${o.seed}/slow/${trial}`);
      const mode = trial % 2 === 0 ? 'all' : 'responses';
      const sourceDir = await tempRoot('ci-faults-src-');
      const files = await makeFiles(sourceDir, mixedFiles(pick(random, [16, 20])), `slow/${o.seed}/${trial}`);
      const cluster = await startAgents(3);
      const link = await tcpProxy({ port: cluster.agents[2]!.port });
      try {
        const project = await makeProject({ sourceYaml: localSourceYaml(sourceDir), nodes: agentSpecs(cluster, [cluster.agents[0]!.url, cluster.agents[1]!.url, link.url]), chunkMb: 1, concurrency: 3, retries: 1 });
        // The nodes the config describes, with a 1.5 s stall timeout instead of the default 30 s.
        const nodes = agentSpecs(cluster, [cluster.agents[0]!.url, cluster.agents[1]!.url, link.url]).map(
          (n) => new AgentNode({ id: n.id, url: (n as { url: string }).url, tokenEnv: (n as { tokenEnv: string }).tokenEnv, timeoutMs: 1500, probeTimeoutMs: 1000 }),
        );
        let held = false;
        const result = await runIngest({
          loaded: project.loaded,
          detection: LOCAL,
          nodes,
          onEvent: (e) => {
            if (!held && e.type === 'chunk' && e.state === 'verified' && e.nodeId === 'a3') {
              held = true;
              link.hold(mode);
            }
          },
        });
        if (!held) row.failures.push(`${label}: a3 never took a chunk, so it was never slowed`);
        if (!result.manifest.chunks.some((c) => c.movedFrom.includes('a3'))) row.failures.push(`${label}: no chunk was moved off the slow node a3`);
        link.hold('none');
        await finishTrial(row, label, project, files, result);
        o.log?.(`${label}: a3 ${mode === 'all' ? 'hung' : 'answered late'}; ${result.manifest.totals.replacements} re-placements; status ${result.manifest.status}`);
      } finally {
        await link.close();
        await stopAgents(cluster);
      }
    }
  });
}

export const SCENARIOS = {
  kill: killAndResume,
  flaky: flakySource,
  corrupt: corruptInTransit,
  'node-killed': nodeKilled,
  'node-back': nodeComesBack,
  'disk-full': diskFills,
  slow: slowNode,
  'agent-kill-r1': agentKilledForReal(1),
  'agent-kill-r2': agentKilledForReal(2),
  'hash-thread': hashThreadKilled,
  names: namesThroughAgents,
  'pull-worker-killed': pullWorkerKilled,
  'pull-nats-restart': pullNatsRestarted,
  'pull-slow': pullSlowWorker,
} as const;
export type ScenarioName = keyof typeof SCENARIOS;
