// One bound store built from slice creators. Actions are plain functions on the store, so the API bridge
// (bridge.ts) and tests call them without React.
import { createStore } from 'zustand/vanilla';
import type { StateCreator, StoreApi } from 'zustand/vanilla';
import { ApiError } from '../../shared/ipc/contract.ts';
import type { Api } from '../../shared/ipc/contract.ts';
import { CHUNK_PAGE_ROWS, keepPages, pagesCovering, samePage } from './chunk-pages.ts';
import type { ChunkPage } from './chunk-pages.ts';
import { appendLogs, fileColours, mergeRows } from './ingest-rows.ts';
import type { ActivitySlice, AppState, ConfigSlice, IngestSlice, NodesSlice, ReceivedSlice, RepairState, ResumeSlice, UiSlice } from './types.ts';

type Slice<T> = StateCreator<AppState, [], [], T>;

export function errorText(error: unknown): string {
  if (error instanceof ApiError || error instanceof Error) return error.message;
  return String(error);
}

const uiSlice = (api: Api): Slice<UiSlice> => (set) => ({
  screen: 'config',
  connection: { state: 'open', message: null },
  appInfo: null,
  setScreen: (screen) => set({ screen }),
  setConnection: (connection) => set({ connection }),
  loadAppInfo: async () => {
    try {
      set({ appInfo: await api.appInfo({}) });
    } catch {
      // Shown where it matters: the Reassemble card then offers only the project folder.
    }
  },
});

const configSlice = (api: Api): Slice<ConfigSlice> => (set, get) => ({
  config: { path: '', fileName: '', saved: '', draft: '', loading: false, saving: false, refused: [], error: null, savedAt: null, revision: null, conflict: null, loaded: false },
  detection: { view: null, busy: false, error: null },

  loadConfig: async () => {
    set((s) => ({ config: { ...s.config, loading: true, error: null } }));
    try {
      get().applySnapshot(await api.loadConfig({}));
    } catch (error) {
      set((s) => ({ config: { ...s.config, error: errorText(error) } }));
    } finally {
      set((s) => ({ config: { ...s.config, loading: false } }));
    }
  },

  setDraft: (draft) => set((s) => ({ config: { ...s.config, draft, refused: [] } })),

  applySnapshot: (snap) =>
    set((s) => ({
      config: { ...s.config, path: snap.path, fileName: snap.fileName, saved: snap.text, draft: snap.text, revision: snap.revision, refused: [], error: null, conflict: null, loaded: true },
    })),

  saveConfig: async (overwrite = false) => {
    const { draft: text, revision } = get().config;
    set((s) => ({ config: { ...s.config, saving: true, error: null } }));
    try {
      const result = await api.saveConfig(revision && !overwrite ? { text, baseRevision: revision } : { text });
      if (result.conflict) {
        const conflict = result.conflict;
        set((s) => ({ config: { ...s.config, conflict, error: 'Not saved: the file changed on disk since you loaded it (another tab, the Nodes screen or an editor).' } }));
        return false;
      }
      if (!result.saved) {
        set((s) => ({ config: { ...s.config, refused: result.snapshot.diagnostics, error: 'Not saved: the config has errors (marked in the editor).' } }));
        return false;
      }
      set((s) => ({ config: { ...s.config, saved: text, revision: result.snapshot.revision, conflict: null, refused: [], savedAt: Date.now() } }));
      return true;
    } catch (error) {
      set((s) => ({ config: { ...s.config, error: errorText(error) } }));
      return false;
    } finally {
      set((s) => ({ config: { ...s.config, saving: false } }));
    }
  },

  detect: async (override) => {
    set((s) => ({ detection: { ...s.detection, busy: true, error: null } }));
    try {
      const view = await api.detectCloud(override === undefined ? {} : { override });
      set({ detection: { view, busy: false, error: null } });
    } catch (error) {
      set((s) => ({ detection: { ...s.detection, busy: false, error: errorText(error) } }));
    }
  },
});

