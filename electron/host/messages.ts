// Messages between the engine host (host.ts) and its worker thread (engine-worker.ts).
import type { Envelope, EventChannel, Events, RequestChannel } from '../../shared/ipc/contract.ts';

export interface WorkerInit {
  configPath: string;
  batchMs?: number;
  /** Environment overrides for the worker (tests point metadata endpoints at loopback). */
  env?: Record<string, string>;
  /** The host can show a folder dialog (Electron). */
  canPickFolder?: boolean;
  mode?: 'electron' | 'serve';
  previewEntries?: number;
}

export type ToWorker =
  | { type: 'call'; id: number; channel: RequestChannel; payload: unknown }
  /** A folder the user picked in the host's dialog: reassemble may write under it. Never sent by the renderer. */
  | { type: 'allow-output-dir'; id: number; dir: string }
  | { type: 'close' };

export type FromWorker =
  | { type: 'result'; id: number; envelope: Envelope<unknown> }
  | { [E in EventChannel]: { type: 'event'; event: E; payload: Events[E] } }[EventChannel]
  | { type: 'closed' };
