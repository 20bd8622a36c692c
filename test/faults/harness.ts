// The fault suite's common ground: seeded randomness, throwaway projects (source folder, nodes, config), the
// engine CLI as a child process that can be SIGKILLed, and an audit that judges a finished run on its own:
// it re-hashes the source and the bytes in the node folders directly (folder nodes and agent folders alike),
// never trusting the manifest's or the engine's word.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../electron/engine/config.ts';
import type { LoadedConfig } from '../../electron/engine/config.ts';
import { reassembleFile } from '../../electron/engine/reassemble.ts';
import { ensureDataFile } from '../../electron/engine/testdata.ts';
import { verifyRun } from '../../electron/engine/verify.ts';
import type { ChecksumAlgorithm } from '../../shared/config/types.ts';
import type { DetectionResult, Manifest } from '../../shared/types.ts';
import { ENGINE_NODE_FLAGS } from '../../bin/node22.js';
import { CLI, REPO_ROOT, spawnAgent } from '../helpers/agents.ts';
import { incomingFiles } from '../helpers/agent-store.ts';
import { heldChunks } from '../nodes/folder-layout.ts';
import type { AgentProcess } from '../helpers/agents.ts';
import { folderTemps } from '../nodes/folder-layout.ts';

export const MiB = 1024 * 1024;

// ---- seeded randomness ---------------------------------------------------------------------------------------

