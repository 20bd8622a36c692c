// The engine's thread. Electron main and serve mode both start it through host.ts, so reading, hashing
// bookkeeping, placement and progress folding never run on the thread that drives windows or sockets.
import { parentPort, workerData } from 'node:worker_threads';
import { EngineService, toErrorData } from './service.ts';
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
    (value) => port.postMessage({ type: 'result', id: message.id, envelope: { ok: true, value } } satisfies FromWorker),
    (error: unknown) => port.postMessage({ type: 'result', id: message.id, envelope: { ok: false, error: toErrorData(error) } } satisfies FromWorker),
  );
});