const nodesSlice = (api: Api): Slice<NodesSlice> => (set, get) => {
  // One probe at a time: a caller arriving mid-probe waits for that probe's answer, unless the nodes were edited
  // since it started; then a fresh probe follows it, and only an answer about the current nodes is kept.
  let inFlight: { done: Promise<void>; asOf: number } | undefined;
  let edits = 0;
  const probe = async (asOf: number): Promise<void> => {
    set((s) => ({ nodes: { ...s.nodes, probing: true } }));
    try {
      const statuses = await api.probeNodes({});
      if (asOf === edits) set((s) => ({ nodes: { ...s.nodes, statuses, error: null, checkedAt: Date.now() } }));
    } catch (error) {
      if (asOf === edits) set((s) => ({ nodes: { ...s.nodes, error: errorText(error) } }));
    }
  };
  const probeNodes = (): Promise<void> => {
    if (inFlight && inFlight.asOf === edits) return inFlight.done;
    const asOf = edits;
    const entry = { done: (inFlight?.done ?? Promise.resolve()).then(() => probe(asOf)), asOf };
    inFlight = entry;
    void entry.done.finally(() => {
      if (inFlight !== entry) return;
      inFlight = undefined;
      set((s) => ({ nodes: { ...s.nodes, probing: false } }));
    });
    return entry.done;
  };
  let pullInFlight: Promise<void> | undefined;
  const loadPull = async (): Promise<void> => {
    try {
      const view = await api.pullWorkers({});
      set({ pull: { view, error: null } });
    } catch (error) {
      set((s) => ({ pull: { ...s.pull, error: errorText(error) } }));
    } finally {
      pullInFlight = undefined;
    }
  };
  return {
  nodes: { statuses: [], probing: false, error: null, checkedAt: null, editError: null },
  pull: { view: null, error: null },

  probeNodes,

  loadPullWorkers: () => (pullInFlight ??= loadPull()),

  setNodeStatuses: (statuses) => set((s) => ({ nodes: { ...s.nodes, statuses, checkedAt: Date.now() } })),

  upsertNode: async (node, originalId) => {
    try {
      const snapshot = await api.upsertNode(originalId === undefined ? { node } : { node, originalId });
      get().applySnapshot(snapshot);
      set((s) => ({ nodes: { ...s.nodes, editError: null } }));
      edits++;
      void get().probeNodes();
      return true;
    } catch (error) {
      set((s) => ({ nodes: { ...s.nodes, editError: errorText(error) } }));
      return false;
    }
  },

  removeNode: async (id) => {
    try {
      get().applySnapshot(await api.removeNode({ id }));
      set((s) => ({ nodes: { ...s.nodes, editError: null, statuses: s.nodes.statuses.filter((n) => n.id !== id) } }));
      edits++;
      void get().probeNodes();
      return true;
    } catch (error) {
      set((s) => ({ nodes: { ...s.nodes, editError: errorText(error) } }));
      return false;
    }
  },
  };
};

