// Messages between the engine host (host.ts) and its worker thread (engine-worker.ts).
import type { Envelope, EventChannel, Events, RequestChannel } from '../../shared/ipc/contract.ts';

export interface WorkerInit {
  configPath: string;
  batchMs?: number;
  /** Environment overrides for the worker (tests point metadata endpoints at loopback). */
  env?: Record<string, string>;
}

export type ToWorker = { type: 'call'; id: number; channel: RequestChannel; payload: unknown } | { type: 'close' };

export type FromWorker =
  | { type: 'result'; id: number; envelope: Envelope<unknown> }
  | { [E in EventChannel]: { type: 'event'; event: E; payload: Events[E] } }[EventChannel]
  | { type: 'closed' };
