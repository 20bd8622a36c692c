// The engine's thread. Electron main and serve mode both start it through host.ts, so reading, hashing
// bookkeeping, placement and progress folding never run on the thread that drives windows or sockets.
import { parentPort, workerData } from 'node:worker_threads';
import { EngineService, toErrorData } from './service.ts';
import type { Envelope } from '../../shared/ipc/contract.ts';
import type { FromWorker, ToWorker, WorkerInit } from './messages.ts';

if (!parentPort) throw new Error('engine-worker.ts runs only as a worker thread (started by electron/host/host.ts)');
const port = parentPort;
const init = workerData as WorkerInit;

const service = new EngineService({
  configPath: init.configPath,
  ...(init.batchMs !== undefined ? { batchMs: init.batchMs } : {}),
  canPickFolder: init.canPickFolder ?? false,
  mode: init.mode ?? 'serve',
  ...(init.previewEntries !== undefined ? { previewEntries: init.previewEntries } : {}),
  emit: (event, payload) => port.postMessage({ type: 'event', event, payload } as FromWorker),
});

port.on('message', (message: ToWorker) => {
  if (message.type === 'close') {
    void service.close().finally(() => port.postMessage({ type: 'closed' } satisfies FromWorker));
    return;
  }
  if (message.type === 'allow-output-dir') {
    service.allowOutputDir(message.dir);
    port.postMessage({ type: 'result', id: message.id, envelope: { ok: true, value: null } } satisfies FromWorker);
    return;
  }
  // Payloads were validated by the host before they were posted here.
  service.handle(message.channel, message.payload as never).then(
    (value) => answer(message.id, { ok: true, value }),
    (error: unknown) => answer(message.id, { ok: false, error: toErrorData(error) }),
  );
});

/**
 * Posts one answer. An answer that cannot be posted (a value the structured clone refuses) fails that request
 * alone: thrown here, it would be an unhandled rejection that stops this thread and every request after it.
 */
function answer(id: number, envelope: Envelope<unknown>): void {
  try {
    port.postMessage({ type: 'result', id, envelope } satisfies FromWorker);
  } catch (error) {
    const message = `The engine could not send its answer (${error instanceof Error ? error.message : String(error)}). Fix: report this; the app goes on.`;
    port.postMessage({ type: 'result', id, envelope: { ok: false, error: { code: 'failed', message } } } satisfies FromWorker);
  }
}