/** A small deterministic PRNG (mulberry32) seeded from any text: the same seed gives the same trial. */
export function rng(seed: string): () => number {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

// ---- temp folders ------------------------------------------------------------------------------------------

const temps: string[] = [];

export async function tempRoot(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

export async function removeTemps(): Promise<void> {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

// ---- source data ---------------------------------------------------------------------------------------------

export interface SourceFile {
  key: string;
  size: number;
  /** Local path of the bytes (the source folder itself, or what was uploaded to an emulator). */
  path: string;
  md5: string;
}

export async function md5OfFile(path: string, start?: number, length?: number): Promise<string> {
  const hash = createHash('md5');
  if (length === 0) return hash.digest('hex');
  const range = start !== undefined && length !== undefined ? { start, end: start + length - 1 } : {};
  for await (const part of createReadStream(path, { highWaterMark: MiB, ...range })) hash.update(part as Buffer);
  return hash.digest('hex');
}

async function hashFile(path: string, algorithm: ChecksumAlgorithm, start?: number, length?: number): Promise<string> {
  const hash = createHash(algorithm);
  if (length === 0) return hash.digest('hex');
  const range = start !== undefined && length !== undefined ? { start, end: start + length - 1 } : {};
  for await (const part of createReadStream(path, { highWaterMark: MiB, ...range })) hash.update(part as Buffer);
  return hash.digest('hex');
}

/** Deterministic files under `dir` (keys may hold folders); `seed` makes their bytes differ between scenarios. */
export async function makeFiles(dir: string, files: { key: string; size: number }[], seed: string): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  for (const f of files) {
    const path = join(dir, ...f.key.split('/'));
    await mkdir(dirname(path), { recursive: true });
    if (f.size === 0) await writeFile(path, '');
    else await ensureDataFile(path, f.size, `${seed}/${f.key}`);
    out.push({ key: f.key, size: f.size, path, md5: await md5OfFile(path) });
  }
  return out;
}

/** A mixed set: several chunks, a last chunk of odd size, one byte, nothing at all, a nested key. */
export function mixedFiles(totalMiB: number): { key: string; size: number }[] {
  const big = Math.max(2, Math.floor(totalMiB * 0.45));
  const mid = Math.max(1, Math.floor(totalMiB * 0.35));
  const small = Math.max(1, totalMiB - big - mid);
  return [
    { key: 'shard-a.bin', size: big * MiB },
    { key: 'shard-b.bin', size: mid * MiB + 12_345 },
    { key: 'nested/dir/shard-c.bin', size: small * MiB - 777 },
    { key: 'one-byte.bin', size: 1 },
    { key: 'empty.bin', size: 0 },
  ];
}

// ---- projects --------------------------------------------------------------------------------------------------

export type NodeSpec = { id: string; path: string } | { id: string; url: string; tokenEnv?: string; dir: string };

export interface Project {
  root: string;
  configPath: string;
  loaded: LoadedConfig;
  manifestDir: string;
  /** node id → the folder its chunks are kept in (a folder node's path, or an agent's --dir). */
  nodeDirs: Map<string, string>;
  /** The nodes as configured (agents' URLs and token variables, for reading copies back from them). */
  nodes: NodeSpec[];
  replicas: number;
  chunkSize: number;
}

export interface ProjectOptions {
  /** YAML for the data_sources mapping's entries, e.g. `  local: { type: local, path: "/x" }`. */
  sourceYaml: string;
  useLocalSimulation?: boolean;
  nodes: NodeSpec[];
  chunkMb: number;
  replicas?: number;
  concurrency?: number;
  retries?: number;
  retryDelaySeconds?: number;
  placement?: 'balanced' | 'round_robin' | 'stable';
  /** Pull mode: the node agents read their own chunks; work items go through the NATS server at `natsUrl`. */
  pull?: { natsUrl: string; cluster?: Record<string, number> };
}

export async function makeProject(o: ProjectOptions): Promise<Project> {
  const root = await tempRoot('ci-faults-project-');
  await mkdir(join(root, 'config'), { recursive: true });
  const manifestDir = join(root, 'manifests');
  const nodeLine = (n: NodeSpec): string =>
    'path' in n ? `  - { id: ${n.id}, path: ${JSON.stringify(n.path)} }` : `  - { id: ${n.id}, url: ${JSON.stringify(n.url)}${n.tokenEnv ? `, token_env: ${n.tokenEnv}` : ''} }`;
  const yaml = [
    'data_sources:',
    o.sourceYaml,
    'ingestion:',
    `  chunk_size_mb: ${o.chunkMb}`,
    `  max_concurrent_chunks: ${o.concurrency ?? 4}`,
    `  retry_attempts: ${o.retries ?? 3}`,
    `  retry_delay_seconds: ${o.retryDelaySeconds ?? 0.05}`,
    '  checksum: md5',
    `  placement: ${o.placement ?? 'balanced'}`,
    `  replicas: ${o.replicas ?? 1}`,
    `  manifest_dir: ${JSON.stringify(manifestDir)}`,
    ...(o.pull ? ['  mode: pull'] : []),
    `use_local_simulation: ${o.useLocalSimulation ?? false}`,
    'nodes:',
    ...o.nodes.map(nodeLine),
    ...(o.pull ? ['cluster:', `  nats_url: ${JSON.stringify(o.pull.natsUrl)}`, ...Object.entries(o.pull.cluster ?? {}).map(([k, v]) => `  ${k}: ${v}`)] : []),
    '',
  ].join('\n');
  const configPath = join(root, 'config', 'data_sources.yml');
  await writeFile(configPath, yaml);
  const loaded = await loadConfig(configPath);
  const nodeDirs = new Map(o.nodes.map((n) => [n.id, 'path' in n ? n.path : n.dir] as const));
  return { root, configPath, loaded, manifestDir, nodeDirs, nodes: o.nodes, replicas: o.replicas ?? 1, chunkSize: Math.round(o.chunkMb * MiB) };
}

export function localSourceYaml(dir: string): string {
  return `  local: { type: local, path: ${JSON.stringify(dir)} }`;
}

// ---- the CLI as a child --------------------------------------------------------------------------------------

export interface CliChild {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): CliChild {
  const proc = spawn(process.execPath, [...ENGINE_NODE_FLAGS, CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.once('exit', (code, signal) => res({ code, signal })));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

/** Runs the CLI to the end (killed after `timeoutMs`, which fails the caller). */
export async function runCliToEnd(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawnCli(args, env);
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs);
  const result = await child.exited;
  clearTimeout(timer);
  if (result.signal === 'SIGKILL') throw new Error(`cloud-ingest ${args.join(' ')} did not finish within ${timeoutMs} ms\n${child.stderr()}`);
  return { ...result, stdout: child.stdout(), stderr: child.stderr() };
}

/** A stack trace in front of a user: `    at fn (file:line)` frames or node:internal paths. */
export function hasStackTrace(text: string): boolean {
  return /^\s+at .+[(:]\S*\d+(:\d+)?\)?\s*$/m.test(text) || text.includes('node:internal');
}

// ---- what is on the nodes ------------------------------------------------------------------------------------

export interface CanonicalCopy {
  nodeId: string;
  id: string;
  dataPath: string;
  /** Size and checksum the sidecar claims. */
  size: number;
  checksum: string;
}

/**
 * Every chunk a node folder shows as complete: a folder node's index line (or its old layout's sidecar), an agent's
 * `.chunk.json` sidecar, each naming a `.chunk` file (see test/nodes/folder-layout.ts).
 */
export async function canonicalCopies(nodeDirs: Map<string, string>): Promise<CanonicalCopy[]> {
  const copies: CanonicalCopy[] = [];
  for (const [nodeId, dir] of nodeDirs) {
    for (const held of await heldChunks(dir)) copies.push({ nodeId, id: held.id, dataPath: held.dataPath, size: held.size, checksum: held.checksum });
  }
  return copies;
}

/** Unfinished upload files the nodes keep aside (folder `.tmp/`, agent `.incoming/` and `.incoming/<sub>/`). */
export async function partialFiles(nodeDirs: Map<string, string>): Promise<number> {
  let count = 0;
  for (const dir of nodeDirs.values()) {
    count += (await folderTemps(dir)).length;
    count += (await incomingFiles(dir)).length;
  }
  return count;
}

// ---- nodes alive at the end, copies read back from them ------------------------------------------------------

/** Which nodes answer now: a folder node whose folder exists, an agent whose health endpoint answers 200. */
export async function liveNodes(nodes: NodeSpec[]): Promise<Set<string>> {
  const live = new Set<string>();
  await Promise.all(
    nodes.map(async (n) => {
      if ('path' in n) {
        if (await stat(n.path).then((s) => s.isDirectory(), () => false)) live.add(n.id);
        return;
      }
      try {
        const res = await fetch(`${n.url}/v1/health`, { headers: agentAuth(n), signal: AbortSignal.timeout(3000) });
        await res.body?.cancel();
        if (res.status === 200) live.add(n.id);
      } catch {
        // not answering: dead
      }
    }),
  );
  return live;
}

function agentAuth(n: Extract<NodeSpec, { url: string }>): Record<string, string> {
  const token = n.tokenEnv ? process.env[n.tokenEnv] : undefined;
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** The checksum of a chunk as an agent serves it (GET), or undefined when it does not serve it. */
async function servedChecksum(n: Extract<NodeSpec, { url: string }>, chunkId: string, algorithm: ChecksumAlgorithm): Promise<{ hex: string; size: number } | undefined> {
  let res: Response;
  try {
    res = await fetch(`${n.url}/v1/chunks/${encodeURIComponent(chunkId)}`, { headers: agentAuth(n), signal: AbortSignal.timeout(60_000) });
  } catch {
    return undefined;
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    return undefined;
  }
  const hash = createHash(algorithm);
  let size = 0;
  try {
    for await (const part of res.body) {
      hash.update(part);
      size += part.length;
    }
  } catch {
    return undefined;
  }
  return { hex: hash.digest('hex'), size };
}

/** Whether `pid` itself holds the socket listening on 127.0.0.1:`port` (not a launcher that re-ran itself). */
export async function holdsListeningSocket(pid: number, port: number): Promise<boolean> {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const line of (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1]?.endsWith(`:${portHex}`) && cols[3] === '0A') inodes.add(cols[9]!);
  }
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1]!)) return true;
  }
  return false;
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/**
 * SIGKILLs the agent process serving its port, after checking that this PID (not a wrapper around it) holds the
 * listening socket, and checks that nothing answers on the port afterwards. Throws naming what did not hold.
 */
