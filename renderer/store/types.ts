// The app's state, one slice per screen plus navigation. Only source data lives here; everything computed from
// it (dirty flags, rates, ETAs, per-node groupings) is derived in selectors or components.
import type { NodeConfig } from '../../shared/config/types.ts';
import type {
  ActivityDetail,
  ActivityEntry,
  AppInfo,
  ChunkUpdate,
  ConfigSnapshot,
  DetectionView,
  IngestProgress,
  ManifestEntry,
  OpenedManifest,
  PullWorkersView,
  ReassembleResult,
  RepairReport,
  ResumableRun,
  TaskName,
  TaskProgress,
  VerifyResult,
} from '../../shared/ipc/contract.ts';
import type { NodeStatus, RepairEvent } from '../../shared/types.ts';
import type { Diagnostic } from '../../shared/config/validate.ts';
import type { ChunkPage } from './chunk-pages.ts';

export type Screen = 'config' | 'nodes' | 'ingest' | 'received' | 'activity';

/** The link to the engine: always open in Electron; serve mode's socket can be refused or lost. */
export interface Connection {
  state: 'connecting' | 'open' | 'refused' | 'lost';
  message: string | null;
}

export interface UiSlice {
  screen: Screen;
  connection: Connection;
  appInfo: AppInfo | null;
  setScreen(screen: Screen): void;
  setConnection(connection: Connection): void;
  loadAppInfo(): Promise<void>;
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
    /** Revision of `saved`: a save names it, so an edit made from a stale copy is refused. */
    revision: string | null;
    /** The file as it is on disk, when a save was refused because the file changed since it was loaded. */
    conflict: ConfigSnapshot | null;
    /** True once the text was read from the host at least once. */
    loaded: boolean;
  };
  detection: { view: DetectionView | null; busy: boolean; error: string | null };
  loadConfig(): Promise<void>;
  setDraft(text: string): void;
  /** Saves the draft; `overwrite` saves it even though the file changed on disk since it was loaded. */
  saveConfig(overwrite?: boolean): Promise<boolean>;
  applySnapshot(snapshot: ConfigSnapshot): void;
  detect(override?: DetectionView['override']): Promise<void>;
}

export interface NodesSlice {
  nodes: { statuses: NodeStatus[]; probing: boolean; error: string | null; checkedAt: number | null; editError: string | null };
  /** Pull mode's workers as last heard on NATS (null until first asked). */
  pull: { view: PullWorkersView | null; error: string | null };
  probeNodes(): Promise<void>;
  loadPullWorkers(): Promise<void>;
  setNodeStatuses(statuses: NodeStatus[]): void;
  upsertNode(node: NodeConfig, originalId?: string): Promise<boolean>;
  removeNode(id: string): Promise<boolean>;
}

export type IngestMeta = Omit<IngestProgress, 'chunks' | 'droppedRows' | 'logs' | 'logsDropped'>;

/** A file of the chunk view and its colour's place: files are numbered in the order they first arrive. */
export interface FileColour {
  name: string;
  order: number;
}

/** A log line, or a mark where lines were dropped (the log keeps the latest LOG_LINES_KEPT). */
export type LogEntry = IngestProgress['logs'][number] | { level: 'dropped'; count: number };

export interface IngestSlice {
  ingest: {
    pattern: string;
    meta: IngestMeta | null;
    /**
     * The chunk view's rows by `seq`: the host's bounded window on the run (in flight, latest finished, first
     * failed; CHUNK_VIEW_LIMITS), never every chunk. The counts in `meta` cover every chunk.
     */
    chunks: ChunkUpdate[];
    /**
     * The files of those rows in the order they first arrived, each with its colour's place, which it keeps while
     * it has rows on screen. Files whose rows have all left the view leave this list.
     */
    files: FileColour[];
    logs: LogEntry[];
    starting: boolean;
    /** The run id being resumed, from the click until its first progress arrives and after. */
    resuming: string | null;
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

/** A chunk to bring into view in the Received chunks table (a problem clicked in the Problems list). */
export interface RowFocus {
  nodeId: string;
  chunkId: string;
  /** Changes on every request, so clicking the same problem twice scrolls again. */
  at: number;
  /** A large run (paged): the row's place among the node's copies, once the host has found it (`locateChunk`). */
  position?: number;
}

/** A large run's file search (the Reassemble card): the host's first matches for `query`. */
export interface FileSearch {
  query: string;
  keys: string[];
  /** More keys match than were sent. */
  more: boolean;
  searching: boolean;
}

/** What a repair is limited to: one chunk's copies, one file's chunks, or everything. */
export type RepairScope = { chunkIds: string[] } | { files: string[] } | Record<string, never>;

export interface RepairState {
  running: boolean;
  scope: RepairScope | null;
  checked: { done: number; total: number } | null;
  restored: { done: number; total: number } | null;
  failures: RepairEvent[];
  report: RepairReport | null;
  /** The verify run right after the repair, on the manifest repair wrote. */
  verifyAfter: VerifyResult | null;
  error: string | null;
}

export interface ReceivedSlice {
  received: {
    manifests: ManifestEntry[];
    manifestPath: string | null;
    manifest: OpenedManifest | null;
    nodeId: string | null;
    loading: boolean;
    verifying: 'all' | string | null;
    verify: VerifyResult | null;
    /** Show only the rows with a problem in the chunks table. */
    problemsOnly: boolean;
    focus: RowFocus | null;
    reassembling: boolean;
    reassemble: ReassembleResult | null;
    task: TaskProgress | null;
    error: string | null;
    /** A large run (`manifest.partial`): the pages of node tables fetched so far, oldest first, at most CHUNK_PAGES_KEPT. */
    pages: ChunkPage[];
    /** A large run: the file search of the Reassemble card, null until the first search. */
    fileSearch: FileSearch | null;
  };
  repair: RepairState;
  listManifests(): Promise<void>;
  openManifest(path: string): Promise<void>;
  selectNode(nodeId: string): void;
  verify(nodeId?: string): Promise<void>;
  setProblemsOnly(on: boolean): void;
  /** Brings a chunk's row into view (of a large run, once the host has found where it is). */
  focusRow(nodeId: string, chunkId: string): Promise<void>;
  /** A large run: fetches the pages holding rows `first` to `last - 1` of a node's table (and a margin) that are not here yet. */
  showRows(nodeId: string, first: number, last: number): void;
  /** A large run: asks the host for the first file keys containing `query`. */
  searchFiles(query: string): Promise<void>;
  reassemble(key: string, outPath: string): Promise<void>;
  /** Electron: a folder dialog; reassemble may then write under the folder chosen. Null when cancelled or refused. */
  pickOutputFolder(): Promise<string | null>;
  /** Repairs `scope` of the manifest at `manifestPath`, then opens the manifest repair wrote and verifies it. */
  runRepair(manifestPath: string, scope: RepairScope): Promise<void>;
  applyRepairEvent(event: RepairEvent): void;
  cancelTask(task: TaskName): Promise<void>;
  setTaskProgress(progress: TaskProgress): void;
}

export interface ActivitySlice {
  activity: { entries: ActivityEntry[]; selected: string | null; detail: ActivityDetail | null; loading: boolean; error: string | null };
  listActivity(): Promise<void>;
  selectActivity(runId: string): Promise<void>;
}

export type AppState = UiSlice & ConfigSlice & NodesSlice & IngestSlice & ResumeSlice & ReceivedSlice & ActivitySlice;
