// The one IPC contract between the app's renderer and the engine host (Electron main, or `npm run serve`).
// Each request channel maps to its request and response; each event channel to its payload. Main, preload,
// serve mode and the renderer all derive their types from these two maps, and `validators.ts` checks every
// request at runtime. Nothing here carries a credential: configs name environment variables, never secrets.
import type { WorkerHeartbeat } from '../cluster/contract.ts';
import type { CloudName, NodeConfig } from '../config/types.ts';
import type { Diagnostic } from '../config/validate.ts';
import type { ChunkState, DetectionResult, Manifest, NodeChunkRow, NodeHealthState, NodeStatus, ReassembleReport, RepairEvent, RepairReport, ResumableRun, VerifyReport } from '../types.ts';

export interface ConfigSnapshot {
  /** Absolute path of the YAML file the host edits. */
  path: string;
  /** Name used in diagnostics (relative to the host's working folder when possible). */
  fileName: string;
  text: string;
  /** A short hash of `text`: a save that names the revision it was edited from is refused if the file changed since. */
  revision: string;
  diagnostics: Diagnostic[];
}

export interface SaveResult {
  saved: boolean;
  snapshot: ConfigSnapshot;
  /** The file as it is now on disk, when the save was refused because it changed since `baseRevision`. */
  conflict?: ConfigSnapshot;
}

/** What the renderer needs to know about where it runs. */
export interface AppInfo {
  mode: 'electron' | 'serve';
  /** The project folder: relative output paths are under it. */
  projectDir: string;
  /** Electron only: a folder dialog can add another folder reassembled files may be written to. */
  canPickFolder: boolean;
}

export interface DetectionView {
  result: DetectionResult;
  /** The cloud the user chose instead of the detected one, if any. */
  override: CloudName | null;
  /** What an ingest would use: the override, or else the detected cloud. */
  effective: CloudName;
}

export interface ManifestEntry {
  runId: string;
  path: string;
  startedAt: string;
  status: string;
}

/**
 * A chunk's state as the app shows it: the engine's states, and `cancelled` for a chunk that was waiting or in
 * flight when its run was cancelled or stopped (it was not delivered by this run).
 */
export type ChunkRowState = ChunkState | 'cancelled';

/** One chunk's latest state inside a progress batch. `seq` is the chunk's number in the run (the host numbers chunks in first-seen order) and its row's key in the chunk view. */
export interface ChunkUpdate {
  seq: number;
  id: string;
  file: string;
  index: number;
  /** Byte offset of the chunk in its file. */
  offset: number;
  size: number;
  state: ChunkRowState;
  nodeId?: string;
  attempt: number;
  error?: string;
  /** The chunk was moved here from a node that failed during the run. */
  moved?: boolean;
}

export type IngestPhase = 'idle' | 'starting' | 'running' | 'finished' | 'failed' | 'cancelled';

/**
 * The chunk view is a window on the run, never every chunk (a run can have a million): every chunk in flight
 * (reading, sending, retried, moved), the latest finished ones (verified, skipped, cancelled), and the first failed
 * ones. Queued chunks are counted, not listed. The counters (`states`, `nodeStates`, …) cover every chunk.
 */
export const CHUNK_VIEW_LIMITS = { inFlight: 1_000, finished: 5_000, failed: 1_000 } as const;
/** Rows the chunk view holds at most. */
export const CHUNK_VIEW_MAX_ROWS = CHUNK_VIEW_LIMITS.inFlight + CHUNK_VIEW_LIMITS.finished + CHUNK_VIEW_LIMITS.failed;
/** Log lines the app keeps of a run (the latest); the ones before are counted and marked as dropped. */
export const LOG_LINES_KEPT = 200;

/**
 * Progress folded by the host and sent at most 10 times a second (every 110 ms), however many chunks move.
 * Counters are absolute (a late subscriber catches up from one batch); chunk updates are deltas since the last batch,
 * to the rows of the chunk view (`CHUNK_VIEW_LIMITS`): rows that change, and rows that left the view.
 */