export async function killAgentForReal(agent: AgentProcess): Promise<void> {
  const pid = agent.proc.pid!;
  if (!(await holdsListeningSocket(pid, agent.port))) throw new Error(`pid ${pid} does not hold the socket listening on port ${agent.port}: killing it would not stop the agent`);
  const exit = await agent.kill('SIGKILL');
  if (exit.signal !== 'SIGKILL') throw new Error(`agent pid ${pid} exited with ${exit.code ?? exit.signal} before it could be killed`);
  if (!(await refusesConnections(agent.port))) throw new Error(`port ${agent.port} still answers after its agent (pid ${pid}) was SIGKILLed`);
}

// ---- the audit -------------------------------------------------------------------------------------------------

export interface AuditResult {
  /** Chunks the source calls for. */
  chunks: number;
  /** Chunks with no good copy among those the manifest lists (or missing from the manifest). */
  lost: string[];
  /** Chunk ids the manifest lists twice, or with more copies than `replicas` (or one node twice). */
  duplicates: string[];
  /**
   * Chunks the manifest lists with fewer good copies than `replicas` on distinct nodes alive at the end: each copy
   * read back (from the agent that holds it, or the folder) and hashed against the source's bytes.
   */
  underReplicated: string[];
  /** Copies a node shows as complete whose bytes do not match their own sidecar. */
  torn: string[];
  /** Complete copies on nodes that the manifest does not list (space wasted, not data at risk). */
  orphans: number;
  /** Anything else wrong with the manifest: wrong offsets, sizes, checksums, file entries. */
  problems: string[];
}

