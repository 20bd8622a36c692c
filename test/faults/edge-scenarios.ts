// The fault scenarios of issue 12 ("trust at the edges"): an agent process killed for real mid-run with the run's
// verify right after (the agent still dead), a hashing thread killed mid-run, and a seeded fuzz of source names
// through agents followed by a restart of every agent. Judged like every other row (harness.ts): nothing lost,
// nothing duplicated, no chunk with fewer good copies on live nodes than `replicas`, verify clean, every file
// reassembled byte for byte.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runIngest } from '../../electron/engine/ingest.ts';
import type { IngestResult } from '../../electron/engine/ingest.ts';
import { readManifest } from '../../electron/engine/manifest.ts';
import type { Manifest } from '../../shared/types.ts';
import { agentLogs } from '../helpers/agents.ts';
import { agentSidecars } from '../helpers/agent-store.ts';
import {
  agentSpecs,
  emptyRow,
  finishTrial,
  hasStackTrace,
  killAgentForReal,
  LOCAL,
  localSourceYaml,
  makeFiles,
  makeProject,
  MiB,
  mixedFiles,
  pick,
  restartAgent,
  rng,
  runCliToEnd,
  spawnCli,
  startAgents,
  stopAgents,
  tempRoot,
  timed,
} from './harness.ts';
import type { NodeSpec, Project, ScenarioOptions, ScenarioRow, SourceFile } from './harness.ts';

/** The CLI's `run --json` summary, as far as these scenarios read it. */
interface RunSummary {
  status: Manifest['status'];
  manifest: string;
}

function parseSummary(stdout: string): RunSummary | undefined {
  try {
    const summary = JSON.parse(stdout) as Partial<RunSummary>;
    return typeof summary.manifest === 'string' && typeof summary.status === 'string' ? (summary as RunSummary) : undefined;
  } catch {
    return undefined;
  }
}

async function sidecarCount(dir: string): Promise<number> {
  return (await agentSidecars(dir)).length;
}

/** The run must exit 0 with a complete manifest and print no stack trace; the manifest, or undefined after a failure. */
export async function completeRun(row: ScenarioRow, label: string, args: string[], run: { code: number | null; stdout: string; stderr: string }): Promise<{ manifest: Manifest; manifestPath: string } | undefined> {
  const summary = parseSummary(run.stdout);
  if (hasStackTrace(run.stdout + run.stderr)) row.failures.push(`${label}: the CLI printed a stack trace:\n${(run.stdout + run.stderr).slice(-1500)}`);
  if (run.code !== 0 || !summary) {
    row.failures.push(`${label}: \`cloud-ingest ${args.join(' ')}\` exited ${run.code} (status ${summary?.status ?? '?'}), expected 0 and complete:\n${run.stderr.slice(-2000)}`);
    row.trials++;
    return undefined;
  }
  return { manifest: await readManifest(summary.manifest), manifestPath: summary.manifest };
}

// ---- 6. an agent process SIGKILLed for real; verify right after, the agent still dead -----------------------------

interface KilledRun {
  project: Project;
  victim: number;
  args: string[];
  run: { code: number | null; stdout: string; stderr: string };
}

/**
 * Starts `cloud-ingest run` over three fresh agents and SIGKILLs the victim agent (the process serving its port)
 * once it holds `holds` chunks; undefined when the run finished first.
 */
async function runAndKillAgent(o: { sourceDir: string; replicas: number; victim: number; holds: number; cluster: Awaited<ReturnType<typeof startAgents>> }): Promise<KilledRun | undefined> {
  const project = await makeProject({ sourceYaml: localSourceYaml(o.sourceDir), nodes: agentSpecs(o.cluster), chunkMb: 1, replicas: o.replicas, concurrency: 4, retries: 2 });
  const args = ['run', '--config', project.configPath, '--cloud', 'local', '--json'];
  const child = spawnCli(args);
  let exited = false;
  void child.exited.then(() => (exited = true));
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 180_000);
  const victim = o.cluster.agents[o.victim]!;
  while (!exited && (await sidecarCount(victim.dir)) < o.holds) await sleep(3);
  if (!exited) await killAgentForReal(victim);
  const finishedFirst = exited;
  const result = await child.exited;
  clearTimeout(timer);
  if (result.signal === 'SIGKILL') throw new Error(`cloud-ingest ${args.join(' ')} did not finish within 180 s\n${child.stderr().slice(-2000)}`);
  return finishedFirst ? undefined : { project, victim: o.victim, args, run: { code: result.code, stdout: child.stdout(), stderr: child.stderr() } };
}

