// The app's state, one slice per screen plus navigation. Only source data lives here; everything computed from
// it (dirty flags, rates, ETAs, per-node groupings) is derived in selectors or components.
import type { NodeConfig } from '../../shared/config/types.ts';
import type { ChunkUpdate, ConfigSnapshot, DetectionView, IngestProgress, ManifestEntry, ReassembleResult, ResumableRun, TaskProgress, VerifyResult } from '../../shared/ipc/contract.ts';
import type { Manifest, NodeStatus } from '../../shared/types.ts';
import type { Diagnostic } from '../../shared/config/validate.ts';

export type Screen = 'config' | 'nodes' | 'ingest' | 'received';

export interface UiSlice {
  screen: Screen;
  setScreen(screen: Screen): void;
}

export interface ConfigSlice {
  config: {
    path: string;
    fileName: string;
    /** The text on disk as last loaded or saved. */
    saved: string;
    /** The editor's text. */
    draft: string;
    loading: boolean;
    saving: boolean;
    /** Diagnostics the host returned when it refused a save (the editor also validates live). */
    refused: Diagnostic[];
    error: string | null;
    savedAt: number | null;
  };
  detection: { view: DetectionView | null; busy: boolean; error: string | null };
  loadConfig(): Promise<void>;
  setDraft(text: string): void;
  saveConfig(): Promise<boolean>;
  applySnapshot(snapshot: ConfigSnapshot): void;
  detect(override?: DetectionView['override']): Promise<void>;
}

export interface NodesSlice {
  nodes: { statuses: NodeStatus[]; probing: boolean; error: string | null; checkedAt: number | null; editError: string | null };
  probeNodes(): Promise<void>;
  setNodeStatuses(statuses: NodeStatus[]): void;
  upsertNode(node: NodeConfig, originalId?: string): Promise<boolean>;
  removeNode(id: string): Promise<boolean>;
}

export type IngestMeta = Omit<IngestProgress, 'chunks' | 'logs'>;

export interface IngestSlice {
  ingest: {
    pattern: string;
    meta: IngestMeta | null;
    /** Row `seq` of the chunk view. */
    chunks: ChunkUpdate[];
    logs: IngestProgress['logs'];
    starting: boolean;
    error: string | null;
  };
  setPattern(pattern: string): void;
  startIngest(): Promise<void>;
  /** Continues a cancelled or killed run; its progress arrives like a started run's. */
  resumeIngest(runId: string): Promise<void>;
  cancelIngest(): Promise<void>;
  applyProgress(batch: IngestProgress): void;
  loadIngestSnapshot(): Promise<void>;
}

/** Unfinished runs (cancelled or killed) the Ingest screen offers to resume. */
export interface ResumeSlice {
  resumable: { runs: ResumableRun[]; error: string | null };
  listResumable(): Promise<void>;
}

export interface ReceivedSlice {
  received: {
    manifests: ManifestEntry[];
    manifestPath: string | null;
    manifest: Manifest | null;
    nodeId: string | null;
    loading: boolean;
    verifying: 'all' | string | null;
    verify: VerifyResult | null;
    reassembling: boolean;
    reassemble: ReassembleResult | null;
    task: TaskProgress | null;
    error: string | null;
  };
  listManifests(): Promise<void>;
  openManifest(path: string): Promise<void>;
  selectNode(nodeId: string): void;
  verify(nodeId?: string): Promise<void>;
  reassemble(key: string, outPath: string): Promise<void>;
  cancelTask(task: 'verify' | 'reassemble'): Promise<void>;
  setTaskProgress(progress: TaskProgress): void;
}

export type AppState = UiSlice & ConfigSlice & NodesSlice & IngestSlice & ResumeSlice & ReceivedSlice;