/**
 * Judges a run against the source and the node folders, independently of the engine: the expected chunks come
 * from the source files' sizes, their checksums from hashing the source ranges, and a copy is good only if the
 * bytes in the node's folder hash to that.
 */
export async function auditRun(o: {
  manifest: Manifest;
  files: SourceFile[];
  chunkSize: number;
  replicas: number;
  nodeDirs: Map<string, string>;
  /** The configured nodes; agents among them are read back over HTTP. */
  nodes?: NodeSpec[];
  /** Nodes alive at the end (liveNodes); copies elsewhere count for nothing. Default: every node. */
  live?: Set<string>;
}): Promise<AuditResult> {
  const { manifest } = o;
  const algorithm = manifest.checksumAlgorithm;
  const problems: string[] = [];
  const lost: string[] = [];
  const duplicates = new Set<string>();
  const torn: string[] = [];
  const underReplicated: string[] = [];
  const agents = new Map((o.nodes ?? []).flatMap((n) => ('url' in n ? [[n.id, n] as const] : [])));
  const alive = (nodeId: string): boolean => o.live === undefined || o.live.has(nodeId);

  const listed = new Map<string, Manifest['chunks'][number]>();
  for (const chunk of manifest.chunks) {
    if (listed.has(chunk.id)) duplicates.add(chunk.id);
    listed.set(chunk.id, chunk);
    const nodes = chunk.copies.map((c) => c.nodeId);
    if (nodes.length > o.replicas || new Set(nodes).size !== nodes.length) duplicates.add(chunk.id);
  }

  const onNodes = await canonicalCopies(o.nodeDirs);
  const byId = new Map<string, CanonicalCopy[]>();
  for (const copy of onNodes) {
    const list = byId.get(copy.id) ?? [];
    list.push(copy);
    byId.set(copy.id, list);
  }
  // Hash every complete-looking copy once: torn ones are reported whatever the manifest says.
  const actual = new Map<CanonicalCopy, string>();
  for (const copy of onNodes) {
    let size = -1;
    try {
      size = (await stat(copy.dataPath)).size;
    } catch {
      // gone
    }
    const hex = size === copy.size ? await hashFile(copy.dataPath, algorithm) : `size ${size}`;
    actual.set(copy, hex);
    if (hex !== copy.checksum) torn.push(`${copy.id} on ${copy.nodeId}`);
  }

  const expectedIds = new Set<string>();
  let chunks = 0;
  for (const file of o.files) {
    const count = Math.ceil(file.size / o.chunkSize);
    const entry = manifest.files.find((f) => f.key === file.key);
    if (!entry) problems.push(`${file.key} is not in the manifest`);
    else {
      if (entry.size !== file.size) problems.push(`${file.key}: manifest size ${entry.size}, source ${file.size}`);
      if (entry.status !== 'complete') problems.push(`${file.key}: manifest status ${entry.status} (${entry.error ?? ''})`);
      if (entry.chunkCount !== count) problems.push(`${file.key}: manifest chunkCount ${entry.chunkCount}, expected ${count}`);
    }
    for (let index = 0; index < count; index++) {
      chunks++;
      const id = `${file.key}_chunk_${index}`;
      expectedIds.add(id);
      const offset = index * o.chunkSize;
      const size = Math.min(o.chunkSize, file.size - offset);
      const want = await hashFile(file.path, algorithm, offset, size);
      const chunk = listed.get(id);
      if (!chunk) {
        lost.push(`${id} (not in the manifest)`);
        continue;
      }
      if (chunk.offset !== offset || chunk.size !== size || chunk.checksum !== want) {
        problems.push(`${id}: manifest says offset ${chunk.offset} size ${chunk.size} checksum ${chunk.checksum}; source has ${offset} ${size} ${want}`);
      }
      const goodOn = new Set<string>();
      for (const listedCopy of chunk.copies) {
        if (!alive(listedCopy.nodeId) || goodOn.has(listedCopy.nodeId)) continue;
        const agent = agents.get(listedCopy.nodeId);
        if (agent) {
          const served = await servedChecksum(agent, id, algorithm);
          if (served?.hex === want && served.size === size) goodOn.add(listedCopy.nodeId);
          continue;
        }
        const copy = (byId.get(id) ?? []).find((c) => c.nodeId === listedCopy.nodeId);
        if (copy !== undefined && copy.size === size && actual.get(copy) === want) goodOn.add(listedCopy.nodeId);
      }
      if (goodOn.size === 0) lost.push(id);
      if (goodOn.size < o.replicas) {
        underReplicated.push(`${id} (${goodOn.size} good on live nodes${goodOn.size ? `: ${[...goodOn].join('+')}` : ''}; the manifest lists ${chunk.copies.map((c) => c.nodeId).join('+') || 'no copy'})`);
      }
    }
  }
  for (const id of listed.keys()) if (!expectedIds.has(id)) problems.push(`the manifest lists ${id}, which the source does not call for`);

  let orphans = 0;
  for (const copy of onNodes) {
    const chunk = listed.get(copy.id);
    if (!chunk || !chunk.copies.some((c) => c.nodeId === copy.nodeId)) orphans++;
  }
  return { chunks, lost, duplicates: [...duplicates], underReplicated, torn, orphans, problems };
}