export function agentKilledForReal(replicas: 1 | 2): (o: ScenarioOptions) => Promise<ScenarioRow> {
  return (o) => {
    const row = emptyRow(`6${replicas === 1 ? 'a' : 'b'}. agent process SIGKILLed for real, replicas ${replicas}; verify right after, the agent still dead`);
    let startedOver = 0;
    return timed(row, async () => {
      for (let trial = 0; trial < o.trials; trial++) {
        const label = `agent-kill r${replicas} trial ${trial} (seed ${o.seed})`;
        const random = rng(`${o.seed}/agent-kill-r${replicas}/${trial}`);
        const sourceDir = await tempRoot('ci-faults-src-');
        const files = await makeFiles(sourceDir, mixedFiles(pick(random, [24, 32])), `agent-kill/${o.seed}/${replicas}/${trial}`);
        const victim = Math.floor(random() * 3);
        let holds = 1 + Math.floor(random() * 4);
        let killed: KilledRun | undefined;
        // A run that finishes before its kill proves nothing: start over on fresh agents with an earlier kill.
        for (let attempt = 0; attempt < 3 && !killed; attempt++) {
          const cluster = await startAgents(3);
          try {
            killed = await runAndKillAgent({ sourceDir, replicas, victim, holds, cluster });
            if (!killed) {
              startedOver++;
              holds = 1;
              continue;
            }
            const done = await completeRun(row, label, killed.args, killed.run);
            if (!done) continue;
            const victimId = `a${victim + 1}`;
            if (done.manifest.nodes.find((n) => n.id === victimId)?.healthy !== false) row.failures.push(`${label}: ${victimId} was killed but the manifest calls it healthy`);
            await finishTrial(row, label, killed.project, files, done);
            const runSeconds = (Date.parse(done.manifest.finishedAt) - Date.parse(done.manifest.startedAt)) / 1000;
            o.log?.(`${label}: a${victim + 1} killed holding ${holds}+ chunk(s); ${done.manifest.totals.replacements} re-placements; status ${done.manifest.status} after ${runSeconds.toFixed(1)} s`);
          } finally {
            await stopAgents(cluster);
          }
        }
        if (!killed) {
          row.trials++;
          row.failures.push(`${label}: the run finished before the agent could be killed, on every attempt`);
        }
      }
      if (startedOver > 0) row.notes.push(`${startedOver} run(s) finished before their kill point and were started over`);
    });
  };
}

// ---- 7. a hashing thread killed mid-run --------------------------------------------------------------------------

/** Set for the CLI child only: the hash pool terminates its busiest thread this long after it starts. */
const HASH_KILL_ENV = 'CLOUD_INGEST_FAULT_KILL_HASH_THREAD_AFTER_MS';
const HASH_KILLED_LINE = /fault injection: terminating hashing thread/;

export function hashThreadKilled(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('7. a hashing thread killed mid-run (folder nodes and agents, replicas 1 and 2)');
  let startedOver = 0;
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      // Trials alternate: folder nodes (the thread reads, hashes and writes) or agents (the thread hashes a stream); 1 or 2 replicas.
      const replicas = trial % 2 === 0 ? 1 : 2;
      const onAgents = Math.floor(trial / 2) % 2 === 1;
      const label = `hash-thread trial ${trial} (${onAgents ? 'agents' : 'folder nodes'}, replicas ${replicas}, seed ${o.seed})`;
      const random = rng(`${o.seed}/hash-thread/${trial}`);
      const sourceDir = await tempRoot('ci-faults-src-');
      const files = await makeFiles(sourceDir, mixedFiles(pick(random, [32, 48])), `hash-thread/${o.seed}/${trial}`);
      let delayMs = pick(random, [1, 20, 60, 150]);
      let killedIn: { project: Project; run: Awaited<ReturnType<typeof runCliToEnd>>; args: string[] } | undefined;
      for (let attempt = 0; attempt < 4 && !killedIn; attempt++) {
        const cluster = onAgents ? await startAgents(3) : undefined;
        try {
          const nodesRoot = await tempRoot('ci-faults-nodes-');
          const nodes: NodeSpec[] = cluster ? agentSpecs(cluster) : [1, 2, 3].map((n) => ({ id: `node-${n}`, path: join(nodesRoot, `node-${n}`) }));
          const project = await makeProject({ sourceYaml: localSourceYaml(sourceDir), nodes, chunkMb: 1, replicas, concurrency: 4, retries: 2 });
          const args = ['run', '--config', project.configPath, '--cloud', 'local', '--json'];
          const run = await runCliToEnd(args, { [HASH_KILL_ENV]: String(delayMs) });
          if (!HASH_KILLED_LINE.test(run.stderr)) {
            startedOver++;
            delayMs = Math.max(1, Math.floor(delayMs / 4));
            continue;
          }
          killedIn = { project, run, args };
          const done = await completeRun(row, label, args, run);
          if (!done) continue;
          await finishTrial(row, label, project, files, done);
          o.log?.(`${label}: a thread killed ${delayMs} ms after the pool started; ${done.manifest.totals.retries} retries; status ${done.manifest.status}`);
        } finally {
          if (cluster) await stopAgents(cluster);
        }
      }
      if (!killedIn) {
        row.trials++;
        row.failures.push(`${label}: no hashing thread was killed on any attempt (the CLI never printed the fault-injection line; does the hash pool read ${HASH_KILL_ENV}?)`);
      }
    }
    if (startedOver > 0) row.notes.push(`${startedOver} run(s) ended before a thread was killed and were started over with an earlier kill`);
  });
}

