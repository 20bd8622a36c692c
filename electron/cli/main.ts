// cloud-ingest: the engine, headless. Exit codes: see EXIT below and README.
import { readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { formatDiagnostic } from '../../shared/config/validate.ts';
import {
  ConfigError,
  detectCloud,
  DetectionError,
  EARLIER_TEST_FILES,
  ensureDataFile,
  latestManifestPath,
  listManifests,
  listResumableRuns,
  loadConfig,
  ManifestError,
  NodeError,
  NoHealthyNodeError,
  openSource,
  ORIGINAL_TEST_FILES,
  probeNodes,
  PROJECT_ROOT,
  ReassembleError,
  reassembleFile,
  ReassembleInputError,
  RepairError,
  repairRun,
  ResumeError,
  runIngest,
  SourceSelectionError,
  StorageError,
  testFileBytes,
  verifyRun,
} from '../engine/index.ts';
import type { LoadedConfig, ReassembleProgress } from '../engine/index.ts';
import type { RepairAction, RepairEvent, RepairReport } from '../../shared/types.ts';
import { quietSdkStreamWarnings } from './process-warnings.ts';
import { bytesOf, formatBytes, ProgressView, TaskLine } from './progress.ts';

export const EXIT = {
  ok: 0,
  /** The command ran but the data is not all right: failed files, verify problems, checksum mismatch. */
  incomplete: 1,
  /** Bad usage or bad config. */
  usage: 2,
  noHealthyNode: 3,
  /** The source store failed: missing bucket, access denied, unreachable endpoint, bad credentials. */
  source: 4,
  cancelled: 130,
} as const;

class UsageError extends Error {}

const COMMON = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `Usage: cloud-ingest <command> [options]

Commands:
  run          [--pattern GLOB] [--cloud C] [--resume RUN_ID|latest] [--json]
                                                      ingest the detected cloud's data source into the nodes
  runs         [--json]                                list past runs and unfinished ones that can be resumed
  detect       [--cloud C] [--json]                    show the detected cloud, its evidence and the store used
  nodes        [--json]                                probe every node and show its health
  verify       [--manifest M] [--json]                 re-hash every received chunk against a manifest
  repair       [--manifest M] [--file KEY] [--chunk ID] [--json]
                                                      restore missing or damaged copies, write the manifest's next version
  reassemble   --file KEY --out PATH [--manifest M] [--force]
                                                      rebuild a file from its chunks and check it (--force: replace an existing file)
  make-test-data [--scale S] [--out DIR]               generate the original design's test files
  agent        --port P --dir D [--token-env NAME]     run a node agent (see README)
  version                                              print the version (also --version, -V)

Every command takes --config FILE (default: config/data_sources.yml). verify and reassemble default to the latest run's manifest.
Exit codes: 0 ok, 1 finished with failures, 2 usage or config error, 3 no healthy node, 4 source store error, 130 cancelled.`;

function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  const all = { ...COMMON, ...options };
  try {
    return parseArgs({ args: joinOptionValues(argv, all), options: all, allowPositionals: false, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${USAGE}`);
  }
}

/**
 * An option declared to take a value takes the next argument whatever it begins with, as GNU getopt does
 * (`--file -name`). parseArgs refuses such a value as ambiguous unless it is attached: `--file=-name`.
 */
function joinOptionValues(argv: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const takesValue = new Map<string, string>();
  for (const [name, option] of Object.entries(options)) {
    if (option.type !== 'string') continue;
    takesValue.set(`--${name}`, name);
    if (option.short) takesValue.set(`-${option.short}`, name);
  }
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [...joined, ...argv.slice(i)];
    const name = takesValue.get(arg);
    const value = argv[i + 1];
    if (name !== undefined && value?.startsWith('-')) {
      joined.push(`--${name}=${value}`);
      i++;
    } else joined.push(arg);
  }
  return joined;
}

function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
}

function showWarnings(loaded: LoadedConfig): void {
  for (const warning of loaded.warnings) process.stderr.write(`${formatDiagnostic(warning)}\n`);
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values } = parse(argv, { pattern: { type: 'string', short: 'p' }, cloud: { type: 'string' }, resume: { type: 'string' } });
  const loaded = await loadConfig(values.config);
  showWarnings(loaded);
  const resume = values.resume === 'latest' ? (await listResumableRuns(loaded)).at(-1)?.runId : values.resume;
  if (values.resume === 'latest' && !resume) throw new UsageError('There is no unfinished run to resume. Fix: see `cloud-ingest runs`.');
  const detection = await detectCloud(values.cloud ? { flag: values.cloud } : {});
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new Error('cancelled by the user'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const view = values.json ? undefined : new ProgressView();
  if (!values.json) process.stderr.write(`Cloud: ${detection.cloud} (${detection.signal}: ${detection.detail}, ${detection.elapsedMs} ms)\n`);
  try {
    const { manifest, manifestPath, failedFiles } = await runIngest({
      tool: 'cli',
      loaded,
      detection,
      ...(values.pattern ? { pattern: values.pattern } : {}),
      ...(resume ? { resume } : {}),
      signal: controller.signal,
      ...(view ? { onEvent: (e) => view.handle(e) } : {}),
    });
    view?.stop();
    if (manifest.totals.files === 0 && !resume) {
      const pattern = values.pattern ?? loaded.config.ingestion.file_pattern;
      process.stderr.write(`No files found matching ${pattern} in ${manifest.source.kind} ${manifest.source.location}. Fix: check --pattern (or ingestion.file_pattern) and the source's folder, bucket and prefix.\n`);
    }
    const failed = failedFiles.shown;
    const seconds = (Date.parse(manifest.finishedAt) - Date.parse(manifest.startedAt)) / 1000;
    const summary = {
      runId: manifest.runId,
      status: manifest.status,
      cloud: manifest.cloud,
      source: manifest.source,
      manifest: manifestPath,
      files: manifest.totals.files,
      failedFiles: failed,
      ...(failedFiles.count > failed.length ? { failedFilesNotShown: failedFiles.count - failed.length } : {}),
      chunks: manifest.totals.chunks,
      bytes: manifest.totals.bytes,
      retries: manifest.totals.retries,
      replacements: manifest.totals.replacements,
      skipped: manifest.totals.skipped,
      ...(manifest.shortfall ? { shortfall: manifest.shortfall } : {}),
      seconds,
      nodes: manifest.nodes.map((n) => ({ id: n.id, chunks: n.chunks, bytes: n.bytes, healthy: n.healthy })),
    };
    const nodeLines = manifest.nodes.map((n) => `  ${n.id.padEnd(16)} ${String(n.chunks).padStart(6)} chunks  ${formatBytes(n.bytes).padStart(10)}${n.healthy ? '' : '  (unhealthy)'}`).join('\n');
    const rate = seconds > 0 ? ` (${(manifest.totals.bytes / seconds / 1e6).toFixed(0)} MB/s)` : '';
    print(values.json, summary, `${manifest.status}: ${manifest.totals.files} file(s), ${manifest.totals.chunks} chunk(s), ${formatBytes(manifest.totals.bytes)} in ${seconds.toFixed(2)} s${rate}; ${manifest.totals.retries} retries, ${manifest.totals.replacements} re-placements, ${manifest.totals.skipped} already present\n${nodeLines}\nmanifest: ${manifestPath}`);
    if (manifest.status === 'cancelled') return EXIT.cancelled;
    return failedFiles.count > 0 || manifest.status !== 'complete' ? EXIT.incomplete : EXIT.ok;
  } finally {
    view?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function cmdRuns(argv: string[]): Promise<number> {
  const { values } = parse(argv, {});
  const loaded = await loadConfig(values.config);
  const [finished, resumable] = await Promise.all([listManifests(loaded), listResumableRuns(loaded)]);
  const lines = [
    ...finished.map((m) => `${m.runId}  ${m.status.padEnd(9)}  ${m.path}`),
    ...resumable.filter((r) => !finished.some((m) => m.runId === r.runId)).map((r) => `${r.runId}  ${'killed'.padEnd(9)}  ${r.chunksDone} chunk(s) delivered; continue with: cloud-ingest run --resume ${r.runId}`),
  ];
  const resumeHint = resumable.length ? `\nunfinished: ${resumable.map((r) => r.runId).join(', ')} (cloud-ingest run --resume RUN_ID)` : '';
  print(values.json, { runs: finished, resumable }, lines.length ? `${lines.join('\n')}${resumeHint}` : 'no runs yet');
  return EXIT.ok;
}

async function cmdDetect(argv: string[]): Promise<number> {
  const { values } = parse(argv, { cloud: { type: 'string' } });
  const loaded = await loadConfig(values.config);
  const detection = await detectCloud(values.cloud ? { flag: values.cloud } : {});
  let store: { kind: string; location: string; endpoint?: string } | { error: string };
  try {
    const bucket = await openSource(loaded, detection.cloud);
    store = bucket.info;
    await bucket.close();
  } catch (error) {
    store = { error: (error as Error).message };
  }
  const probes = detection.probes.map((p) => `  ${p.cloud.padEnd(6)} ${p.endpoint}: ${p.ok ? 'yes' : 'no'} — ${p.detail} (${p.elapsedMs} ms)`).join('\n');
  const storeText = 'error' in store ? `store: not available — ${store.error}` : `store: ${store.kind} ${store.location}${store.endpoint ? ` (endpoint ${store.endpoint})` : ''}`;
  print(values.json, { ...detection, store }, `cloud: ${detection.cloud}\nsignal: ${detection.signal} — ${detection.detail}\ntook: ${detection.elapsedMs} ms${probes ? `\nprobes:\n${probes}` : ''}\n${storeText}`);
  return EXIT.ok;
}

async function cmdNodes(argv: string[]): Promise<number> {
  const { values } = parse(argv, {});
  const loaded = await loadConfig(values.config);
  const statuses = await probeNodes(loaded);
  const lines = statuses.map((s) => {
    const free = s.freeBytes !== undefined ? `free ${formatBytes(s.freeBytes)}` : '';
    const held = s.chunkCount !== undefined ? `${s.chunkCount} chunks, ${formatBytes(s.bytesHeld ?? 0)}` : '';
    return `${s.id.padEnd(16)} ${s.state.padEnd(9)} ${s.kind.padEnd(6)} ${String(s.latencyMs ?? '-').padStart(5)} ms  ${[free, held].filter(Boolean).join(', ')}  ${s.location}${s.error ? `\n${' '.repeat(17)}${s.error}` : ''}`;
  });
  print(values.json, statuses, lines.join('\n'));
  return statuses.some((s) => s.state === 'healthy') ? EXIT.ok : EXIT.noHealthyNode;
}

async function manifestOrLatest(loaded: LoadedConfig, given: string | undefined): Promise<string> {
  if (given) {
    const problem = await stat(given).then(
      (s) => (s.isFile() ? undefined : s.isDirectory() ? 'it is a folder' : 'it is not a regular file'),
      (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? 'it does not exist' : error.message),
    );
    if (problem) throw new UsageError(`Cannot read manifest ${given}: ${problem}. Fix: pass --manifest with a run's .json file (see \`cloud-ingest runs\`), or leave it out to use the latest run's.`);
    return given;
  }
  const latest = await latestManifestPath(loaded);
  if (!latest) throw new UsageError('No run manifest found. Fix: run `cloud-ingest run` first, or pass --manifest PATH.');
  return latest;
}

async function cmdVerify(argv: string[]): Promise<number> {
  const { values } = parse(argv, { manifest: { type: 'string', short: 'm' } });
  const loaded = await loadConfig(values.config);
  const manifestPath = await manifestOrLatest(loaded, values.manifest);
  const line = new TaskLine();
  const onProgress = values.json ? undefined : (done: number, total: number): void => line.update(`checking copies ${done}/${total}`, done === total);
  const report = await verifyRun({ loaded, manifestPath, ...(onProgress ? { onProgress } : {}) });
  line.end();
  const problems = report.problems.map((p) => `  ${p.reason}: ${p.chunkId} on ${p.nodeId}: ${p.detail}`).join('\n');
  const verdict = report.problems.length === 0 ? 'all chunks verified' : `${report.problems.length} problem(s), ${report.unrecoverable.length} chunk(s) with no good copy`;
  print(values.json, report, `${report.ok}/${report.checked} chunk copies match the manifest: ${verdict}\nmanifest: ${manifestPath}${problems ? `\n${problems}` : ''}`);
  return report.unrecoverable.length > 0 || report.problems.length > 0 ? EXIT.incomplete : EXIT.ok;
}

async function cmdRepair(argv: string[]): Promise<number> {
  const { values } = parse(argv, { manifest: { type: 'string', short: 'm' }, file: { type: 'string', short: 'f', multiple: true }, chunk: { type: 'string', multiple: true } });
  const loaded = await loadConfig(values.config);
  const manifestPath = await manifestOrLatest(loaded, values.manifest);
  const line = new TaskLine();
  const progress = values.json ? undefined : (e: RepairEvent): void => line.update(repairProgressLine(e), e.type !== 'repair-checked' || e.done === e.total);
  const report = await repairRun({ loaded, manifestPath, ...(values.file ? { files: values.file } : {}), ...(values.chunk ? { chunkIds: values.chunk } : {}), ...(progress ? { onEvent: progress } : {}) });
  line.end();
  print(values.json, report, repairText(report));
  return report.status === 'complete' ? EXIT.ok : EXIT.incomplete;
}

function repairProgressLine(e: RepairEvent): string {
  if (e.type === 'repair-checked') return `checking copies ${e.done}/${e.total}`;
  if (e.type === 'repair-action') return `restoring ${e.done + 1}/${e.total}: ${e.action.chunkId}`.slice(0, 78);
  return 'done';
}

function repairText(report: RepairReport): string {
  const restored = report.actions.filter((a) => a.outcome === 'restored');
  const failed = report.actions.filter((a) => a.outcome === 'failed');
  const line = (a: RepairAction): string => `  ${a.outcome === 'restored' ? 'restored' : 'FAILED  '} ${a.chunkId} on ${a.nodeId} from ${a.from === 'copy' ? `the copy on ${a.sourceNodeId}` : 'the source'}${a.detail ? `: ${a.detail}` : ''}`;
  const changed = report.changedSources.length ? `\nchanged at the source since the run (re-ingest them): ${report.changedSources.join(', ')}` : '';
  const head = report.problems.length === 0 && report.actions.length === 0 ? `${report.checked} copies checked: nothing to repair` : `${report.checked} copies checked, ${report.problems.length} problem(s); ${restored.length} copy(ies) restored, ${failed.length} failed`;
  return `${report.status}: ${head}\n${report.actions.map(line).join('\n')}${changed}\nmanifest: ${report.manifestPath} (follows ${report.previousManifestPath})`.replace(/\n\n/g, '\n');
}

async function cmdReassemble(argv: string[]): Promise<number> {
  const { values } = parse(argv, { manifest: { type: 'string', short: 'm' }, file: { type: 'string', short: 'f' }, out: { type: 'string', short: 'o' }, force: { type: 'boolean', default: false } });
  if (!values.file || !values.out) throw new UsageError('reassemble needs --file KEY and --out PATH.');
  const loaded = await loadConfig(values.config);
  const manifestPath = await manifestOrLatest(loaded, values.manifest);
  const line = new TaskLine();
  const onProgress = values.json ? undefined : (p: ReassembleProgress): void => line.update(bytesOf(p.phase, p.bytes, p.total), p.bytes === p.total);
  const report = await reassembleFile({ loaded, manifestPath, key: values.file, outPath: values.out, force: values.force, ...(onProgress ? { onProgress } : {}) });
  line.end();
  print(values.json, report, `${report.matched ? 'ok' : 'MISMATCH'}: ${report.key} → ${report.outPath} (${formatBytes(report.bytes)})\nchecksum: ${report.actual} (manifest ${report.expected})\nmd5: ${report.md5Hex}`);
  return report.matched ? EXIT.ok : EXIT.incomplete;
}

async function cmdMakeTestData(argv: string[]): Promise<number> {
  const { values } = parse(argv, { scale: { type: 'string', default: '1' }, out: { type: 'string' } });
  const scale = Number(values.scale);
  if (!(scale > 0)) throw new UsageError(`--scale must be a number greater than 0, got "${values.scale}".`);
  const root = values.out ?? join(PROJECT_ROOT, 'test_data');
  for (const file of ORIGINAL_TEST_FILES) {
    const path = join(root, file.folder, file.name);
    const bytes = testFileBytes(file.mib, scale);
    const made = await ensureDataFile(path, bytes, `${file.folder}/${file.name}`);
    process.stderr.write(`${made ? 'made' : 'kept'} ${relative(process.cwd(), path) || path} (${formatBytes(bytes)})\n`);
  }
  for (const file of EARLIER_TEST_FILES) {
    const path = join(root, file.folder, file.name);
    if (await stat(path).then((s) => s.isFile(), () => false)) {
      process.stderr.write(`note: ${relative(process.cwd(), path) || path} was made by an earlier make-test-data (the files now have the original design's names) and will be ingested too. Fix: delete it if you do not want it.\n`);
    }
  }
  return EXIT.ok;
}

async function cmdAgent(argv: string[]): Promise<number> {
  const module = (await import('./agent.ts').catch(() => undefined)) as { runAgentCommand?: (argv: string[]) => Promise<number> } | undefined;
  if (!module?.runAgentCommand) throw new UsageError('The node agent is not part of this build.');
  return module.runAgentCommand(argv);
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  run: cmdRun,
  runs: cmdRuns,
  detect: cmdDetect,
  nodes: cmdNodes,
  verify: cmdVerify,
  reassemble: cmdReassemble,
  repair: cmdRepair,
  'make-test-data': cmdMakeTestData,
  agent: cmdAgent,
};

export function describeError(error: unknown): { code: number; message: string } {
  if (error instanceof UsageError) return { code: EXIT.usage, message: error.message };
  if (error instanceof ConfigError) return { code: EXIT.usage, message: error.message };
  if (error instanceof DetectionError || error instanceof SourceSelectionError || error instanceof ResumeError || error instanceof RepairError || error instanceof ReassembleInputError || error instanceof ManifestError) return { code: EXIT.usage, message: error.message };
  if (error instanceof NoHealthyNodeError) return { code: EXIT.noHealthyNode, message: error.message };
  if (error instanceof StorageError) return { code: EXIT.source, message: `${error.message}\nHint: ${error.hint}` };
  if (error instanceof NodeError || error instanceof ReassembleError) return { code: EXIT.incomplete, message: error.message };
  if (error instanceof Error && error.message === 'cancelled by the user') return { code: EXIT.cancelled, message: 'cancelled' };
  const message = error instanceof Error ? error.message : String(error);
  return { code: EXIT.incomplete, message: `${message}${process.env.CLOUD_INGEST_DEBUG ? `\n${(error as Error).stack ?? ''}` : '\n(set CLOUD_INGEST_DEBUG=1 for details)'}` };
}

async function printVersion(): Promise<number> {
  const { version } = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
  process.stdout.write(`cloud-ingest ${version} (Node ${process.version})\n`);
  return EXIT.ok;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-V' || command === 'version') return printVersion();
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? EXIT.ok : EXIT.usage;
  }
  const handler = COMMANDS[command];
  if (!handler) {
    process.stderr.write(`Unknown command "${command}".\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  if (command !== 'agent' && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  try {
    return await handler(rest);
  } catch (error) {
    const { code, message } = describeError(error);
    process.stderr.write(`cloud-ingest ${command}: ${message}\n`);
    return code;
  }
}

// Run as `node electron/cli/main.ts`; the launcher (bin/cloud-ingest.js) runs the CLI through start.ts.
const invokedDirectly = process.argv[1] !== undefined && /cli[\\/]main\.ts$/.test(process.argv[1]);
if (invokedDirectly) {
  quietSdkStreamWarnings();
  process.exitCode = await main(process.argv.slice(2));
}