/** verify (the engine's) and a byte-exact reassembly of every file, compared with the source's own MD5. */
export async function verifyAndReassemble(o: { loaded: LoadedConfig; manifestPath: string; files: SourceFile[] }): Promise<string[]> {
  const problems: string[] = [];
  const report = await verifyRun({ loaded: o.loaded, manifestPath: o.manifestPath });
  for (const p of report.problems) problems.push(`verify: ${p.reason}: ${p.chunkId} on ${p.nodeId}: ${p.detail}`);
  const out = await tempRoot('ci-faults-out-');
  for (const [i, file] of o.files.entries()) {
    const outPath = join(out, `file-${i}`);
    try {
      const r = await reassembleFile({ loaded: o.loaded, manifestPath: o.manifestPath, key: file.key, outPath });
      if (!r.matched) problems.push(`reassemble ${file.key}: checksum ${r.actual}, manifest ${r.expected}`);
      const md5 = await md5OfFile(outPath);
      const size = (await stat(outPath)).size;
      if (md5 !== file.md5 || size !== file.size) problems.push(`reassemble ${file.key}: ${size} bytes md5 ${md5}, source ${file.size} bytes md5 ${file.md5}`);
    } catch (error) {
      problems.push(`reassemble ${file.key}: ${(error as Error).message}`);
    }
  }
  await rm(out, { recursive: true, force: true });
  return problems;
}

// ---- scenarios' common steps -------------------------------------------------------------------------------------

export interface ScenarioOptions {
  trials: number;
  seed: string;
  /** Progress lines (one per trial); silent by default. */
  log?: (line: string) => void;
}

export const LOCAL: DetectionResult = { cloud: 'local', signal: 'flag', detail: '--cloud local (fault suite)', elapsedMs: 0, probes: [] };

/** Runs a scenario's trials, timing them; a scenario that throws becomes a failure of its row. */
export async function timed(row: ScenarioRow, body: () => Promise<void>): Promise<ScenarioRow> {
  const started = performance.now();
  try {
    await body();
  } catch (error) {
    row.failures.push(`the scenario stopped: ${(error as Error).stack ?? String(error)}`);
  }
  row.seconds = (performance.now() - started) / 1000;
  return row;
}

/** Audits the run against the nodes alive now (probed, not assumed), then verify and reassemble every file. */
export async function finishTrial(row: ScenarioRow, label: string, project: Project, files: SourceFile[], result: { manifest: Manifest; manifestPath: string }): Promise<void> {
  const live = await liveNodes(project.nodes);
  const audit = await auditRun({ manifest: result.manifest, files, chunkSize: project.chunkSize, replicas: project.replicas, nodeDirs: project.nodeDirs, nodes: project.nodes, live });
  const checks = await verifyAndReassemble({ loaded: project.loaded, manifestPath: result.manifestPath, files });
  addTrial(row, label, result.manifest, audit, checks);
  if (audit.orphans > 0) row.notes.push(`${label}: ${audit.orphans} complete copies on nodes that the manifest does not list`);
}

// ---- agents ------------------------------------------------------------------------------------------------------

export interface Cluster {
  agents: AgentProcess[];
  tokenEnvs: string[];
}

let clusterCount = 0;

export interface AgentExtra {
  maxBytes?: number;
  /** Command-line flags, given the agent's id (a1, a2, ...). */
  args?: (id: string) => string[];
  /** Environment variables for this agent's process only (agents are then started one after another). */
  env?: Record<string, string>;
}

