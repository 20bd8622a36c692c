// The engine behind the app's contract: one handler per request channel. Runs inside the engine worker
// (engine-worker.ts), never on Electron's main thread or serve mode's socket thread. Plain Node; no electron.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { chunkSizeBytes } from '../../shared/config/types.ts';
import type { CloudName, NodeConfig } from '../../shared/config/types.ts';
import { validateConfigText } from '../../shared/config/validate.ts';
import type { ApiErrorData, ConfigSnapshot, TaskName, DetectionView, Events, Req, RequestChannel, Res, VerifyResult } from '../../shared/ipc/contract.ts';
import type { DetectionResult, NodeStatus, RepairEvent, ResumableRun } from '../../shared/types.ts';
import { chunksOnNode, ConfigError, copiesPerNode, detectCloud, effectiveNodes, findFiles, journalPath, listManifests, listResumableRuns, loadConfig, locateChunk, newRunId, manifestPreview, openNodes, previewAndIndex, probeNodes, readJournal, reassembleFile, repairRun, runIngest, verifyRun } from '../engine/index.ts';
import type { ChunkPageIndex, LoadedConfig, ManifestPreview, ReassembleProgress } from '../engine/index.ts';
import { ActivityLog, activityDetail } from './activity.ts';
import { PageIndexCache } from './page-indexes.ts';
import { WorkerWatch } from './workers.ts';
import { BatchPacer, ProgressFolder } from './progress.ts';
import { setNodesInText } from './yaml-nodes.ts';
import type { Renamed } from './yaml-nodes.ts';

export type Emit = <E extends keyof Events>(event: E, payload: Events[E]) => void;

export interface ServiceOptions {
  configPath: string;
  emit: Emit;
  /** Progress batch interval; 110 ms keeps the contract's at most 10 updates a second with room for jitter. */
  batchMs?: number;
  detect?: typeof detectCloud;
  /** True when the host can show a folder dialog (Electron), so errors can point at it. */
  canPickFolder?: boolean;
  mode?: 'electron' | 'serve';
  /** How many files and chunks of a manifest openManifest sends at most (MANIFEST_PREVIEW_ENTRIES). */
  previewEntries?: number;
}

/** Files and chunks of a run's manifest the Received screen gets at most: a million-file run's manifest is 240 MB. */
export const MANIFEST_PREVIEW_ENTRIES = 20_000;

/** An error the renderer shows as is: it says what went wrong and what to do. */
export class HostError extends Error {
  readonly data: ApiErrorData;
  constructor(data: ApiErrorData) {
    super(data.message);
    this.name = 'HostError';
    this.data = data;
  }
}

export function toErrorData(error: unknown): ApiErrorData {
  if (error instanceof HostError) return error.data;
  if (error instanceof ConfigError) return { code: 'config_invalid', message: error.message, diagnostics: error.diagnostics };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'failed', message };
}

type Handlers = { [C in RequestChannel]: (req: Req<C>) => Promise<Res<C>> };

export class EngineService {
  private readonly configPath: string;
  private readonly emit: Emit;
  private readonly batchMs: number;
  private readonly detect: typeof detectCloud;
  private readonly canPick: boolean;
  private readonly mode: 'electron' | 'serve';
  private readonly previewEntries: number;
  private readonly activityLog = new ActivityLog();
  private readonly workerWatch = new WorkerWatch();
  /** Page indexes of the latest manifests opened, for the Received screen's pages of a large run. */
  private readonly pageIndexes = new PageIndexCache();
  private detection: Promise<DetectionResult> | undefined;
  private override: CloudName | null = null;
  /** Set while a start request loads the config, so two quick starts cannot both begin a run. */
  private starting = false;
  private ingest: { folder: ProgressFolder; abort: AbortController; pacer: BatchPacer; done: Promise<void> } | undefined;
  /**
   * The run in progress as the engine names it (its journal): the id is known up front for a resume and from
   * `run-started` otherwise; `since` covers the moment between the engine opening its journal and that event.
   */
  private active: { runId?: string; since: string } | undefined;
  private readonly tasks = new Map<TaskName, AbortController>();
  /** Every read-modify-write of the config file runs after the previous one: two tabs' edits both land. */
  private configQueue: Promise<unknown> = Promise.resolve();
  /** Folders the user picked in a folder dialog (Electron) for reassembled files, besides the project folder. */
  private readonly outputDirs = new Set<string>();