export interface IngestProgress {
  runId: string;
  phase: IngestPhase;
  /** Batch number within the run; a renderer that misses one asks for a full `ingestSnapshot`. */
  batch: number;
  /** True for a batch that carries the whole chunk view (the renderer replaces its chunk rows and log). */
  full: boolean;
  startedAt: number;
  elapsedMs: number;
  totals: { files: number; chunks: number; bytes: number };
  /** Bytes sent to nodes in this run (what the speed is computed from). */
  bytesDone: number;
  /** Bytes of chunks skipped because their nodes already hold them (a resumed run's earlier work, or a re-run). */
  bytesSkipped: number;
  chunksDone: number;
  chunksFailed: number;
  /** How many chunks are in each state now (absolute, so filters count right before every row has arrived). */
  states: Record<ChunkRowState, number>;
  retries: number;
  /** Files the run has finished checking, and files that failed (one `file` event each). */
  filesDone: number;
  filesFailed: number;
  nodeBytes: Record<string, number>;
  nodeChunks: Record<string, number>;
  /** Per node, how many chunks whose latest state names that node are in each state (absolute). */
  nodeStates: Record<string, Record<ChunkRowState, number>>;
  nodes: NodeStatus[];
  /** Rows of the chunk view that changed since the previous batch (a full batch: every row of the view). */
  chunks: ChunkUpdate[];
  /** Rows (`seq`) that left the chunk view since the previous batch (older finished rows make way for newer). */
  droppedRows: number[];
  logs: { level: 'info' | 'warn' | 'error'; message: string }[];
  /** Log lines before `logs` that are not sent: past the per-batch cap, or (a full batch) before the lines kept. */
  logsDropped: number;
  manifestPath?: string;
  /** How the run ended, as its manifest says (`degraded`: some chunks have fewer good copies than wanted). */
  status?: Manifest['status'];
  /** A resumed run: the id it continues (the same as `runId`). */
  resumed?: boolean;
  error?: string;
}

export type { NodeChunkRow, RepairEvent, RepairReport, ResumableRun, VerifyProblem } from '../types.ts';

/** One past run for the Activity screen. */
export interface ActivityEntry {
  runId: string;
  manifestPath: string;
  status: Manifest['status'];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  bytes: number;
  files: number;
  chunks: number;
  /** Bytes per second over the whole run. */
  meanBytesPerSecond: number;
  retries: number;
  moves: number;
  /**
   * Who ran it from where, as its manifest says (`ranBy`); for a run from before manifests said so, the app's own
   * record of it, else `unknown`.
   */
  origin: { tool: 'app' | 'cli' | 'unknown'; user?: string; host?: string };
}

/** Throughput over time of one run, whoever ran it. */
export interface ActivityDetail {
  runId: string;
  /** `[ms since the run started, bytes stored so far]`, at most ~400 points; pauses between attempts left out. */
  samples: [number, number][];
  /** The run's journal (every run since journal lines carry `t`), the app's record of an older app run, or none. */
  source: 'journal' | 'app-record' | 'none';
  /** Attempts (a resumed run has more than one). */
  attempts: number;
  /** Chunks found already on their nodes (not sent, so not charted). */
  heldChunks: number;
}

/** One pull worker as the app last heard it: its heartbeat's figures (since the worker started) and how fresh it is. */
export interface PullWorkerView {
  nodeId: string;
  /** The id is one of the config's nodes (a worker heard that the config does not name is listed too). */
  configured: boolean;
  /** Heard within `worker_timeout_seconds` (the coordinator gives up on a worker silent for longer). */
  alive: boolean;
  /** Milliseconds since its last heartbeat reached the app; absent: never heard since the app started listening. */
  silentMs?: number;
  /** The last heartbeat's figures: items in flight, finished (stored, already there, failed), bytes read, and the agent's store. */
  heartbeat?: Omit<WorkerHeartbeat, 'v' | 'nodeId'>;
}

/** Pull mode's workers, heard on NATS (`cloud-ingest.heartbeat.*`); in push mode only `mode`. */
export interface PullWorkersView {
  mode: 'push' | 'pull';
  /** The NATS server listened to (any user:password@ part removed). */
  natsUrl?: string;
  connected: boolean;
  /** Why the app cannot listen (no NATS URL, the server does not answer), with the fix. */
  error?: string;
  /** `worker_timeout_seconds` in ms: silent longer than this, a worker is taken as lost. */
  timeoutMs: number;
  workers: PullWorkerView[];
}

/** A verify report, narrowed to one node when `nodeId` is set. */
export interface VerifyResult extends VerifyReport {
  /** The node verified, or null for all nodes. */
  nodeId: string | null;
}

export type ReassembleResult = ReassembleReport;

/**
 * A manifest as the Received screen gets it: of a run with more files or chunks than the host sends (its preview
 * limit), the first ones, and `partial` with how many the run has and how many copies each node holds. The rest is
 * reached a page at a time (`manifestChunks`, `locateChunk`, `findFiles`); verify, repair and reassemble cover all.
 */