const ingestSlice = (api: Api): Slice<IngestSlice> => (set, get) => {
  const begin = async (req: { pattern?: string; resume?: string }): Promise<void> => {
    set((s) => ({ ingest: { ...s.ingest, starting: true, resuming: req.resume ?? null, error: null, meta: null, chunks: [], files: [], logs: [] } }));
    try {
      await api.startIngest(req);
      // Still starting until the run's first progress arrives (its answer can overtake it).
      set((s) => ({ ingest: { ...s.ingest, starting: s.ingest.meta === null } }));
    } catch (error) {
      set((s) => ({ ingest: { ...s.ingest, starting: false, error: errorText(error) } }));
    }
  };
  return {
  ingest: { pattern: '', meta: null, chunks: [], files: [], logs: [], starting: false, resuming: null, error: null },

  setPattern: (pattern) => set((s) => ({ ingest: { ...s.ingest, pattern } })),

  startIngest: () => {
    const pattern = get().ingest.pattern.trim();
    return begin(pattern ? { pattern } : {});
  },

  resumeIngest: (runId) => begin({ resume: runId }),

  cancelIngest: async () => {
    try {
      await api.cancelIngest({});
    } catch (error) {
      set((s) => ({ ingest: { ...s.ingest, error: errorText(error) } }));
    }
  },

  applyProgress: (batch) =>
    set((s) => {
      const { chunks: updates, droppedRows, logs, logsDropped, ...meta } = batch;
      const sameRun = s.ingest.meta?.runId === batch.runId;
      // A batch is a delta on top of the previous one; a full batch (or a new run) replaces the rows and the log.
      const fresh = batch.full || !sameRun;
      const chunks = fresh ? mergeRows([], updates, []) : mergeRows(s.ingest.chunks, updates, droppedRows);
      const files = chunks === s.ingest.chunks ? s.ingest.files : fileColours(sameRun ? s.ingest.files : [], chunks);
      const kept = appendLogs(fresh ? [] : s.ingest.logs, { logs, logsDropped });
      return { ingest: { ...s.ingest, meta, chunks, files, logs: kept, starting: false } };
    }),

  loadIngestSnapshot: async () => {
    try {
      const snapshot = await api.ingestSnapshot({});
      if (snapshot) get().applyProgress(snapshot);
    } catch (error) {
      set((s) => ({ ingest: { ...s.ingest, error: errorText(error) } }));
    }
  },
  };
};

const resumeSlice = (api: Api): Slice<ResumeSlice> => (set) => ({
  resumable: { runs: [], error: null },

  listResumable: async () => {
    try {
      const runs = await api.listResumable({});
      set({ resumable: { runs, error: null } });
    } catch (error) {
      set((s) => ({ resumable: { ...s.resumable, error: errorText(error) } }));
    }
  },
});

/** File keys a large run's search lists at most. */
export const FILE_MATCHES_SHOWN = 100;