  constructor(options: ServiceOptions) {
    this.configPath = resolve(options.configPath);
    this.emit = options.emit;
    this.batchMs = options.batchMs ?? 110;
    this.detect = options.detect ?? detectCloud;
    this.canPick = options.canPickFolder ?? false;
    this.mode = options.mode ?? 'serve';
    this.previewEntries = options.previewEntries ?? MANIFEST_PREVIEW_ENTRIES;
  }

  async handle<C extends RequestChannel>(channel: C, req: Req<C>): Promise<Res<C>> {
    const handler = this.handlers[channel] as (r: Req<C>) => Promise<Res<C>>;
    return handler(req);
  }

  async close(): Promise<void> {
    this.ingest?.abort.abort();
    for (const task of this.tasks.values()) task.abort();
    await this.ingest?.done;
    await this.workerWatch.close();
  }

  private readonly handlers: Handlers = {
    loadConfig: async () => this.snapshot(await this.readText()),

    saveConfig: ({ text, baseRevision }) => this.serializedConfigEdit(async () => {
      const snapshot = this.snapshot(text);
      if (snapshot.diagnostics.some((d) => d.severity === 'error')) return { saved: false, snapshot };
      if (baseRevision !== undefined) {
        const onDisk = this.snapshot(await this.readText());
        // Someone else (another tab, the Nodes screen, an editor) changed the file since this text was loaded.
        if (onDisk.revision !== baseRevision) return { saved: false, conflict: onDisk, snapshot };
      }
      await this.writeAtomically(text);
      return { saved: true, snapshot };
    }),

    detectCloud: async ({ override }) => {
      if (override !== undefined) this.override = override;
      else this.detection = undefined; // no override given: detect again
      return this.detectionView();
    },

    probeNodes: async () => {
      const loaded = await loadConfig(this.configPath);
      const statuses = await withHoldings(loaded, await probeNodes(loaded));
      this.emit('nodeStatus', statuses);
      return statuses;
    },

    pullWorkers: async () => this.workerWatch.view(await loadConfig(this.configPath)),

    upsertNode: async ({ node, originalId }) => this.editNodes(originalId !== undefined && originalId !== node.id ? { from: originalId, to: node.id } : undefined, (nodes) => {
      const clash = nodes.findIndex((n) => n.id === node.id);
      if (originalId === undefined) {
        if (clash >= 0) throw new HostError({ code: 'invalid_request', message: `A node with id "${node.id}" already exists. Fix: choose another id, or edit that node.` });
        nodes.push(node);
        return;
      }
      const at = nodes.findIndex((n) => n.id === originalId);
      if (at < 0) throw new HostError({ code: 'not_found', message: `No node "${originalId}" in the config. Fix: reload the config; someone may have changed it.` });
      if (clash >= 0 && clash !== at) throw new HostError({ code: 'invalid_request', message: `A node with id "${node.id}" already exists. Fix: choose another id.` });
      nodes[at] = node;
    }),

    removeNode: async ({ id }) => this.editNodes(undefined, (nodes) => {
      const at = nodes.findIndex((n) => n.id === id);
      if (at < 0) throw new HostError({ code: 'not_found', message: `No node "${id}" in the config. Fix: reload the config.` });
      if (nodes.length === 1) throw new HostError({ code: 'invalid_request', message: `"${id}" is the last node; an ingest needs at least one. Fix: add another node first.` });
      nodes.splice(at, 1);
    }),

    startIngest: async ({ pattern, resume }) => {
      if (this.starting || (this.ingest && !this.ingest.folder.ended)) {
        throw new HostError({ code: 'busy', message: 'An ingest is already running. Fix: wait for it to finish or cancel it.' });
      }
      this.starting = true;
      let loaded: LoadedConfig;
      let detection: DetectionResult;
      try {
        loaded = await loadConfig(this.configPath);
        // A resume names a journal: refuse an unknown or finished run here, in the answer, not later in the run.
        if (resume !== undefined) await checkResumable(loaded, resume);
        detection = this.effectiveDetection(await this.detected());
      } finally {
        this.starting = false;
      }
      const runId = resume ?? newRunId();
      const folder = new ProgressFolder(runId, { chunkSize: chunkSizeBytes(loaded.config.ingestion), resumed: resume !== undefined });
      const abort = new AbortController();
      const active: { runId?: string; since: string } = { ...(resume !== undefined ? { runId: resume } : {}), since: new Date().toISOString() };
      this.active = active;
      const pacer = new BatchPacer(() => {
        const batch = folder.flush();
        if (batch) this.emit('ingestProgress', batch);
        return folder.pending;
      }, this.batchMs);
      const done = runIngest({
        tool: 'app',
        loaded,
        detection,
        signal: abort.signal,
        onEvent: (e) => {
          if (e.type === 'run-started') active.runId = e.runId;
          folder.apply(e);
          pacer.poke();
        },
        ...(resume !== undefined ? { resume } : { runId, ...(pattern ? { pattern } : {}) }),
      }).then(
        () => undefined,
        (error: unknown) => folder.fail(toErrorData(error).message, abort.signal.aborted),
      ).finally(async () => {
        if (this.active === active) this.active = undefined;
        pacer.poke();
        await pacer.idle();
      });
      this.ingest = { folder, abort, pacer, done };
      pacer.poke();
      return { runId };
    },

    cancelIngest: async () => {
      const running = this.ingest && !this.ingest.folder.ended;
      if (running) this.ingest?.abort.abort();
      return { cancelled: Boolean(running) };
    },

    ingestSnapshot: async () => this.ingest?.folder.snapshot() ?? null,

    listResumable: async () => {
      // A run that just ended may still be closing its journal (the end line); wait, so it is listed as it ended.
      if (this.ingest?.folder.ended) await this.ingest.done;
      const runs = await listResumableRuns(await loadConfig(this.configPath));
      // The run in progress has no end line yet, so its journal reads like a killed run: leave it out.
      const active = this.active;
      const isActive = (r: ResumableRun): boolean => active !== undefined && (active.runId !== undefined ? r.runId === active.runId : r.startedAt >= active.since);
      return runs
        .filter((r) => !isActive(r))
        .sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId));
    },

    listManifests: async () => (await listManifests(await loadConfig(this.configPath))).sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.path.localeCompare(a.path)),

    openManifest: async ({ path }) => {
      const full = await this.manifestInside(await loadConfig(this.configPath), path);
      // The rest comes a page at a time; the tabs count every copy from the page index, built now (in the preview's
      // pass, unless one is kept for this version of the file) and kept for the pages.
      let preview: ManifestPreview | undefined;
      const index = await this.pageIndexes.get(full, async (indexed) => {
        const both = await previewAndIndex(indexed, this.previewEntries);
        preview = both.preview;
        return both.index;
      });
      const { manifest, partial } = preview ?? (await manifestPreview(full, this.previewEntries));
      return partial ? { ...manifest, partial: { ...partial, perNode: copiesPerNode(index) } } : manifest;
    },

    manifestChunks: async ({ path, nodeId, start, count }) => chunksOnNode(await this.pageIndex(path), nodeId, start, count),

    locateChunk: async ({ path, nodeId, chunkId }) => ({ position: await locateChunk(await this.pageIndex(path), nodeId, chunkId) }),

    findFiles: async ({ path, query, limit }) => findFiles(await this.manifestInside(await loadConfig(this.configPath), path), query, limit),

    verify: async ({ manifestPath, nodeId }) => {
      const loaded = await loadConfig(this.configPath);
      const path = await this.manifestInside(loaded, manifestPath);
      return this.task('verify', async (signal) => {
        const progress = this.throttledProgress('verify');
        const report = await verifyRun({ loaded, manifestPath: path, signal, onProgress: progress });
        progress(report.checked, report.checked, true);
        // verifyRun places each problem in its file, with both checksums: the manifest is not read again here.
        const problems = nodeId ? report.problems.filter((p) => p.nodeId === nodeId) : report.problems;
        let checked = report.checked;
        let ok = report.ok;
        if (nodeId) {
          // verifyRun checks every copy; narrow the figures to the chosen node's copies.
          // An own key only: a node id such as "constructor" names no node, not Object.prototype's function.
          checked = Object.hasOwn(report.checkedPerNode, nodeId) ? report.checkedPerNode[nodeId]! : 0;
          ok = checked - problems.length;
        }
        const result: VerifyResult = { manifestPath: path, nodeId: nodeId ?? null, checked, ok, checkedPerNode: report.checkedPerNode, problems, unrecoverable: report.unrecoverable };
        return result;
      });
    },

    reassemble: async ({ manifestPath, key, outPath }) => {
      const loaded = await loadConfig(this.configPath);
      const path = await this.manifestInside(loaded, manifestPath);
      const out = await this.outputInside(loaded, outPath);
      return this.task('reassemble', async (signal) => {
        // One bar for both passes: each byte is written once and read back once.
        const progress = this.throttledProgress('reassemble');
        const onProgress = ({ phase, bytes, total }: ReassembleProgress): void => progress(phase === 'writing' ? bytes : total + bytes, 2 * total);
        const report = await reassembleFile({ loaded, manifestPath: path, key, outPath: out, signal, onProgress });
        progress(2 * report.bytes, 2 * report.bytes, true);
        return report;
      });
    },

    repair: async ({ manifestPath, chunkIds, files }) => {
      const loaded = await loadConfig(this.configPath);
      const path = await this.manifestInside(loaded, manifestPath);
      return this.task('repair', async (signal) => {
        return repairRun({
          loaded,
          manifestPath: path,
          signal,
          ...(chunkIds ? { chunkIds } : {}),
          ...(files ? { files } : {}),
          onEvent: this.throttledRepairEvents(),
        });
      });
    },

    appInfo: async () => {
      const loaded = await loadConfig(this.configPath).catch(() => undefined);
      return { mode: this.mode, projectDir: loaded?.baseDir ?? dirname(this.configPath), canPickFolder: this.canPick };
    },

    // Electron's host answers this itself with a folder dialog (host.ts); a worker asked directly has none.
    pickOutputFolder: async () => {
      throw new HostError({ code: 'forbidden', message: 'No folder dialog here. Fix: write under the project folder.' });
    },

    listActivity: async () => this.activityLog.list(await loadConfig(this.configPath)),

    activityDetail: async ({ runId }) => activityDetail(await loadConfig(this.configPath), runId),

    cancelTask: async ({ task }) => {
      const running = this.tasks.get(task);
      running?.abort();
      return { cancelled: Boolean(running) };
    },
  };

  private async readText(): Promise<string> {
    try {
      return await readFile(this.configPath, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new HostError({
        code: 'not_found',
        message: `Cannot read the config ${this.configPath}${code ? ` (${code})` : ''}. Fix: start the app with --config pointing at data_sources.yml.`,
      });
    }
  }

  private fileName(): string {
    const rel = relative(process.cwd(), this.configPath);
    return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : this.configPath;
  }

  private snapshot(text: string): ConfigSnapshot {
    const fileName = this.fileName();
    const revision = createHash('sha256').update(text).digest('hex').slice(0, 16);
    return { path: this.configPath, fileName, text, revision, diagnostics: validateConfigText(text, fileName).diagnostics };
  }

  /** Runs `edit` once every config edit queued before it has finished, whether that one succeeded or not. */
  private serializedConfigEdit<T>(edit: () => Promise<T>): Promise<T> {
    const next = this.configQueue.then(edit, edit);
    this.configQueue = next.catch(() => undefined);
    return next;
  }

  /** Lets reassemble write under `dir` (a folder the user picked in a dialog). */
  allowOutputDir(dir: string): void {
    this.outputDirs.add(resolve(dir));
  }

  /**
   * Where a reassembled file may go: under the project folder, or under a folder the user picked. Relative paths
   * are under the project folder. Checked on the real path of the nearest existing folder, so a symlink inside
   * the project cannot lead out of it.
   */
  private async outputInside(loaded: LoadedConfig, outPath: string): Promise<string> {
    const project = await realpath(loaded.baseDir).catch(() => resolve(loaded.baseDir));
    const roots = [project, ...(await Promise.all([...this.outputDirs].map((d) => realpath(d).catch(() => d))))];
    const out = isAbsolute(outPath) ? resolve(outPath) : resolve(loaded.baseDir, outPath);
    let existing = dirname(out);
    let rest = out.slice(existing.length);
    for (;;) {
      try {
        existing = await realpath(existing);
        break;
      } catch {
        const parent = dirname(existing);
        if (parent === existing) break;
        rest = existing.slice(parent.length) + rest;
        existing = parent;
      }
    }
    const real = resolve(existing + rest);
    if (!roots.some((root) => real.startsWith(root + sep))) {
      const picked = this.outputDirs.size > 0 ? `, or under ${[...this.outputDirs].join(', ')}` : '';
      throw new HostError({
        code: 'forbidden',
        message: `${outPath} is outside the project folder ${project}${picked}. Fix: give a path under the project folder${this.canPick ? ', or choose another folder with "Choose folder…"' : ''}.`,
      });
    }
    return real;
  }

  /** Temp file in the same folder, then rename: readers see the old file or the new one, never half of one. */
  private async writeAtomically(text: string): Promise<void> {
    const tmp = `${this.configPath}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    let mode: number | undefined;
    try {
      mode = (await stat(this.configPath)).mode & 0o777;
    } catch {
      mode = undefined;
    }
    try {
      await writeFile(tmp, text, { encoding: 'utf8', flag: 'wx', ...(mode !== undefined ? { mode } : {}) });
      await rename(tmp, this.configPath);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw new HostError({ code: 'failed', message: `Cannot save ${this.configPath}: ${(error as Error).message}. Fix: check the folder is writable.` });
    }
  }

  /** Edits the `nodes:` list in the file's text, so every comment and the rest of the file survive byte for byte. */
  private editNodes(renamed: Renamed | undefined, edit: (nodes: NodeConfig[]) => void): Promise<ConfigSnapshot> {
    return this.serializedConfigEdit(() => this.editNodesNow(renamed, edit));
  }

  private async editNodesNow(renamed: Renamed | undefined, edit: (nodes: NodeConfig[]) => void): Promise<ConfigSnapshot> {
    const text = await this.readText();
    const current = this.snapshot(text);
    const { config } = validateConfigText(text, current.fileName);
    if (!config || current.diagnostics.some((d) => d.severity === 'error')) {
      throw new HostError({ code: 'config_invalid', message: 'The config on disk has errors. Fix: correct them on the Config screen first.', diagnostics: current.diagnostics });
    }
    const nodes = effectiveNodes(config).map((n) => ({ ...n }));
    edit(nodes);
    const next = setNodesInText(text, nodes, renamed);
    const snapshot = this.snapshot(next);
    if (snapshot.diagnostics.some((d) => d.severity === 'error')) {
      throw new HostError({ code: 'config_invalid', message: 'That node would make the config invalid.', diagnostics: snapshot.diagnostics });
    }
    await this.writeAtomically(next);
    return snapshot;
  }

  private detected(): Promise<DetectionResult> {
    this.detection ??= this.detect({ deadlineMs: 1500 });
    const current = this.detection;
    current.catch(() => {
      if (this.detection === current) this.detection = undefined;
    });
    return current;
  }

  private effectiveDetection(result: DetectionResult): DetectionResult {
    if (!this.override || this.override === result.cloud) return result;
    return {
      ...result,
      cloud: this.override,
      signal: 'flag',
      detail: `chosen in the app (detected ${result.cloud}: ${result.detail})`,
    };
  }

  private async detectionView(): Promise<DetectionView> {
    const result = await this.detected();
    return { result, override: this.override, effective: this.override ?? result.cloud };
  }

  /** The page index of a manifest in the manifest folder (built on first need, kept for the latest few). */
  private async pageIndex(path: string): Promise<ChunkPageIndex> {
    return this.pageIndexes.get(await this.manifestInside(await loadConfig(this.configPath), path));
  }

  /**
   * Manifests are read only from the config's manifest folder: the renderer cannot make the host read other files.
   * Checked on real paths too, so a symlink in the folder (the file, or a folder on its path) cannot lead out of it.
   */
  private async manifestInside(loaded: LoadedConfig, path: string): Promise<string> {
    const dir = resolve(loaded.resolve(loaded.config.ingestion.manifest_dir));
    const full = resolve(dir, path);
    const inside = (file: string, folder: string): boolean => file.startsWith(folder + sep);
    const refuse = (): HostError => new HostError({ code: 'forbidden', message: `${path} is not a manifest in ${dir}. Fix: pick a run from the list.` });
    if (!inside(full, dir) || !full.endsWith('.json')) throw refuse();
    // A path that does not resolve (no such file yet) is left to the reader, which says it cannot read it.
    const real = await Promise.all([realpath(full), realpath(dir)]).catch(() => undefined);
    if (real && !inside(real[0], real[1])) throw refuse();
    return full;
  }

  private async task<T>(name: TaskName, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.tasks.has(name)) throw new HostError({ code: 'busy', message: `A ${name} is already running. Fix: wait for it or cancel it.` });
    const abort = new AbortController();
    this.tasks.set(name, abort);
    try {
      return await run(abort.signal);
    } finally {
      this.tasks.delete(name);
    }
  }

  /**
   * Repair's events for the renderer: progress (checked copies, restored copies) at most once per batch interval;
   * every failed restore and the finish always.
   */
  private throttledRepairEvents(): (event: RepairEvent) => void {
    let last = 0;
    return (event) => {
      const now = Date.now();
      const always = event.type === 'repair-finished' || event.done === event.total || (event.type === 'repair-action' && event.action.outcome === 'failed');
      if (!always && now - last < this.batchMs) return;
      last = now;
      this.emit('repairProgress', event);
    };
  }

  private throttledProgress(task: TaskName): (done: number, total: number, force?: boolean) => void {
    let last = 0;
    return (done, total, force = false) => {
      const now = Date.now();
      if (!force && now - last < this.batchMs && done < total) return;
      last = now;
      this.emit('taskProgress', { task, done, total });
    };
  }
}

/** Throws the engine's ResumeError for a run id with no journal, and a HostError for a run that already completed. */
async function checkResumable(loaded: LoadedConfig, runId: string): Promise<void> {
  const state = await readJournal(journalPath(loaded, runId));
  state.chunks.close();
  if (state.ended === 'complete') {
    throw new HostError({ code: 'invalid_request', message: `Run ${runId} already completed; there is nothing to resume. Fix: pick a run from the "Unfinished runs" list, or start a new ingest.` });
  }
}

/** Fills in chunks and bytes held for reachable nodes whose probe did not report them, within a time budget. */
async function withHoldings(loaded: LoadedConfig, statuses: NodeStatus[], budgetMs = 2000): Promise<NodeStatus[]> {
  const missing = statuses.filter((s) => s.state !== 'unhealthy' && (s.chunkCount === undefined || s.bytesHeld === undefined));
  if (missing.length === 0) return statuses;
  const targets = openNodes(loaded);
  const signal = AbortSignal.timeout(budgetMs);
  try {
    const counts = new Map<string, { chunks: number; bytes: number }>();
    await Promise.all(
      missing.map(async (status) => {
        const node = targets.find((t) => t.id === status.id);
        if (!node) return;
        let chunks = 0;
        let bytes = 0;
        try {
          for await (const stored of node.list(signal)) {
            chunks += 1;
            bytes += stored.size;
          }
          counts.set(status.id, { chunks, bytes });
        } catch {
          // Over budget or unreadable: leave the figures unknown rather than wrong.
        }
      }),
    );
    return statuses.map((s) => {
      const c = counts.get(s.id);
      return c ? { ...s, chunkCount: s.chunkCount ?? c.chunks, bytesHeld: s.bytesHeld ?? c.bytes } : s;
    });
  } finally {
    await Promise.all(targets.map((t) => t.close().catch(() => undefined)));
  }
}

