// For renderer unit tests: a store on a transport that is not connected to any host (every call fails with
// "not connected"). Tests that need the engine use the real host (test/ipc/host.test.ts, e2e/).
import { EVENT_CHANNELS, eventMethodName, REQUEST_CHANNELS } from '../shared/ipc/contract.ts';
import type { Req, RequestChannel, Res, WireApi } from '../shared/ipc/contract.ts';
import type { IngestProgress } from '../shared/ipc/contract.ts';
import { unwrap } from './api/unwrap.ts';
import { emptyStates } from './store/selectors.ts';
import { createAppStore } from './store/store.ts';
import type { AppStore } from './store/store.ts';

export function disconnectedWire(): WireApi {
  const api: Record<string, unknown> = {};
  for (const c of REQUEST_CHANNELS) api[c] = async () => ({ ok: false, error: { code: 'failed', message: 'not connected to the engine' } });
  for (const e of EVENT_CHANNELS) api[eventMethodName(e)] = () => () => undefined;
  return api as WireApi;
}

export function offlineStore(): AppStore {
  return createAppStore(unwrap(disconnectedWire()));
}

/** Stand-in answers for some channels (the rest fail as not connected). */
export type FakeHandlers = { [C in RequestChannel]?: (req: Req<C>) => Res<C> | Promise<Res<C>> };

/** A store whose transport answers `handlers`' channels with them, and every other channel with "not connected". */
export function storeAnswering(handlers: FakeHandlers): AppStore {
  const wire = disconnectedWire() as unknown as Record<string, unknown>;
  for (const [channel, handle] of Object.entries(handlers) as [string, (req: unknown) => unknown][]) {
    wire[channel] = async (req: unknown) => ({ ok: true, value: await handle(req) });
  }
  return createAppStore(unwrap(wire as unknown as WireApi));
}

export function batch(over: Partial<IngestProgress>): IngestProgress {
  return {
    runId: 'run-1',
    phase: 'running',
    batch: 1,
    full: false,
    startedAt: 0,
    elapsedMs: 1000,
    totals: { files: 1, chunks: 4, bytes: 4000 },
    bytesDone: 0,
    bytesSkipped: 0,
    chunksDone: 0,
    chunksFailed: 0,
    states: emptyStates(),
    retries: 0,
    filesDone: 0,
    filesFailed: 0,
    nodeBytes: {},
    nodeChunks: {},
    nodeStates: {},
    nodes: [],
    chunks: [],
    droppedRows: [],
    logs: [],
    logsDropped: 0,
    ...over,
  };
}