// ---- 8. a seeded fuzz of source names through agents, then every agent restarted ----------------------------------

const ASTRAL_LETTERS = ['𝔘', '𝔫', '𐐷', '𠜎', '𝒜', '𝕏'];
const ASTRAL_OTHER = ['😀', '🀄', '🧬', '👩‍💻'];
const CONTROLS = ['\t', '\n', '\r', '\u0001', '\u0007', '\u000b', '\u000c', '\u001b', '\u007f'];
const RANDOM_POOL = ['a', 'b', 'z', '0', ' ', '-', '.', '%', '\\', '#', '?', '&', '+', '=', '~', "'", '"', '*', ':', '<', '|', 'é', 'e\u0301', '\u200b', '\ufeff', '漢', 'ש', 'ß', ...CONTROLS, ...ASTRAL_LETTERS, ...ASTRAL_OTHER];

const MAX_SEGMENT_BYTES = 255;

function word(random: () => number): string {
  return Array.from({ length: 3 + Math.floor(random() * 5) }, () => pick(random, ['a', 'e', 'k', 'm', 'o', 'r', 't', 'x'])).join('');
}

/** A key made of folders, `length` UTF-16 units or a little more, with astral letters in every segment. */
function longKey(random: () => number, length: number): string {
  const segments: string[] = [];
  let total = 0;
  while (total < length) {
    let segment = word(random);
    while (segment.length < 60) segment += random() < 0.3 ? pick(random, ASTRAL_LETTERS) : pick(random, ['l', 'o', 'n', 'g', '-', '_']);
    segments.push(segment);
    total += segment.length + 1;
  }
  return segments.join('/');
}

/**
 * Names for one trial: at least one of every kind the agents and the node folders must survive (control characters,
 * astral letters on both sides of a UTF-16 cut, keys over 1,000 characters, `.chunk` endings, dot-dot and
 * percent forms, NFC/NFD pairs that differ), then seeded random ones.
 */
export function fuzzNames(random: () => number, randomCount: number): string[] {
  const w = (): string => word(random);
  const astralRun = pick(random, ASTRAL_LETTERS).repeat(58);
  const names = [
    // control characters
    `ctl${pick(random, CONTROLS)}${w()}.bin`,
    `${pick(random, CONTROLS)}${w()}`,
    `${w()}\n${w()}\t${w()}.bin`,
    // astral letters, and names long enough to be cut, the cut landing at each of four byte offsets into a pair
    `${pick(random, ASTRAL_LETTERS)}${pick(random, ASTRAL_OTHER)}${w()}`,
    `cut-${astralRun}`,
    `cut-x${astralRun}`,
    `cut-xx${astralRun}`,
    `cut-xxx${astralRun}`,
    // over 1,000 characters (in folders: one path segment holds 255 bytes at most)
    longKey(random, pick(random, [1030, 1100, 1500])),
    longKey(random, 2100),
    // .chunk endings
    `${w()}.chunk`,
    `${w()}.chunk.json`,
    '.chunk',
    `${w()}.bin_chunk_0.chunk`,
    // dot-dot (a key cannot hold a literal ../ segment in a folder source: these are the nearest it can)
    `..${w()}`,
    `${w()}/..${w()}`,
    '...',
    `..%2F..%2F${w()}`,
    `..\\..\\${w()}`,
    // percent signs: forms that decode to other names here, and the names they decode to
    `%41${w()}`,
    `100%`,
    '%',
    `%E2%82%AC${w()}`,
    `%2e%2e%2f${w()}`,
    // NFC/NFD pairs that differ byte for byte (and the Angstrom sign, whose NFC is Å)
    `caf\u00e9-${w()}`,
    `cafe\u0301-${w()}`,
    `\u00c5-${w()}`,
    `A\u030a-${w()}`,
    `\u212b-${w()}`,
  ];
  // The names the percent forms decode to, so a decoding store would mix the two up.
  names.push(decodeURIComponent(names.find((n) => n.startsWith('%41'))!), decodeURIComponent(names.find((n) => n.startsWith('%E2%82%AC'))!));
  for (let i = 0; i < randomCount; i++) {
    const length = 1 + Math.floor(random() * 40);
    names.push(Array.from({ length }, () => pick(random, RANDOM_POOL)).join(''));
  }
  return usableKeys(names);
}