export interface OpenedManifest extends Manifest {
  partial?: { files: number; chunks: number; perNode: Record<string, number> };
}

/** Rows one `manifestChunks` answer holds at most. */
export const MANIFEST_PAGE_MAX_ROWS = 1_000;
/** Keys one `findFiles` answer holds at most. */
export const FIND_FILES_MAX_KEYS = 1_000;

export type TaskName = 'verify' | 'reassemble' | 'repair';

export interface TaskProgress {
  task: TaskName;
  done: number;
  total: number;
}

/** Request channels: renderer → host, answered once. */
export interface Requests {
  /** Reads the config file from disk (the Reload button) and validates it. */
  loadConfig: { req: Record<string, never>; res: ConfigSnapshot };
  /**
   * Validates, then writes atomically (temp file + rename) exactly the text given, comments included. Refuses text
   * with errors, and (with `baseRevision`) text edited from a file that has changed on disk since.
   */
  saveConfig: { req: { text: string; baseRevision?: string }; res: SaveResult };
  /** Runs cloud detection again, or sets/clears the override (`override: null` clears it). */
  detectCloud: { req: { override?: CloudName | null }; res: DetectionView };
  /** Probes every node: state, latency, free space, chunks and bytes held. */
  probeNodes: { req: Record<string, never>; res: NodeStatus[] };
  /** Pull mode: every worker's last heartbeat (the host listens on NATS from the first ask on). */
  pullWorkers: { req: Record<string, never>; res: PullWorkersView };
  /** Adds a node (no `originalId`) or replaces the node `originalId`, written back into the YAML keeping comments. */
  upsertNode: { req: { node: NodeConfig; originalId?: string }; res: ConfigSnapshot };
  removeNode: { req: { id: string }; res: ConfigSnapshot };
  /**
   * Starts a run, or with `resume` continues a cancelled or killed run from its journal (chunks it already
   * delivered are neither read nor sent again; the run keeps its id and pattern, so `pattern` is ignored).
   */
  startIngest: { req: { pattern?: string; resume?: string }; res: { runId: string } };
  cancelIngest: { req: Record<string, never>; res: { cancelled: boolean } };
  /** The current run's full state (every chunk seen so far), or null when no run happened yet. */
  ingestSnapshot: { req: Record<string, never>; res: IngestProgress | null };
  /** Runs that were cancelled or killed and can be resumed, newest first (never the run in progress). */
  listResumable: { req: Record<string, never>; res: ResumableRun[] };
  /** Past runs, newest first. */
  listManifests: { req: Record<string, never>; res: ManifestEntry[] };
  /** The run's manifest; of a large run only its first files and chunks (OpenedManifest.partial). */
  openManifest: { req: { path: string }; res: OpenedManifest };
  /** A node's copies `start` to `start + count - 1` (from 0, manifest order; count ≤ MANIFEST_PAGE_MAX_ROWS), and how many it holds. */
  manifestChunks: { req: { path: string; nodeId: string; start: number; count: number }; res: { rows: NodeChunkRow[]; total: number } };
  /** Where a chunk's copy sits among a node's copies (what `manifestChunks` pages through), or null when the node holds none. */
  locateChunk: { req: { path: string; nodeId: string; chunkId: string }; res: { position: number | null } };
  /** The first `limit` file keys containing `query` (any case; limit ≤ FIND_FILES_MAX_KEYS) in manifest order, and whether more match. */
  findFiles: { req: { path: string; query: string; limit: number }; res: { keys: string[]; more: boolean } };
  verify: { req: { manifestPath: string; nodeId?: string }; res: VerifyResult };
  /** Rebuilds a file under the project folder, or under a folder picked with `pickOutputFolder`; nowhere else. */
  reassemble: { req: { manifestPath: string; key: string; outPath: string }; res: ReassembleResult };
  /**
   * Restores missing or damaged copies from a good copy or the source, and writes the run's next manifest
   * (`manifestPath` of the answer). Limited to `chunkIds`, or to the chunks of `files`; all chunks when neither.
   */
  repair: { req: { manifestPath: string; chunkIds?: string[]; files?: string[] }; res: RepairReport };
  /** Cancels a running verify, reassemble or repair. */
  cancelTask: { req: { task: TaskName }; res: { cancelled: boolean } };
  appInfo: { req: Record<string, never>; res: AppInfo };
  /** Electron: a folder dialog; the folder chosen becomes a place reassemble may write to. Serve mode refuses. */
  pickOutputFolder: { req: Record<string, never>; res: { path: string | null } };
  /** Past runs with their figures, newest first. */
  listActivity: { req: Record<string, never>; res: ActivityEntry[] };
  /** Throughput over time of one run, from its journal. */
  activityDetail: { req: { runId: string }; res: ActivityDetail };
}