/** `n` agents (ids a1, a2, ... in agentSpecs); `extra[i]` adds a quota, flags or environment to the i-th. */
export async function startAgents(n: number, extra: AgentExtra[] = []): Promise<Cluster> {
  const tag = ++clusterCount;
  const spawnOne = (i: number): Promise<AgentProcess> =>
    spawnAgent({ ...(extra[i]?.maxBytes !== undefined ? { maxBytes: extra[i].maxBytes } : {}), ...(extra[i]?.args ? { args: extra[i].args(`a${i + 1}`) } : {}) });
  let agents: AgentProcess[];
  if (extra.some((e) => e.env)) {
    // spawnAgent passes this process's environment on: set it around each start, one at a time.
    agents = [];
    for (let i = 0; i < n; i++) agents.push(await withEnv(extra[i]?.env ?? {}, () => spawnOne(i)));
  } else agents = await Promise.all(Array.from({ length: n }, (_, i) => spawnOne(i)));
  const tokenEnvs = agents.map((a, i) => {
    const name = `FAULTS_C${tag}_A${i + 1}_TOKEN`;
    process.env[name] = a.token;
    return name;
  });
  return { agents, tokenEnvs };
}

/** Runs `fn` with `env` set in process.env, then puts the previous values back. */
export async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Starts a stopped agent again on its folder, port and token, as an operator restarting it would. */
export async function restartAgent(c: Cluster, index: number): Promise<void> {
  const old = c.agents[index]!;
  await old.kill('SIGKILL');
  c.agents[index] = await spawnAgent({ dir: old.dir, port: old.port, token: old.token! });
}

export async function stopAgents(c: Cluster): Promise<void> {
  await Promise.all(c.agents.map((a) => a.kill('SIGKILL')));
  for (const name of c.tokenEnvs) delete process.env[name];
}

export function agentSpecs(c: Cluster, urls?: string[]): NodeSpec[] {
  return c.agents.map((a, i) => ({ id: `a${i + 1}`, url: urls?.[i] ?? a.url, tokenEnv: c.tokenEnvs[i]!, dir: a.dir }));
}

// ---- results ---------------------------------------------------------------------------------------------------

export interface ScenarioRow {
  scenario: string;
  trials: number;
  chunks: number;
  retries: number;
  replacements: number;
  lost: number;
  duplicates: number;
  /** Chunks with fewer good copies on live nodes than `replicas` (AuditResult.underReplicated). */
  underReplicated: number;
  seconds: number;
  /** Everything that went wrong besides lost/duplicates: each a sentence naming trial and chunk. */
  failures: string[];
  /** Measurements worth reporting that are not columns (orphans, cancel latency, faults injected...). */
  notes: string[];
}

export function emptyRow(scenario: string): ScenarioRow {
  return { scenario, trials: 0, chunks: 0, retries: 0, replacements: 0, lost: 0, duplicates: 0, underReplicated: 0, seconds: 0, failures: [], notes: [] };
}

/** Adds one finished trial: manifest counters, the audit, and verify/reassemble problems. */
export function addTrial(row: ScenarioRow, label: string, manifest: Manifest, audit: AuditResult, checkProblems: string[]): void {
  row.trials++;
  row.chunks += audit.chunks;
  row.retries += manifest.totals.retries;
  row.replacements += manifest.totals.replacements;
  row.lost += audit.lost.length;
  row.duplicates += audit.duplicates.length;
  row.underReplicated += audit.underReplicated.length;
  if (manifest.status !== 'complete') row.failures.push(`${label}: manifest status ${manifest.status}`);
  for (const id of audit.lost) row.failures.push(`${label}: lost ${id}`);
  for (const id of audit.duplicates) row.failures.push(`${label}: duplicate ${id}`);
  for (const id of audit.underReplicated) row.failures.push(`${label}: under-replicated ${id}`);
  for (const t of audit.torn) row.failures.push(`${label}: a node shows ${t} as complete but its bytes do not match its sidecar`);
  for (const p of [...audit.problems, ...checkProblems]) row.failures.push(`${label}: ${p}`);
}

export function markdownTable(rows: ScenarioRow[]): string {
  const header = '| scenario | trials | chunks | retries | re-placements | lost | duplicates | under-replicated | seconds |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) => `| ${r.scenario} | ${r.trials} | ${r.chunks} | ${r.retries} | ${r.replacements} | ${r.lost} | ${r.duplicates} | ${r.underReplicated} | ${r.seconds.toFixed(1)} |`);
  return [header, ...lines].join('\n');
}