/** Drops names no folder can hold (empty, `.`, `..` or too-long segments) and any that would be another's folder. */
function usableKeys(names: string[]): string[] {
  const out: string[] = [];
  const taken = new Set<string>();
  const folders = new Set<string>();
  for (const name of names) {
    const segments = name.split('/');
    if (segments.some((s) => s === '' || s === '.' || s === '..' || Buffer.byteLength(s) > MAX_SEGMENT_BYTES)) continue;
    const parents = segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
    if (taken.has(name) || folders.has(name) || parents.some((p) => taken.has(p))) continue;
    out.push(name);
    taken.add(name);
    for (const p of parents) folders.add(p);
  }
  return out;
}

const FUZZ_SIZES = [0, 1, 777, 300_000, MiB, MiB + 1, 2 * MiB + 5];

export function namesThroughAgents(o: ScenarioOptions): Promise<ScenarioRow> {
  const row = emptyRow('8. seeded fuzz of source names through agents; every agent restarted, then each file reassembled');
  let names = 0;
  return timed(row, async () => {
    for (let trial = 0; trial < o.trials; trial++) {
      const label = `names trial ${trial} (seed ${o.seed})`;
      const random = rng(`${o.seed}/names/${trial}`);
      const keys = fuzzNames(random, 12);
      names += keys.length;
      const sourceDir = await tempRoot('ci-faults-src-');
      const files: SourceFile[] = await makeFiles(sourceDir, keys.map((key) => ({ key, size: pick(random, FUZZ_SIZES) })), `names/${o.seed}/${trial}`);
      const cluster = await startAgents(3);
      try {
        const replicas = trial % 2 === 0 ? 1 : 2;
        const project = await makeProject({ sourceYaml: localSourceYaml(sourceDir), nodes: agentSpecs(cluster), chunkMb: 1, replicas, concurrency: 4, retries: 1 });
        let result: IngestResult;
        try {
          result = await runIngest({ loaded: project.loaded, detection: LOCAL });
        } catch (error) {
          row.trials++;
          row.failures.push(`${label}: the run failed: ${(error as Error).message.slice(0, 1500)}`);
          continue;
        }
        for (const node of result.manifest.nodes) if (!node.healthy) row.failures.push(`${label}: ${node.id} was marked failed by source names alone`);
        for (const f of result.manifest.files) if (f.status !== 'complete') row.failures.push(`${label}: ${JSON.stringify(f.key)} ${f.status}: ${f.error ?? ''}`);
        // Every agent restarts: what it acknowledged must still be indexed and served.
        await Promise.all(cluster.agents.map((_, i) => restartAgent(cluster, i)));
        for (const [i, agent] of cluster.agents.entries()) {
          const skipped = agentLogs(agent).filter((l) => l.msg === 'ignoring unreadable chunk metadata' || (l.msg === 'store opened' && Number(l.skipped) > 0));
          for (const line of skipped) row.failures.push(`${label}: a${i + 1} dropped a chunk from its index on restart: ${JSON.stringify(line)}`);
        }
        await finishTrial(row, label, project, files, result);
        o.log?.(`${label}: ${keys.length} names, ${result.manifest.totals.chunks} chunks, replicas ${replicas}; status ${result.manifest.status}`);
      } finally {
        await stopAgents(cluster);
      }
    }
    row.notes.push(`${names} source names fuzzed`);
  });
}