/** Event channels: host → renderer. */
export interface Events {
  ingestProgress: IngestProgress;
  taskProgress: TaskProgress;
  /** Node states as the host last saw them (after a probe or during an ingest). */
  nodeStatus: NodeStatus[];
  /** A repair's progress: copies checked, then each copy restored. */
  repairProgress: RepairEvent;
}

export type RequestChannel = keyof Requests;
export type EventChannel = keyof Events;
export type Req<C extends RequestChannel> = Requests[C]['req'];
export type Res<C extends RequestChannel> = Requests[C]['res'];

export const REQUEST_CHANNELS = [
  'loadConfig',
  'saveConfig',
  'detectCloud',
  'probeNodes',
  'pullWorkers',
  'upsertNode',
  'removeNode',
  'startIngest',
  'cancelIngest',
  'ingestSnapshot',
  'listResumable',
  'listManifests',
  'openManifest',
  'manifestChunks',
  'locateChunk',
  'findFiles',
  'verify',
  'reassemble',
  'repair',
  'cancelTask',
  'appInfo',
  'pickOutputFolder',
  'listActivity',
  'activityDetail',
] as const satisfies readonly RequestChannel[];

export const EVENT_CHANNELS = ['ingestProgress', 'taskProgress', 'nodeStatus', 'repairProgress'] as const satisfies readonly EventChannel[];

// Compile-time check that the lists above name every channel of the maps.
type Missing<All, Listed> = Exclude<All, Listed>;
const _allRequests: Missing<RequestChannel, (typeof REQUEST_CHANNELS)[number]> extends never ? true : never = true;
const _allEvents: Missing<EventChannel, (typeof EVENT_CHANNELS)[number]> extends never ? true : never = true;
void _allRequests;
void _allEvents;

export function isRequestChannel(name: unknown): name is RequestChannel {
  return typeof name === 'string' && (REQUEST_CHANNELS as readonly string[]).includes(name);
}

export function isEventChannel(name: unknown): name is EventChannel {
  return typeof name === 'string' && (EVENT_CHANNELS as readonly string[]).includes(name);
}

/** The Electron IPC channel name for a contract channel. */
export function ipcChannel(name: RequestChannel | EventChannel): string {
  return `cloud-ingest:${name}`;
}

type Unsubscribe = () => void;

type EventMethods = {
  [E in EventChannel as `on${Capitalize<E>}`]: (listener: (payload: Events[E]) => void) => Unsubscribe;
};

/**
 * The transport surface: `window.api` from the Electron preload, or the WebSocket client in serve mode.
 * Answers are envelopes because errors thrown across contextBridge lose everything but their message.
 */
export type WireApi = {
  [C in RequestChannel]: (req: Req<C>) => Promise<Envelope<Res<C>>>;
} & EventMethods;

/** What the renderer's code calls: the wire API with envelopes unwrapped (failures throw ApiError). */
export type Api = {
  [C in RequestChannel]: (req: Req<C>) => Promise<Res<C>>;
} & EventMethods;

export function eventMethodName<E extends EventChannel>(name: E): `on${Capitalize<E>}` {
  return `on${name.charAt(0).toUpperCase()}${name.slice(1)}` as `on${Capitalize<E>}`;
}

/** Errors cross the boundary as plain data, so the renderer can show them where they happen. */
export interface ApiErrorData {
  code: 'invalid_request' | 'unknown_channel' | 'forbidden' | 'busy' | 'not_found' | 'config_invalid' | 'failed';
  message: string;
  diagnostics?: Diagnostic[];
}

export class ApiError extends Error {
  readonly code: ApiErrorData['code'];
  readonly diagnostics?: Diagnostic[];

  constructor(data: ApiErrorData) {
    super(data.message);
    this.name = 'ApiError';
    this.code = data.code;
    if (data.diagnostics) this.diagnostics = data.diagnostics;
  }
}

/** Wire envelope for IPC responses: Electron's invoke loses custom error fields, so errors travel as data. */
export type Envelope<T> = { ok: true; value: T } | { ok: false; error: ApiErrorData };

export const NODE_STATES: readonly NodeHealthState[] = ['healthy', 'suspect', 'unhealthy', 'full'];