const receivedSlice = (api: Api): Slice<ReceivedSlice> => (set, get) => {
  /** Fetches one page of a node's table into its placeholder; an answer for a page dropped meanwhile is let go. */
  const fetchPage = async ({ manifestPath, nodeId, page }: ChunkPage): Promise<void> => {
    const placeholder = (p: ChunkPage) => samePage(p, manifestPath, nodeId, page) && p.rows === null;
    try {
      const { rows } = await api.manifestChunks({ path: manifestPath, nodeId, start: page * CHUNK_PAGE_ROWS, count: CHUNK_PAGE_ROWS });
      set((s) => ({ received: { ...s.received, pages: s.received.pages.map((p) => (placeholder(p) ? { ...p, rows } : p)) } }));
    } catch (error) {
      set((s) => ({ received: { ...s.received, pages: s.received.pages.filter((p) => !placeholder(p)), error: errorText(error) } }));
    }
  };
  /** A large run: where the host finds a chunk's row, for the focus asked for at `at` (a later click wins). */
  const locate = async (nodeId: string, chunkId: string, at: number): Promise<void> => {
    const path = get().received.manifestPath;
    if (!path) return;
    try {
      const { position } = await api.locateChunk({ path, nodeId, chunkId });
      if (position === null) return;
      set((s) => (s.received.focus?.at === at ? { received: { ...s.received, focus: { ...s.received.focus, position } } } : s));
    } catch (error) {
      set((s) => ({ received: { ...s.received, error: errorText(error) } }));
    }
  };
  return {
  received: {
    manifests: [],
    manifestPath: null,
    manifest: null,
    nodeId: null,
    loading: false,
    verifying: null,
    verify: null,
    problemsOnly: false,
    focus: null,
    reassembling: false,
    reassemble: null,
    task: null,
    error: null,
    pages: [],
    fileSearch: null,
  },

  listManifests: async () => {
    try {
      const manifests = await api.listManifests({});
      set((s) => ({ received: { ...s.received, manifests, error: null } }));
      const current = get().received.manifestPath;
      const newest = manifests[0];
      if (newest && (!current || !manifests.some((m) => m.path === current))) await get().openManifest(newest.path);
    } catch (error) {
      set((s) => ({ received: { ...s.received, error: errorText(error) } }));
    }
  },

  openManifest: async (path) => {
    set((s) => ({ received: { ...s.received, loading: true, manifestPath: path, error: null, verify: null, reassemble: null, pages: [], fileSearch: null } }));
    try {
      const manifest = await api.openManifest({ path });
      set((s) => {
        const keep = s.received.nodeId && manifest.nodes.some((n) => n.id === s.received.nodeId);
        return { received: { ...s.received, manifest, nodeId: keep ? s.received.nodeId : (manifest.nodes[0]?.id ?? null) } };
      });
    } catch (error) {
      set((s) => ({ received: { ...s.received, manifest: null, error: errorText(error) } }));
    } finally {
      set((s) => ({ received: { ...s.received, loading: false } }));
    }
  },

  selectNode: (nodeId) => set((s) => ({ received: { ...s.received, nodeId } })),

  verify: async (nodeId) => {
    const path = get().received.manifestPath;
    if (!path) return;
    set((s) => ({ received: { ...s.received, verifying: nodeId ?? 'all', verify: null, task: null, error: null } }));
    try {
      const result = await api.verify(nodeId ? { manifestPath: path, nodeId } : { manifestPath: path });
      set((s) => ({ received: { ...s.received, verify: result } }));
    } catch (error) {
      set((s) => ({ received: { ...s.received, error: errorText(error) } }));
    } finally {
      set((s) => ({ received: { ...s.received, verifying: null } }));
    }
  },

  setProblemsOnly: (problemsOnly) => set((s) => ({ received: { ...s.received, problemsOnly } })),

  focusRow: async (nodeId, chunkId) => {
    const at = Date.now();
    set((s) => ({ received: { ...s.received, nodeId, focus: { nodeId, chunkId, at } } }));
    if (get().received.manifest?.partial) await locate(nodeId, chunkId, at);
  },

  showRows: (nodeId, first, last) => {
    const { manifestPath, manifest, pages } = get().received;
    if (!manifestPath || !manifest?.partial) return;
    const wanted = pagesCovering(first, last, manifest.partial.perNode[nodeId] ?? 0);
    const missing = wanted.filter((page) => !pages.some((p) => samePage(p, manifestPath, nodeId, page)));
    if (missing.length === 0) return;
    const added = missing.map((page): ChunkPage => ({ manifestPath, nodeId, page, rows: null }));
    const onScreen = (p: ChunkPage) => p.manifestPath === manifestPath && p.nodeId === nodeId && wanted.includes(p.page);
    set((s) => ({ received: { ...s.received, pages: keepPages(s.received.pages, added, onScreen) } }));
    for (const page of added) void fetchPage(page);
  },

  searchFiles: async (query) => {
    const path = get().received.manifestPath;
    if (!path) return;
    const current = (s: AppState) => s.received.manifestPath === path && s.received.fileSearch?.query === query;
    set((s) => ({ received: { ...s.received, fileSearch: { query, keys: s.received.fileSearch?.keys ?? [], more: s.received.fileSearch?.more ?? false, searching: true } } }));
    try {
      const { keys, more } = await api.findFiles({ path, query, limit: FILE_MATCHES_SHOWN });
      set((s) => (current(s) ? { received: { ...s.received, fileSearch: { query, keys, more, searching: false } } } : s));
    } catch (error) {
      set((s) => (current(s) ? { received: { ...s.received, fileSearch: { query, keys: [], more: false, searching: false }, error: errorText(error) } } : s));
    }
  },

  runRepair: async (manifestPath, scope) => {
    set({ repair: { ...IDLE_REPAIR, running: true, scope } });
    try {
      const report = await api.repair({ manifestPath, ...scope });
      set((s) => ({ repair: { ...s.repair, report } }));
      // What repair wrote is the run's manifest from now on: show it, and check every copy again. A run it
      // completed is no longer unfinished.
      await Promise.all([get().listManifests(), get().listResumable()]);
      await get().openManifest(report.manifestPath);
      await get().verify();
      set((s) => ({ repair: { ...s.repair, verifyAfter: s.received.verify } }));
    } catch (error) {
      set((s) => ({ repair: { ...s.repair, error: errorText(error) } }));
    } finally {
      set((s) => ({ repair: { ...s.repair, running: false } }));
    }
  },

  applyRepairEvent: (event) =>
    set((s) => {
      const r = s.repair;
      if (event.type === 'repair-checked') return { repair: { ...r, checked: { done: event.done, total: event.total } } };
      if (event.type === 'repair-action') {
        const failures = event.action.outcome === 'failed' ? [...r.failures, event].slice(-200) : r.failures;
        return { repair: { ...r, restored: { done: event.done, total: event.total }, failures } };
      }
      return { repair: { ...r, report: event.report } };
    }),

  reassemble: async (key, outPath) => {
    const path = get().received.manifestPath;
    if (!path) return;
    set((s) => ({ received: { ...s.received, reassembling: true, reassemble: null, error: null } }));
    try {
      const result = await api.reassemble({ manifestPath: path, key, outPath });
      set((s) => ({ received: { ...s.received, reassemble: result } }));
    } catch (error) {
      set((s) => ({ received: { ...s.received, error: errorText(error) } }));
    } finally {
      set((s) => ({ received: { ...s.received, reassembling: false } }));
    }
  },

  pickOutputFolder: async () => {
    try {
      return (await api.pickOutputFolder({})).path;
    } catch (error) {
      set((s) => ({ received: { ...s.received, error: errorText(error) } }));
      return null;
    }
  },

  cancelTask: async (task) => {
    try {
      await api.cancelTask({ task });
    } catch (error) {
      set((s) => ({ received: { ...s.received, error: errorText(error) } }));
    }
  },

  setTaskProgress: (task) => set((s) => ({ received: { ...s.received, task } })),

  repair: IDLE_REPAIR,
  };
};

