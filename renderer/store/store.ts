// One bound store built from slice creators. Actions are plain functions on the store, so the API bridge
// (bridge.ts) and tests call them without React.
import { createStore } from 'zustand/vanilla';
import type { StateCreator, StoreApi } from 'zustand/vanilla';
import { ApiError } from '../../shared/ipc/contract.ts';
import type { Api } from '../../shared/ipc/contract.ts';
import type { AppState, ConfigSlice, IngestSlice, NodesSlice, ReceivedSlice, ResumeSlice, UiSlice } from './types.ts';

type Slice<T> = StateCreator<AppState, [], [], T>;

export function errorText(error: unknown): string {
  if (error instanceof ApiError || error instanceof Error) return error.message;
  return String(error);
}

const MAX_LOGS = 200;

const uiSlice: Slice<UiSlice> = (set) => ({
  screen: 'config',
  setScreen: (screen) => set({ screen }),
});

const configSlice = (api: Api): Slice<ConfigSlice> => (set, get) => ({
  config: { path: '', fileName: '', saved: '', draft: '', loading: false, saving: false, refused: [], error: null, savedAt: null },
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
    set((s) => ({ config: { ...s.config, path: snap.path, fileName: snap.fileName, saved: snap.text, draft: snap.text, refused: [], error: null } })),

  saveConfig: async () => {
    const text = get().config.draft;
    set((s) => ({ config: { ...s.config, saving: true, error: null } }));
    try {
      const result = await api.saveConfig({ text });
      if (!result.saved) {
        set((s) => ({ config: { ...s.config, refused: result.snapshot.diagnostics, error: 'Not saved: the config has errors (marked in the editor).' } }));
        return false;
      }
      set((s) => ({ config: { ...s.config, saved: text, refused: [], savedAt: Date.now() } }));
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
  // One probe at a time: a caller arriving mid-probe waits for that probe's answer.
  let inFlight: Promise<void> | undefined;
  const probe = async (): Promise<void> => {
    set((s) => ({ nodes: { ...s.nodes, probing: true } }));
    try {
      const statuses = await api.probeNodes({});
      set((s) => ({ nodes: { ...s.nodes, statuses, error: null, checkedAt: Date.now() } }));
    } catch (error) {
      set((s) => ({ nodes: { ...s.nodes, error: errorText(error) } }));
    } finally {
      set((s) => ({ nodes: { ...s.nodes, probing: false } }));
      inFlight = undefined;
    }
  };
  return {
  nodes: { statuses: [], probing: false, error: null, checkedAt: null, editError: null },

  probeNodes: () => (inFlight ??= probe()),

  setNodeStatuses: (statuses) => set((s) => ({ nodes: { ...s.nodes, statuses, checkedAt: Date.now() } })),

  upsertNode: async (node, originalId) => {
    try {
      const snapshot = await api.upsertNode(originalId === undefined ? { node } : { node, originalId });
      get().applySnapshot(snapshot);
      set((s) => ({ nodes: { ...s.nodes, editError: null } }));
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
    set((s) => ({ ingest: { ...s.ingest, starting: true, error: null, meta: null, chunks: [], logs: [] } }));
    try {
      await api.startIngest(req);
    } catch (error) {
      set((s) => ({ ingest: { ...s.ingest, error: errorText(error) } }));
    } finally {
      set((s) => ({ ingest: { ...s.ingest, starting: false } }));
    }
  };
  return {
  ingest: { pattern: '', meta: null, chunks: [], logs: [], starting: false, error: null },

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
      const { chunks: updates, logs, ...meta } = batch;
      const sameRun = s.ingest.meta?.runId === batch.runId;
      // A batch is a delta on top of the previous one; a full batch (or a new run) replaces the rows.
      const rows = batch.full || !sameRun ? [] : s.ingest.chunks.slice();
      for (const u of updates) rows[u.seq] = u;
      const kept = batch.full || !sameRun ? logs : [...s.ingest.logs, ...logs].slice(-MAX_LOGS);
      return { ingest: { ...s.ingest, meta, chunks: rows, logs: kept } };
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

const receivedSlice = (api: Api): Slice<ReceivedSlice> => (set, get) => ({
  received: {
    manifests: [],
    manifestPath: null,
    manifest: null,
    nodeId: null,
    loading: false,
    verifying: null,
    verify: null,
    reassembling: false,
    reassemble: null,
    task: null,
    error: null,
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
    set((s) => ({ received: { ...s.received, loading: true, manifestPath: path, error: null, verify: null, reassemble: null } }));
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

  cancelTask: async (task) => {
    try {
      await api.cancelTask({ task });
    } catch (error) {
      set((s) => ({ received: { ...s.received, error: errorText(error) } }));
    }
  },

  setTaskProgress: (task) => set((s) => ({ received: { ...s.received, task } })),
});

export type AppStore = StoreApi<AppState>;

export function createAppStore(api: Api): AppStore {
  return createStore<AppState>()((...a) => ({
    ...uiSlice(...a),
    ...configSlice(api)(...a),
    ...nodesSlice(api)(...a),
    ...ingestSlice(api)(...a),
    ...resumeSlice(api)(...a),
    ...receivedSlice(api)(...a),
  }));
}

/** Subscribes the store to the host's events. Returns the unsubscribe. */
export function bridgeEvents(api: Api, store: AppStore): () => void {
  const offs = [
    api.onIngestProgress((batch) => store.getState().applyProgress(batch)),
    api.onNodeStatus((statuses) => store.getState().setNodeStatuses(statuses)),
    api.onTaskProgress((progress) => store.getState().setTaskProgress(progress)),
  ];
  return () => offs.forEach((off) => off());
}
