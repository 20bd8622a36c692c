// The engine's second entry module: the node agent and the cluster worker, for the CLI's `agent` command only.
// Kept out of index.ts so every other command starts without loading the HTTP server, TLS and the NATS client
// (~60-100 ms and several MB for a `run` to folder nodes).
export { isLoopback, startAgent } from './agent/server.ts';
export { checkWorkerFlags, startAgentWorker, WORKER_FLAGS, WORKER_USAGE } from './cluster/agent-worker.ts';
export { jsonLogger } from './agent/log.ts';