const IDLE_REPAIR: RepairState = { running: false, scope: null, checked: null, restored: null, failures: [], report: null, verifyAfter: null, error: null };

const activitySlice = (api: Api): Slice<ActivitySlice> => (set, get) => ({
  activity: { entries: [], selected: null, detail: null, loading: false, error: null },

  listActivity: async () => {
    set((s) => ({ activity: { ...s.activity, loading: true, error: null } }));
    try {
      const entries = await api.listActivity({});
      set((s) => ({ activity: { ...s.activity, entries } }));
      const selected = get().activity.selected;
      const first = entries[0];
      if (first && (!selected || !entries.some((e) => e.runId === selected))) await get().selectActivity(first.runId);
    } catch (error) {
      set((s) => ({ activity: { ...s.activity, error: errorText(error) } }));
    } finally {
      set((s) => ({ activity: { ...s.activity, loading: false } }));
    }
  },

  selectActivity: async (runId) => {
    set((s) => ({ activity: { ...s.activity, selected: runId, detail: null } }));
    try {
      const detail = await api.activityDetail({ runId });
      if (get().activity.selected === runId) set((s) => ({ activity: { ...s.activity, detail } }));
    } catch (error) {
      set((s) => ({ activity: { ...s.activity, error: errorText(error) } }));
    }
  },
});

export type AppStore = StoreApi<AppState>;

export function createAppStore(api: Api): AppStore {
  return createStore<AppState>()((...a) => ({
    ...uiSlice(api)(...a),
    ...configSlice(api)(...a),
    ...nodesSlice(api)(...a),
    ...ingestSlice(api)(...a),
    ...resumeSlice(api)(...a),
    ...receivedSlice(api)(...a),
    ...activitySlice(api)(...a),
  }));
}

/** Subscribes the store to the host's events. Returns the unsubscribe. */
export function bridgeEvents(api: Api, store: AppStore): () => void {
  const offs = [
    api.onIngestProgress((batch) => store.getState().applyProgress(batch)),
    api.onNodeStatus((statuses) => store.getState().setNodeStatuses(statuses)),
    api.onTaskProgress((progress) => store.getState().setTaskProgress(progress)),
    api.onRepairProgress((event) => store.getState().applyRepairEvent(event)),
  ];
  return () => offs.forEach((off) => off());
}
